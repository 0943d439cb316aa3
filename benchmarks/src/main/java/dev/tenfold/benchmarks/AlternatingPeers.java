package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Machine;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.KvCache;
import dev.tenfold.llama.LlamaModel;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * tenfold beside its peer in short alternating rounds, for a shared machine whose load comes and
 * goes: JMH runs each benchmark for tens of seconds, so a busy spell can land on one side only.
 * Here each round measures the peer, then tenfold, a second or so each, and the figure to read is
 * the median over rounds of the per-round ratio (plus each side's best, the least disturbed).
 *
 * <pre>
 *   gemm [N] [ROUNDS]  f32 N^3 product (CpuBackend.fast, all cores) against numpy/OpenBLAS sgemm
 *                      (benchmarks/scripts/numpy_sgemm.py, a fresh python per round, all cores)
 *   step-gemms [ROUNDS] the products of a training step (StepPeer's h512 shape at 1K and 4K tokens,
 *                      h256's at 1K: x W^T forward, dy W backward) against the same products in numpy
 *   decode [ROUNDS] [small|medium]
 *                      one decoded token of RandomLlama.small (or .medium: 1.2 GB of weights, past a large
 *                      L3) against a 256 MiB memory copy
 * </pre>
 * Run: {@code java --add-modules jdk.incubator.vector -cp "benchmarks/target/classes:benchmarks/target/lib/*"
 * dev.tenfold.benchmarks.AlternatingPeers gemm 2048 8}; with {@code -XX:UseAVX=2} on an AVX-512 machine, numpy runs
 * OpenBLAS's AVX2 kernels too.
 */
public final class AlternatingPeers {
    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "gemm";
        switch (mode) {
            case "gemm" -> gemm(args.length > 1 ? Integer.parseInt(args[1]) : 2048, args.length > 2 ? Integer.parseInt(args[2]) : 8);
            case "step-gemms" -> stepGemms(args.length > 1 ? Integer.parseInt(args[1]) : 6);
            case "decode" -> {
                String model = args.length > 2 ? args[2] : "small";
                if (!model.equals("small") && !model.equals("medium")) {
                    throw new IllegalArgumentException("decode's model is small or medium, got '" + model + "'");
                }
                decode(args.length > 1 ? Integer.parseInt(args[1]) : 8, model.equals("medium"));
            }
            default -> throw new IllegalArgumentException("unknown mode '" + mode
                    + "': gemm [N] [ROUNDS], step-gemms [ROUNDS] or decode [ROUNDS] [small|medium]");
        }
    }

    static void gemm(int n, int rounds) throws Exception {
        Backend fast = CpuBackend.fast();
        SplittableRandom rng = new SplittableRandom(42);
        double flops = 2.0 * n * n * n;
        int reps = Math.max(3, (int) (1.5e11 / flops) + 1); // about a second per side at 200 GFLOP/s
        try (Tensor a = MatmulBench.random(rng, DType.F32, n, n); Tensor b = MatmulBench.random(rng, DType.F32, n, n);
             Tensor out = Tensor.allocate(DType.F32, n, n)) {
            long warmUntil = System.nanoTime() + 8_000_000_000L; // the JIT settles
            while (System.nanoTime() < warmUntil) fast.matmul(a, false, b, false, out, false);
            List<double[]> rows = new ArrayList<>();
            System.out.printf("f32 %d^3, %d reps a side per round; GFLOP/s (median of the round's reps); tenfold %d-bit vectors%s%n", n,
                    reps, jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize(),
                    AVX2_ON_AVX512 ? ", numpy with OPENBLAS_CORETYPE=Haswell (AVX2)" : "");
            System.out.println("round  numpy  tenfold  ratio");
            for (int r = 0; r < rounds; r++) {
                JsonNode np = numpy(n, reps).path("sgemm").get(0);
                double[] t = new double[reps];
                for (int i = 0; i < reps; i++) {
                    long t0 = System.nanoTime();
                    fast.matmul(a, false, b, false, out, false);
                    t[i] = (System.nanoTime() - t0) * 1e-9;
                }
                double npRate = np.path("gflops").asDouble(), npBest = np.path("best_gflops").asDouble();
                double tfRate = flops / GpuWork.median(t) / 1e9, tfBest = flops / Arrays.stream(t).min().orElseThrow() / 1e9;
                rows.add(new double[] {npRate, tfRate, tfRate / npRate, npBest, tfBest});
                System.out.printf("%5d  %5.1f  %7.1f  %5.3f%n", r, npRate, tfRate, tfRate / npRate);
            }
            summary(rows, "numpy", "tenfold");
        }
    }

    /** A product out (M x N) = a (M x K) times b (K x N), or times w^T for a weight w (N x K). */
    private record Gemm(int m, int n, int k, boolean transB) {
        String flag() { return m + "," + n + "," + k + (transB ? ",T" : ""); }
    }

    /**
     * The dense products of one h512 training step (hidden 512, MLP 1536) at 1,024 and 4,096 tokens, k and v
     * (128 columns), and h256's (hidden 256, MLP 688) at 1,024 tokens: short K, where packing weighs most.
     */
    private static final List<Gemm> STEP_GEMMS = List.of(new Gemm(1024, 1536, 512, true), new Gemm(1024, 512, 1536, true),
            new Gemm(1024, 512, 512, true), new Gemm(1024, 1536, 512, false), new Gemm(1024, 512, 1536, false),
            new Gemm(4096, 1536, 512, true), new Gemm(4096, 512, 1536, true), new Gemm(1024, 128, 512, true),
            new Gemm(1024, 688, 256, true), new Gemm(1024, 256, 688, true), new Gemm(1024, 256, 256, true),
            new Gemm(1024, 256, 688, false));

    static void stepGemms(int rounds) throws Exception {
        Backend fast = CpuBackend.fast();
        SplittableRandom rng = new SplittableRandom(43);
        int reps = 10;
        List<Tensor[]> operands = new ArrayList<>();
        for (Gemm g : STEP_GEMMS) {
            operands.add(new Tensor[] {MatmulBench.random(rng, DType.F32, g.m(), g.k()),
                    g.transB() ? MatmulBench.random(rng, DType.F32, g.n(), g.k()) : MatmulBench.random(rng, DType.F32, g.k(), g.n()),
                    Tensor.allocate(DType.F32, g.m(), g.n())});
        }
        long warmUntil = System.nanoTime() + 8_000_000_000L; // the JIT settles
        while (System.nanoTime() < warmUntil) {
            for (int s = 0; s < STEP_GEMMS.size(); s++) {
                Tensor[] t = operands.get(s);
                fast.matmul(t[0], false, t[1], STEP_GEMMS.get(s).transB(), t[2], false);
            }
        }
        List<String> flags = new ArrayList<>();
        for (Gemm g : STEP_GEMMS) flags.addAll(List.of("--shape", g.flag()));
        List<List<double[]>> rows = new ArrayList<>();
        for (int s = 0; s < STEP_GEMMS.size(); s++) rows.add(new ArrayList<>());
        System.out.printf("f32 products of a training step, %d reps a side per round; GFLOP/s (median of the round's reps); tenfold %d-bit "
                + "vectors%s%n", reps, jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize(),
                AVX2_ON_AVX512 ? ", numpy with OPENBLAS_CORETYPE=Haswell (AVX2)" : "");
        for (int r = 0; r < rounds; r++) {
            JsonNode np = numpy(flags, reps).path("sgemm");
            for (int s = 0; s < STEP_GEMMS.size(); s++) {
                Gemm g = STEP_GEMMS.get(s);
                Tensor[] t = operands.get(s);
                double[] times = new double[reps];
                for (int i = 0; i < reps; i++) {
                    long t0 = System.nanoTime();
                    fast.matmul(t[0], false, t[1], g.transB(), t[2], false);
                    times[i] = (System.nanoTime() - t0) * 1e-9;
                }
                double flops = 2.0 * g.m() * g.n() * g.k();
                double npRate = np.get(s).path("gflops").asDouble(), tfRate = flops / GpuWork.median(times) / 1e9;
                rows.get(s).add(new double[] {npRate, tfRate, tfRate / npRate, np.get(s).path("best_gflops").asDouble(),
                        flops / Arrays.stream(times).min().orElseThrow() / 1e9});
            }
        }
        System.out.println("| product (M x N x K) | numpy GFLOP/s (median over rounds) | tenfold GFLOP/s | tenfold / numpy (median of rounds) |");
        System.out.println("|---|---:|---:|---:|");
        for (int s = 0; s < STEP_GEMMS.size(); s++) {
            Gemm g = STEP_GEMMS.get(s);
            List<double[]> rs = rows.get(s);
            System.out.printf("| %d x %d x %d%s | %.0f | %.0f | %.2f |%n", g.m(), g.n(), g.k(), g.transB() ? " (x W^T)" : "",
                    GpuWork.median(rs.stream().mapToDouble(x -> x[0]).toArray()), GpuWork.median(rs.stream().mapToDouble(x -> x[1]).toArray()),
                    GpuWork.median(rs.stream().mapToDouble(x -> x[2]).toArray()));
        }
        for (Tensor[] t : operands) for (Tensor x : t) x.close();
    }

    static void decode(int rounds, boolean medium) throws Exception {
        LlamaModel model = medium ? RandomLlama.medium(7) : RandomLlama.small(7);
        int prompt = 512;
        SplittableRandom rng = new SplittableRandom(8);
        int[] tokens = new int[prompt];
        for (int i = 0; i < prompt; i++) tokens[i] = rng.nextInt(model.config().vocabSize());
        long copyBytes = 256L << 20;
        try (KvCache cache = new KvCache(model.config(), prompt + 1);
             Tensor from = Tensor.allocate(DType.U8, copyBytes); Tensor to = Tensor.allocate(DType.U8, copyBytes)) {
            from.data().fill((byte) 1);
            model.forward(tokens, cache, null);
            long warmUntil = System.nanoTime() + 8_000_000_000L;
            while (System.nanoTime() < warmUntil) {
                cache.truncate(prompt);
                model.forward(new int[] {17}, cache, null);
            }
            // bytes of weights one token reads: every linear layer and the output head, BF16
            double weightBytes = 2.0 * model.config().numLayers() * layerParams(model) + 2.0 * model.config().vocabSize()
                    * model.config().hiddenSize();
            System.out.printf("decode reads %.1f MB of weights per token; GB/s (median of the round's reps)%n", weightBytes / 1e6);
            System.out.println("round  copy GB/s  decode ms  decode GB/s  ratio");
            List<double[]> rows = new ArrayList<>();
            for (int r = 0; r < rounds; r++) {
                double[] c = new double[20];
                for (int i = 0; i < c.length; i++) {
                    long t0 = System.nanoTime();
                    MemorySegment.copy(from.data(), 0, to.data(), 0, copyBytes);
                    c[i] = (System.nanoTime() - t0) * 1e-9;
                }
                double[] d = new double[100];
                for (int i = 0; i < d.length; i++) {
                    cache.truncate(prompt);
                    long t0 = System.nanoTime();
                    model.forward(new int[] {17}, cache, null);
                    d[i] = (System.nanoTime() - t0) * 1e-9;
                }
                double copyRate = 2.0 * copyBytes / GpuWork.median(c) / 1e9, decodeRate = weightBytes / GpuWork.median(d) / 1e9;
                double copyBest = 2.0 * copyBytes / Arrays.stream(c).min().orElseThrow() / 1e9;
                double decodeBest = weightBytes / Arrays.stream(d).min().orElseThrow() / 1e9;
                rows.add(new double[] {copyRate, decodeRate, decodeRate / copyRate, copyBest, decodeBest});
                System.out.printf("%5d  %9.1f  %9.3f  %11.1f  %5.3f%n", r, copyRate, GpuWork.median(d) * 1e3, decodeRate, decodeRate / copyRate);
            }
            summary(rows, "copy", "decode");
        } finally {
            model.close();
        }
    }

    /** Parameters of one decoder layer's linear maps (q, k, v, o, gate, up, down). */
    private static double layerParams(LlamaModel model) {
        var c = model.config();
        double h = c.hiddenSize(), kv = (double) c.numKvHeads() * c.headDim(), q = (double) c.numHeads() * c.headDim();
        return 2 * h * q + 2 * h * kv + 3 * h * c.intermediateSize();
    }

    private static void summary(List<double[]> rows, String peer, String ours) {
        double[] ratios = rows.stream().mapToDouble(r -> r[2]).toArray();
        double peerBest = rows.stream().mapToDouble(r -> r[3]).max().orElseThrow();
        double oursBest = rows.stream().mapToDouble(r -> r[4]).max().orElseThrow();
        System.out.printf("median ratio %s/%s over %d rounds: %.3f (min %.3f, max %.3f); best %s %.1f, best %s %.1f: %.3f%n",
                ours, peer, rows.size(), GpuWork.median(ratios), Arrays.stream(ratios).min().orElseThrow(),
                Arrays.stream(ratios).max().orElseThrow(), peer, peerBest, ours, oursBest, oursBest / peerBest);
    }

    /**
     * This JVM was limited to 256-bit vectors (-XX:UseAVX=2) on a CPU with AVX-512: the peer is limited to OpenBLAS's
     * Haswell (AVX2) kernels too, so that the run measures what an AVX2 machine would see.
     */
    static final boolean AVX2_ON_AVX512 = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() == 256
            && Machine.cpuFlags().contains("avx512f");

    private static JsonNode numpy(int n, int reps) throws IOException, InterruptedException {
        return numpy(List.of(String.valueOf(n)), reps);
    }

    private static JsonNode numpy(List<String> what, int reps) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("python3", "benchmarks/scripts/numpy_sgemm.py"));
        cmd.addAll(what);
        cmd.addAll(List.of("--reps", String.valueOf(reps), "--warmup", "2", "--json"));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().remove("OPENBLAS_CORETYPE");
        pb.environment().remove("OPENBLAS_L2_SIZE");
        if (AVX2_ON_AVX512) pb.environment().put("OPENBLAS_CORETYPE", "Haswell");
        pb.redirectError(ProcessBuilder.Redirect.INHERIT);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) throw new IOException("numpy peer failed (exit " + p.exitValue() + ")");
        return JSON.readTree(out);
    }

}
