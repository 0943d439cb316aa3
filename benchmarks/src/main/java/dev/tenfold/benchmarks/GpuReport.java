package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Machine;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.cuda.CudaDriver;
import dev.tenfold.engine.cuda.CudaException;
import dev.tenfold.engine.cuda.CudaKernels;
import dev.tenfold.engine.cuda.CudaOutOfMemoryException;
import dev.tenfold.engine.cuda.CudaTimer;
import dev.tenfold.engine.cuda.CudaUnavailableException;
import dev.tenfold.engine.cuda.KernelAbi;
import dev.tenfold.qlora.nf4.Nf4;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.function.Consumer;
import java.util.function.IntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The GPU benchmark report: on one GPU, with CUDA events ({@link CudaTimer}), warm-up then the median of
 * several samples (each sample times enough back-to-back runs to last about {@code --target-ms}):
 * <ul>
 *   <li>copy: device-to-device copy bandwidth (1 GiB, bytes read + written): the reference for every
 *       bandwidth-bound kernel;</li>
 *   <li>gemm: cuBLAS bf16 GEMM (f32 accumulate) at 4096^3 and at Llama-3-8B projection shapes with 16K
 *       tokens: the reference matmul rate;</li>
 *   <li>kernels: each kernel's effective GB/s (bytes counted by {@link GpuWork}) and its % of the copy
 *       bandwidth, beside the targets of native-kernels/README.md;</li>
 *   <li>attention: the flash kernels launched directly on bf16 buffers (forward, backward, forward +
 *       backward; deterministic and atomic dQ), 64K tokens a batch at seq 1K..64K, Llama-3-8B heads; and
 *       once through {@code CudaBackend.attention} on f32 tensors, casts included;</li>
 *   <li>train: one QLoRA step of a Llama-3-8B-shaped model with random NF4 weights ({@link GpuTrainStep}).</li>
 * </ul>
 * Prints a table (markdown) on stdout, progress on stderr, and writes gpu-report.json and gpu-report.md
 * to {@code --out} after every benchmark (a later failure or a hang leaves what was measured), and a last
 * summary line on stderr. Where there is no usable GPU it says why and exits 0 (1 where TENFOLD_REQUIRE_GPU=1).
 * A watchdog stops the process (exit 3) if one benchmark runs longer than {@code --case-timeout} seconds.
 *
 * <p>Usage: {@code ./tenfold bench gpu-report [options]}, or from the bundle (.gpu/run.sh).
 */
public final class GpuReport {
    static final String USAGE = """
            usage: gpu-report [--out DIR] [--device N] [--sections LIST] [--no-train] [--quick]
                              [--warmup N] [--reps N] [--target-ms MS] [--train-tokens N] [--train-steps N]
                              [--case-timeout SECONDS] [--smoke]
              --out DIR          where gpu-report.json and gpu-report.md go (default target/gpu-report)
              --device N         the GPU (cuda:N; default 0)
              --sections LIST    comma-separated, of copy,gemm,kernels,attention,train (default: all)
              --no-train         all sections but train
              --quick            warm-up 1, 3 samples, shorter samples, 1 timed training step
              --warmup N         untimed runs before measuring (default 3)
              --reps N           samples per benchmark; the median is reported (default 10)
              --target-ms MS     each sample times back-to-back runs lasting about this long (default 25)
              --train-tokens N   tokens of the training step (default 16384)
              --train-steps N    timed training steps after one warm-up step (default 2)
              --case-timeout S   stop (exit 3) if one benchmark runs longer (default 300)
              --smoke            toy sizes, one sample: checks the code path (the fake CUDA stack's test)
            """;

    static final List<String> SECTIONS = List.of("copy", "gemm", "kernels", "attention", "train");
    static final String REPORT_JSON = "gpu-report.json", REPORT_MD = "gpu-report.md";

    private GpuReport() {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err, CudaBackend.gpuRequired()));
    }

    /**
     * Runs the report; returns the exit code (0 done, or skipped without a GPU unless {@code gpuRequired}; 1 some
     * benchmark failed, or no GPU where one is required; 2 bad arguments).
     */
    static int run(String[] args, PrintStream out, PrintStream err, boolean gpuRequired) {
        Options o;
        try {
            o = Options.parse(args);
        } catch (IllegalArgumentException e) {
            err.println("gpu-report: " + e.getMessage());
            err.print(USAGE);
            return 2;
        }
        if (o.help()) {
            out.print(USAGE);
            return 0;
        }
        CudaBackend gpu;
        try {
            gpu = CudaBackend.open(o.device());
        } catch (CudaUnavailableException e) {
            String reason = "no usable GPU: " + e.getMessage();
            err.println("gpu-report: " + (gpuRequired ? "FAILED (" + CudaBackend.REQUIRE_GPU_ENV + "=1), " : "skipped, ") + reason);
            ObjectNode skip = JSON.createObjectNode().put("tool", "tenfold gpu-report").put(gpuRequired ? "failed" : "skipped", reason);
            out.println(skip);
            try {
                writeAtomically(o.out().resolve(REPORT_JSON), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(skip));
            } catch (IOException io) {
                err.println("gpu-report: could not write " + o.out().resolve(REPORT_JSON) + ": " + io.getMessage());
            }
            return gpuRequired ? 1 : 0;
        } catch (RuntimeException e) { // a driver that loads but fails (a fatbin without this GPU's code, ...)
            err.println("gpu-report: cannot open cuda:" + o.device() + ": " + e);
            return 1;
        }
        Sizes sizes = o.smoke() ? Sizes.smoke() : Sizes.full();
        Report report = new Report(environment(gpu, o, sizes, args), o.out(), err);
        report.env().forEach((k, v) -> err.println("gpu-report: " + k + ": " + v));
        report.write();
        try (CudaTimer timer = new CudaTimer(gpu);
             Watchdog dog = new Watchdog(o.caseTimeoutSeconds(), what -> {
                 report.abort("watchdog: '" + what + "' ran for more than " + o.caseTimeoutSeconds()
                         + " s (a hung kernel?); the process was stopped");
                 report.write();
                 err.println("gpu-report: " + report.aborted());
             })) {
            Bench b = new Bench(gpu, timer, o, dog, err);
            for (String section : o.sections()) {
                if (report.aborted() != null) break;
                switch (section) {
                    case "copy" -> copy(b, sizes, report);
                    case "gemm" -> gemm(b, sizes, report);
                    case "kernels" -> kernels(b, sizes, report);
                    case "attention" -> attention(b, sizes, report);
                    case "train" -> train(b, sizes, report);
                    default -> throw new IllegalStateException(section);
                }
            }
        }
        report.write();
        out.println(report.markdown());
        err.println("gpu-report: written " + o.out().resolve(REPORT_JSON) + " and " + REPORT_MD);
        err.println(summary(report.rows(), report.aborted()));
        return report.aborted() == null && report.rows().stream().noneMatch(Row::failed) ? 0 : 1;
    }

    /** One line that .gpu/run.sh reads: rows measured and failed, and the first failure. */
    static String summary(List<Row> rows, String aborted) {
        long failed = rows.stream().filter(Row::failed).count();
        String first = rows.stream().filter(Row::failed).findFirst().map(r -> r.id() + ": " + r.error())
                .orElse(aborted != null ? aborted : "-");
        return "gpu-report: " + rows.size() + " rows, " + (rows.size() - failed) + " measured, " + failed + " failed"
                + (aborted != null ? ", stopped" : "") + "; first failure: " + first;
    }

    // ------------------------------------------------------------------ options and sizes

    record Options(int device, Path out, boolean quick, boolean smoke, List<String> sections, int warmup, int reps,
                   double targetMs, int maxRuns, int trainTokens, int trainSteps, int caseTimeoutSeconds, boolean help) {

        static Options parse(String... args) {
            int device = 0, caseTimeout = 300;
            Path out = Path.of("target", "gpu-report");
            boolean quick = false, smoke = false, help = false, noTrain = false;
            List<String> sections = SECTIONS;
            Integer warmup = null, reps = null, trainTokens = null, trainSteps = null;
            Double targetMs = null;
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--out" -> out = Path.of(value(args, ++i, a));
                    case "--device" -> device = parseDevice(value(args, ++i, a));
                    case "--sections" -> sections = parseSections(value(args, ++i, a));
                    case "--no-train" -> noTrain = true;
                    case "--quick" -> quick = true;
                    case "--smoke" -> smoke = true;
                    case "--warmup" -> warmup = intAtLeast(value(args, ++i, a), a, 0);
                    case "--reps" -> reps = intAtLeast(value(args, ++i, a), a, 1);
                    case "--target-ms" -> targetMs = nonNegative(value(args, ++i, a), a);
                    case "--train-tokens" -> trainTokens = intAtLeast(value(args, ++i, a), a, 1);
                    case "--train-steps" -> trainSteps = intAtLeast(value(args, ++i, a), a, 1);
                    case "--case-timeout" -> caseTimeout = intAtLeast(value(args, ++i, a), a, 1);
                    case "-h", "--help" -> help = true;
                    default -> throw new IllegalArgumentException("unknown argument '" + a + "'");
                }
            }
            if (noTrain) sections = sections.stream().filter(s -> !s.equals("train")).toList();
            return new Options(device, out, quick, smoke, sections,
                    warmup != null ? warmup : smoke ? 0 : quick ? 1 : 3,
                    reps != null ? reps : smoke ? 1 : quick ? 3 : 10,
                    targetMs != null ? targetMs : smoke ? 0 : quick ? 10 : 25,
                    smoke ? 1 : 1000,
                    trainTokens != null ? trainTokens : smoke ? 64 : 16384,
                    trainSteps != null ? trainSteps : quick || smoke ? 1 : 2,
                    caseTimeout, help);
        }

        private static String value(String[] args, int i, String option) {
            if (i >= args.length) throw new IllegalArgumentException(option + " needs a value");
            return args[i];
        }

        static int parseDevice(String s) {
            String v = s.startsWith("cuda:") ? s.substring(5) : s.equals("cuda") ? "0" : s;
            try {
                int n = Integer.parseInt(v);
                if (n >= 0) return n;
            } catch (NumberFormatException e) {
                // below
            }
            throw new IllegalArgumentException("--device takes a GPU index (0, cuda:0), got '" + s + "'");
        }

        static List<String> parseSections(String list) {
            List<String> out = new ArrayList<>();
            for (String s : list.split(",")) {
                String t = s.trim();
                if (t.isEmpty()) continue;
                if (!SECTIONS.contains(t)) throw new IllegalArgumentException("unknown section '" + t + "' (sections: " + String.join(",", SECTIONS) + ")");
                if (!out.contains(t)) out.add(t);
            }
            if (out.isEmpty()) throw new IllegalArgumentException("--sections needs at least one of " + String.join(",", SECTIONS));
            // always in the canonical order: the copy and GEMM references come before what is compared with them
            return SECTIONS.stream().filter(out::contains).toList();
        }

        private static int intAtLeast(String s, String option, int min) {
            try {
                int n = Integer.parseInt(s);
                if (n >= min) return n;
            } catch (NumberFormatException e) {
                // below
            }
            throw new IllegalArgumentException(option + " takes an integer >= " + min + ", got '" + s + "'");
        }

        private static double nonNegative(String s, String option) {
            try {
                double d = Double.parseDouble(s);
                if (d >= 0 && Double.isFinite(d)) return d;
            } catch (NumberFormatException e) {
                // below
            }
            throw new IllegalArgumentException(option + " takes a number >= 0, got '" + s + "'");
        }
    }

    /** A GEMM shape: out [m, n] = x [m, k] W^T, W [n, k]. */
    record Gemm(String id, String what, int m, int n, int k) {}

    /** Every benchmark's size. {@link #full()} is what the peers (kernel_peers.py) use too. */
    record Sizes(String name, long copyBytes, List<Gemm> gemms, int nf4Rows, int nf4Cols, int nf4Sets, int normRows, int hidden,
                 int ropeRows, int ropeHeads, int headDim, int swigluRows, int inter, long adamwN, long castN, int embedT, int vocab,
                 int ceT, int ceVc, int softmaxRows, int softmaxN, int attnTokens, List<Integer> attnSeqs, int attnHq, int attnHkv,
                 int attnD, int backendAttnSeq, String trainConfig, String trainDescription) {

        static Sizes full() {
            return new Sizes("full", GpuWork.GiB,
                    List.of(new Gemm("gemm_bf16_square", "4096^3", 4096, 4096, 4096),
                            new Gemm("gemm_bf16_qo", "q/o projection, 16K tokens", 16384, 4096, 4096),
                            new Gemm("gemm_bf16_up", "gate/up projection, 16K tokens", 16384, 14336, 4096),
                            new Gemm("gemm_bf16_down", "down projection, 16K tokens", 16384, 4096, 14336)),
                    4096, 14336, 4, 16384, 4096, 16384, 32, 128, 16384, 14336, 100_000_000L, 16384L * 4096, 16384, 128256,
                    4096, 8192, 16384, 4096, 65536, List.of(1024, 4096, 16384, 65536), 32, 8, 128, 16384,
                    GpuTrainStep.LLAMA3_8B, GpuTrainStep.LLAMA3_8B_DESCRIPTION);
        }

        /** Toy sizes for the fake CUDA stack (host loops): every code path, in seconds. */
        static Sizes smoke() {
            return new Sizes("smoke", 64 * GpuWork.KiB,
                    List.of(new Gemm("gemm_bf16_square", "64^3", 64, 64, 64), new Gemm("gemm_bf16_up", "toy projection", 32, 96, 64)),
                    64, 128, 2, 16, 64, 16, 4, 64, 16, 96, 1000, 4096, 16, 100, 8, 64, 8, 64, 128, List.of(64, 128), 4, 2, 64, 64,
                    GpuTrainStep.TINY, GpuTrainStep.TINY_DESCRIPTION);
        }
    }

    /** A benchmark's shape as the report prints it and the work its rate divides ("bytes" or "flops" per run). */
    record Planned(String shape, String workKind, double work) {}

    /**
     * Every benchmark's shape and work by id, for {@code sizes}: the one place they are computed (the
     * sections take them from here; GpuWorkTest checks them against the peers' scripts).
     */
    static Map<String, Planned> plan(Sizes s) {
        Map<String, Planned> m = new LinkedHashMap<>();
        m.put("copy_d2d", new Planned(gib(s.copyBytes()), "bytes", GpuWork.copyBytes(s.copyBytes())));
        for (Gemm g : s.gemms()) {
            m.put(g.id(), new Planned("M=" + g.m() + " N=" + g.n() + " K=" + g.k(), "flops", GpuWork.gemmFlops(g.m(), g.n(), g.k())));
        }
        long nf4 = (long) s.nf4Rows() * s.nf4Cols();
        m.put("nf4_dequant_bf16", new Planned(s.nf4Rows() + "x" + s.nf4Cols(), "bytes", GpuWork.nf4DequantBytes(nf4, true, 2)));
        m.put("rmsnorm_fwd", new Planned(s.normRows() + "x" + s.hidden() + " f32", "bytes", GpuWork.rmsnormFwdBytes(s.normRows(), s.hidden())));
        m.put("rope_fwd", new Planned(s.ropeRows() + "x" + s.ropeHeads() + "x" + s.headDim() + " f32", "bytes",
                GpuWork.ropeBytes(s.ropeRows(), s.ropeHeads(), s.headDim())));
        m.put("swiglu_fwd", new Planned(s.swigluRows() + "x" + s.inter() + " f32", "bytes", GpuWork.swigluFwdBytes((long) s.swigluRows() * s.inter())));
        m.put("adamw", new Planned(String.format(Locale.ROOT, "%,d params", s.adamwN()), "bytes", GpuWork.adamwBytes(s.adamwN())));
        String castShape = String.format(Locale.ROOT, "%,d elements", s.castN());
        m.put("cast_f32_bf16", new Planned(castShape, "bytes", GpuWork.castBytes(s.castN(), 4, 2)));
        m.put("cast_bf16_f32", new Planned(castShape, "bytes", GpuWork.castBytes(s.castN(), 2, 4)));
        m.put("embedding_fwd_bf16", new Planned(s.embedT() + " ids into " + s.vocab() + "x" + s.hidden(), "bytes",
                GpuWork.embeddingFwdBytes(s.embedT(), s.hidden(), 2)));
        String ceShape = s.ceT() + "x" + s.ceVc() + " f32 logits";
        m.put("ce_stats", new Planned(ceShape, "bytes", GpuWork.ceStatsBytes(s.ceT(), s.ceVc())));
        m.put("ce_grad", new Planned(ceShape, "bytes", GpuWork.ceGradBytes(s.ceT(), s.ceVc())));
        m.put("softmax_fwd", new Planned(s.softmaxRows() + "x" + s.softmaxN() + " f32", "bytes",
                GpuWork.softmaxFwdBytes(s.softmaxRows(), s.softmaxN())));
        for (int seq : s.attnSeqs()) {
            int batch = Math.max(1, s.attnTokens() / seq);
            String shape = attentionShape(batch, seq, s);
            double f = GpuWork.attentionFwdFlops(batch, seq, s.attnHq(), s.attnD(), true);
            m.put("attn_fwd_s" + seq, new Planned(shape, "flops", f));
            m.put("attn_bwd_s" + seq, new Planned(shape, "flops", GpuWork.attentionBwdFlops(batch, seq, s.attnHq(), s.attnD(), true)));
            m.put("attn_fwd_bwd_s" + seq, new Planned(shape, "flops", GpuWork.attentionFwdBwdFlops(batch, seq, s.attnHq(), s.attnD(), true)));
            m.put("attn_fwd_bwd_atomic_s" + seq, new Planned(shape, "flops",
                    GpuWork.attentionFwdBwdFlops(batch, seq, s.attnHq(), s.attnD(), true)));
            m.put("attn_fwd_bwd_asc_s" + seq, new Planned(shape, "flops",
                    GpuWork.attentionFwdBwdFlops(batch, seq, s.attnHq(), s.attnD(), true)));
        }
        int seq = s.backendAttnSeq(), batch = Math.max(1, s.attnTokens() / seq);
        String shape = attentionShape(batch, seq, s) + ", f32 tensors";
        m.put("attn_backend_fwd_s" + seq, new Planned(shape, "flops", GpuWork.attentionFwdFlops(batch, seq, s.attnHq(), s.attnD(), true)));
        m.put("attn_backend_fwd_bwd_s" + seq, new Planned(shape, "flops",
                GpuWork.attentionFwdBwdFlops(batch, seq, s.attnHq(), s.attnD(), true)));
        return m;
    }

    static String attentionShape(int batch, int seq, Sizes s) {
        return "B=" + batch + " S=" + seq + " Hq=" + s.attnHq() + " Hkv=" + s.attnHkv() + " d=" + s.attnD() + " causal";
    }

    // ------------------------------------------------------------------ rows

    /** One timing: median and best milliseconds per run, samples taken, runs per sample. */
    record Measured(double ms, double bestMs, int samples, int runs) {}

    /**
     * One figure of the report. {@code unit} is GB/s, TFLOP/s, tokens/s or GiB; {@code work} is what the
     * rate divides (bytes or FLOPs per run; NaN otherwise); {@code targetPct} the % of the limit the kernel
     * should reach (0: none); {@code error} non-null when the benchmark failed.
     */
    record Row(String id, String section, String what, String shape, String unit, double value, double ms, double bestMs,
               int samples, int runs, String workKind, double work, double targetPct, String note, String error) {

        static Row bandwidth(String id, String section, String what, String shape, double bytes, Measured m, double targetPct,
                             String note) {
            return new Row(id, section, what, shape, "GB/s", GpuWork.gbPerSecond(bytes, m.ms()), m.ms(), m.bestMs(), m.samples(),
                    m.runs(), "bytes", bytes, targetPct, note, null);
        }

        static Row compute(String id, String section, String what, String shape, double flops, Measured m, String note) {
            return new Row(id, section, what, shape, "TFLOP/s", GpuWork.tflopPerSecond(flops, m.ms()), m.ms(), m.bestMs(),
                    m.samples(), m.runs(), "flops", flops, 0, note, null);
        }

        static Row other(String id, String section, String what, String shape, String unit, double value, double ms, double bestMs,
                         int samples, String note) {
            return new Row(id, section, what, shape, unit, value, ms, bestMs, samples, 1, null, Double.NaN, 0, note, null);
        }

        static Row failed(String id, String section, String what, String error) {
            return new Row(id, section, what, "", "", Double.NaN, Double.NaN, Double.NaN, 0, 0, null, Double.NaN, 0, null, error);
        }

        boolean failed() { return error != null; }

        /** The rate at the best sample (bandwidth and compute rows), else NaN. */
        double bestValue() {
            if (failed() || !(bestMs > 0)) return Double.NaN;
            return switch (unit) {
                case "GB/s" -> GpuWork.gbPerSecond(work, bestMs);
                case "TFLOP/s" -> GpuWork.tflopPerSecond(work, bestMs);
                default -> Double.NaN;
            };
        }
    }

    /** The copy bandwidth (GB/s) of the report's copy row, or NaN. */
    static double copyReference(List<Row> rows) {
        for (Row r : rows) if (r.id().equals("copy_d2d") && !r.failed()) return r.value();
        return Double.NaN;
    }

    /** The best cuBLAS GEMM rate (TFLOP/s) of the report's gemm rows, or NaN. */
    static double matmulReference(List<Row> rows) {
        double best = Double.NaN;
        for (Row r : rows) {
            if (r.id().startsWith("gemm_") && !r.failed() && (Double.isNaN(best) || r.value() > best)) best = r.value();
        }
        return best;
    }

    /** A row's rate as a % of its limit: GB/s of the copy bandwidth, TFLOP/s of the best GEMM; NaN otherwise. */
    static double percentOfLimit(Row r, double copyGbps, double matmulTflops) {
        if (r.failed()) return Double.NaN;
        return switch (r.unit()) {
            case "GB/s" -> GpuWork.percent(r.value(), copyGbps);
            case "TFLOP/s" -> GpuWork.percent(r.value(), matmulTflops);
            default -> Double.NaN;
        };
    }

    // ------------------------------------------------------------------ the report (rows, files)

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    static final class Report {
        private final Map<String, String> env;
        private final Path dir;
        private final PrintStream err;
        private final List<Row> rows = new ArrayList<>();
        private volatile String aborted;

        Report(Map<String, String> env, Path dir, PrintStream err) {
            this.env = env;
            this.dir = dir;
            this.err = err;
        }

        Map<String, String> env() { return env; }

        synchronized List<Row> rows() { return List.copyOf(rows); }

        synchronized void add(Row r) { rows.add(r); }

        String aborted() { return aborted; }

        void abort(String why) { if (aborted == null) aborted = why; }

        synchronized ObjectNode json() { return GpuReport.json(env, rows, aborted); }

        synchronized String markdown() { return GpuReport.markdown(env, rows, aborted); }

        /** Writes gpu-report.json and gpu-report.md (each to a temporary name, then renamed into place). */
        synchronized void write() {
            try {
                writeAtomically(dir.resolve(REPORT_JSON), JSON.writeValueAsString(json()));
                writeAtomically(dir.resolve(REPORT_MD), markdown());
            } catch (IOException e) {
                err.println("gpu-report: could not write the report to " + dir + ": " + e.getMessage());
            }
        }
    }

    static void writeAtomically(Path file, String text) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, "." + file.getFileName(), ".tmp");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** The report as JSON: env, the two references, every row with its % of limit, and why it stopped early (or null). */
    static ObjectNode json(Map<String, String> env, List<Row> rows, String aborted) {
        ObjectNode root = JSON.createObjectNode().put("tool", "tenfold gpu-report");
        ObjectNode e = root.putObject("env");
        env.forEach(e::put);
        double copy = copyReference(rows), matmul = matmulReference(rows);
        ObjectNode ref = root.putObject("reference");
        number(ref, "copy_gbps", copy);
        number(ref, "matmul_tflops", matmul);
        ArrayNode list = root.putArray("rows");
        for (Row r : rows) {
            ObjectNode n = list.addObject().put("id", r.id()).put("section", r.section()).put("what", r.what()).put("shape", r.shape());
            if (r.failed()) {
                n.put("error", r.error());
                continue;
            }
            n.put("unit", r.unit());
            number(n, "value", r.value());
            number(n, "best_value", r.bestValue());
            number(n, "ms", r.ms());
            number(n, "best_ms", r.bestMs());
            n.put("samples", r.samples()).put("runs_per_sample", r.runs());
            if (r.workKind() != null) number(n, r.workKind(), r.work());
            number(n, "pct_of_limit", percentOfLimit(r, copy, matmul));
            if (r.targetPct() > 0) n.put("target_pct", r.targetPct());
            if (r.note() != null) n.put("note", r.note());
        }
        if (aborted != null) root.put("aborted", aborted);
        else root.putNull("aborted");
        return root;
    }

    /** Puts a double, or null when it is NaN or infinite (JSON has neither). */
    static void number(ObjectNode n, String key, double v) {
        if (Double.isFinite(v)) n.put(key, v);
        else n.putNull(key);
    }

    /** The report as a markdown table with the environment above it and the rows' notes below. */
    static String markdown(Map<String, String> env, List<Row> rows, String aborted) {
        StringBuilder sb = new StringBuilder();
        sb.append("# tenfold GPU benchmarks: ").append(env.getOrDefault("gpu", "?")).append(", ").append(env.getOrDefault("date", "?"))
                .append("\n\n");
        env.forEach((k, v) -> sb.append("- ").append(k).append(": ").append(v).append('\n'));
        double copy = copyReference(rows), matmul = matmulReference(rows);
        sb.append("\nLimits: copy ").append(rate(copy)).append(" GB/s (device-to-device, bytes read + written); matmul ")
                .append(rate(matmul)).append(" TFLOP/s (best cuBLAS bf16 GEMM below). Median of the samples; ")
                .append("\"% of limit\" is GB/s over the copy bandwidth, TFLOP/s over the matmul rate.\n\n");
        sb.append("| id | what | shape | ms | rate | % of limit | target |\n|---|---|---|---:|---:|---:|---|\n");
        List<String> notes = new ArrayList<>();
        for (Row r : rows) {
            if (r.failed()) {
                sb.append("| ").append(r.id()).append(" | ").append(cell(r.what())).append(" | | | FAILED | | |\n");
                notes.add(r.id() + ": FAILED: " + r.error());
                continue;
            }
            double pct = percentOfLimit(r, copy, matmul);
            sb.append("| ").append(r.id()).append(" | ").append(cell(r.what())).append(" | ").append(cell(r.shape())).append(" | ")
                    .append(Double.isFinite(r.ms()) ? String.format(Locale.ROOT, "%.3f", r.ms()) : "").append(" | ")
                    .append(rate(r.value())).append(' ').append(r.unit()).append(" | ")
                    .append(Double.isFinite(pct) ? String.format(Locale.ROOT, "%.1f%%", pct) : "").append(" | ")
                    .append(target(r.targetPct(), pct)).append(" |\n");
            if (r.note() != null) notes.add(r.id() + ": " + r.note());
        }
        if (!notes.isEmpty()) {
            sb.append("\nNotes:\n");
            for (String n : notes) sb.append("- ").append(n).append('\n');
        }
        if (aborted != null) sb.append("\n**Stopped early:** ").append(aborted).append('\n');
        return sb.toString();
    }

    /** "≥ 80%: ok" or "≥ 80%: below", or "" without a target. */
    static String target(double targetPct, double pct) {
        if (!(targetPct > 0)) return "";
        String t = String.format(Locale.ROOT, ">= %.0f%%", targetPct);
        if (!Double.isFinite(pct)) return t;
        return t + (pct >= targetPct ? ": ok" : ": below");
    }

    /** A rate with sensible digits: 2,684 / 93.4 / 7.52; "n/a" for NaN. */
    static String rate(double v) {
        if (!Double.isFinite(v)) return "n/a";
        double a = Math.abs(v);
        return a >= 100 ? String.format(Locale.ROOT, "%,.0f", v) : a >= 10 ? String.format(Locale.ROOT, "%.1f", v)
                : String.format(Locale.ROOT, "%.2f", v);
    }

    private static String cell(String s) { return s == null ? "" : s.replace("|", "\\|").replace("\n", " "); }

    // ------------------------------------------------------------------ environment

    static Map<String, String> environment(CudaBackend gpu, Options o, Sizes sizes, String[] args) {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("date", OffsetDateTime.now(ZoneOffset.UTC).truncatedTo(ChronoUnit.SECONDS).toString());
        env.put("gpu", gpu.gpuName());
        env.put("device", gpu.name() + ", compute capability " + gpu.computeCapability() + ", " + gpu.multiprocessors() + " SMs, "
                + String.format(Locale.ROOT, "%.1f GiB", gpu.memoryInfo().total() / (double) GpuWork.GiB));
        int v = CudaDriver.get().driverVersion();
        env.put("cuda_driver_api", v / 1000 + "." + (v % 1000) / 10);
        env.put("nvidia_driver", nvidiaDriverVersion());
        env.put("cublas", gpu.cublasVersion());
        Properties kp = kernelBuild();
        env.put("kernels", "nvcc " + kp.getProperty("nvcc", "?") + ", " + kp.getProperty("archs", "?"));
        env.put("java", Runtime.version().toString());
        env.put("cpu", Machine.cpuModel());
        env.put("sizes", sizes.name());
        env.put("timing", "CUDA events; warm-up " + o.warmup() + ", median of " + o.reps() + " samples of about "
                + rate(o.targetMs()) + " ms each");
        env.put("command", ("gpu-report " + String.join(" ", args)).trim());
        return env;
    }

    /** The NVIDIA kernel module's version from /proc/driver/nvidia/version, or "unknown". */
    static String nvidiaDriverVersion() {
        try {
            return parseNvidiaDriverVersion(Files.readString(Path.of("/proc/driver/nvidia/version")));
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    /** "580.82.07" from "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.82.07  Fri ..."; "unknown" when absent. */
    static String parseNvidiaDriverVersion(String text) {
        Matcher m = Pattern.compile("Kernel Module(?: for [A-Za-z0-9_]+)?\\s+([0-9]+(?:\\.[0-9]+)+)").matcher(text);
        return m.find() ? m.group(1) : "unknown";
    }

    private static Properties kernelBuild() {
        Properties p = new Properties();
        String res = CudaKernels.RESOURCE.replace("tenfold.fatbin", "build.properties");
        try (InputStream in = GpuReport.class.getClassLoader().getResourceAsStream(res)) {
            if (in != null) p.load(in);
        } catch (IOException e) {
            // unknown
        }
        return p;
    }

    // ------------------------------------------------------------------ measuring

    /** What every benchmark needs: the GPU, the timer, the options, the watchdog and the log. */
    static final class Bench {
        final CudaBackend gpu;
        final CudaTimer timer;
        final Options o;
        final Watchdog dog;
        final PrintStream err;

        Bench(CudaBackend gpu, CudaTimer timer, Options o, Watchdog dog, PrintStream err) {
            this.gpu = gpu;
            this.timer = timer;
            this.o = o;
            this.dog = dog;
            this.err = err;
        }

        /** Warm-up runs, one run to size the samples, then the samples: ms per run. */
        Measured measure(String id, Runnable op) {
            dog.enter(id);
            for (int i = 0; i < o.warmup(); i++) op.run();
            gpu.synchronize();
            double one = timer.millisPerRun(1, op);
            int runs = GpuWork.runsPerSample(one, o.targetMs(), o.maxRuns());
            double[] samples = new double[o.reps()];
            for (int i = 0; i < samples.length; i++) samples[i] = timer.millisPerRun(runs, op);
            return new Measured(GpuWork.median(samples), GpuWork.min(samples), samples.length, runs);
        }

        /**
         * Runs one benchmark case and records its rows; a failure becomes a failed row. After a CUDA error
         * other than out-of-memory the GPU is checked with a synchronize: if the context is gone (a sticky
         * error such as an illegal address) the report stops there.
         */
        void run(Report r, String id, String section, String what, Callable<List<Row>> body) {
            if (r.aborted() != null) return;
            dog.enter(id);
            try {
                for (Row row : body.call()) {
                    r.add(row);
                    log(row);
                }
            } catch (CudaOutOfMemoryException e) {
                fail(r, id, section, what, e);
            } catch (CudaException e) {
                fail(r, id, section, what, e);
                try {
                    gpu.synchronize();
                } catch (RuntimeException sticky) {
                    r.abort("CUDA error in " + id + " (" + e.getMessage() + "); the GPU context is unusable after it ("
                            + sticky.getMessage() + "), so the remaining benchmarks were skipped");
                }
            } catch (Exception e) {
                fail(r, id, section, what, e);
            } finally {
                dog.enter(null);
            }
            r.write();
        }

        private void fail(Report r, String id, String section, String what, Exception e) {
            String msg = e.getClass().getSimpleName() + ": " + e.getMessage();
            r.add(Row.failed(id, section, what, msg));
            err.println("gpu-report: " + id + " FAILED: " + msg);
        }

        void log(Row r) {
            String ms = Double.isFinite(r.ms()) ? String.format(Locale.ROOT, "%10.4f ms", r.ms()) : "          -   ";
            err.println(String.format(Locale.ROOT, "gpu-report: %-26s %s  %10s %s  (%s)", r.id(), ms, rate(r.value()), r.unit(), r.shape()));
        }
    }

    /** Closes what it was given, last first. */
    static final class Closer implements AutoCloseable {
        private final List<AutoCloseable> items = new ArrayList<>();

        <T extends AutoCloseable> T add(T t) {
            items.add(t);
            return t;
        }

        @Override
        public void close() {
            for (int i = items.size() - 1; i >= 0; i--) {
                try {
                    items.get(i).close();
                } catch (Exception e) {
                    // freeing benchmark tensors cannot fail in a way worth reporting
                }
            }
            items.clear();
        }
    }

    /** Stops the process when one benchmark runs too long (a hung kernel blocks the main thread in the driver). */
    static final class Watchdog implements AutoCloseable {
        private final long limitNanos;
        private final Consumer<String> onTimeout;
        private final Thread thread;
        private volatile String current;
        private volatile long since;
        private volatile boolean closed;

        Watchdog(int seconds, Consumer<String> onTimeout) {
            this.limitNanos = seconds * 1_000_000_000L;
            this.onTimeout = onTimeout;
            this.thread = Thread.ofPlatform().daemon().name("gpu-report-watchdog").start(this::loop);
        }

        /** Starts timing {@code what} (null: nothing runs). */
        void enter(String what) {
            since = System.nanoTime();
            current = what;
        }

        private void loop() {
            while (!closed) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
                String what = current;
                if (what != null && !closed && System.nanoTime() - since > limitNanos) {
                    onTimeout.accept(what);
                    Runtime.getRuntime().halt(3);
                }
            }
        }

        @Override
        public void close() {
            closed = true;
            thread.interrupt();
        }
    }

    // ------------------------------------------------------------------ sections

    static String gib(long bytes) {
        return bytes >= GpuWork.GiB && bytes % GpuWork.GiB == 0 ? bytes / GpuWork.GiB + " GiB"
                : bytes >= GpuWork.MiB ? String.format(Locale.ROOT, "%.0f MiB", bytes / (double) GpuWork.MiB)
                : String.format(Locale.ROOT, "%.0f KiB", bytes / (double) GpuWork.KiB);
    }

    /** A bandwidth row with the planned shape and bytes of {@code id}. */
    private static Row bandwidthRow(Map<String, Planned> plan, String id, String section, String what, Measured m, double targetPct,
                                    String note) {
        Planned p = plan.get(id);
        return Row.bandwidth(id, section, what, p.shape(), p.work(), m, targetPct, note);
    }

    /** A compute row with the planned shape and FLOPs of {@code id}. */
    private static Row computeRow(Map<String, Planned> plan, String id, String section, String what, Measured m, String note) {
        Planned p = plan.get(id);
        return Row.compute(id, section, what, p.shape(), p.work(), m, note);
    }

    static void copy(Bench b, Sizes s, Report r) {
        Map<String, Planned> plan = plan(s);
        String what = "device-to-device copy (cuMemcpyDtoDAsync)";
        b.run(r, "copy_d2d", "copy", what, () -> {
            try (Closer c = new Closer()) {
                Tensor src = c.add(DeviceFill.random(b.gpu, DType.U8, 1, 1f, s.copyBytes()));
                Tensor dst = c.add(b.gpu.allocateUninitialized(DType.U8, s.copyBytes()));
                Measured m = b.measure("copy_d2d", () -> b.gpu.copy(src, dst));
                return List.of(bandwidthRow(plan, "copy_d2d", "copy", what, m, 0, "the bandwidth reference: bytes read + bytes written"));
            }
        });
    }

    static void gemm(Bench b, Sizes s, Report r) {
        Map<String, Planned> plan = plan(s);
        for (Gemm g : s.gemms()) {
            String what = "cuBLAS bf16 GEMM, " + g.what();
            b.run(r, g.id(), "gemm", what, () -> {
                try (Closer c = new Closer()) {
                    Tensor a = c.add(DeviceFill.random(b.gpu, DType.BF16, 11, 1f, g.m(), g.k()));
                    Tensor w = c.add(DeviceFill.random(b.gpu, DType.BF16, 12, 0.02f, g.n(), g.k()));
                    Tensor out = c.add(b.gpu.allocateUninitialized(DType.F32, g.m(), g.n()));
                    Measured m = b.measure(g.id(), () -> b.gpu.matmul(a, false, w, true, out, false));
                    return List.of(computeRow(plan, g.id(), "gemm", what, m,
                            "out = x W^T as a Linear layer runs it: cublasGemmEx, bf16 inputs, f32 accumulate and f32 output"));
                }
            });
        }
    }

    static void kernels(Bench b, Sizes s, Report r) {
        CudaBackend gpu = b.gpu;
        Map<String, Planned> plan = plan(s);
        // NF4 dequantization of one projection, double-quantized absmax, to bf16; inputs rotate over
        // several copies so that they are not served from L2
        String nf4What = "NF4 dequantize to bf16 (double-quantized absmax)";
        b.run(r, "nf4_dequant_bf16", "kernels", nf4What, () -> {
            try (Closer c = new Closer()) {
                long n = (long) s.nf4Rows() * s.nf4Cols(), blocks = n / 64, nested = Math.ceilDiv(blocks, 256);
                Tensor[] packed = new Tensor[s.nf4Sets()], absmax = new Tensor[s.nf4Sets()], nestedAbsmax = new Tensor[s.nf4Sets()];
                for (int i = 0; i < s.nf4Sets(); i++) {
                    packed[i] = c.add(DeviceFill.random(gpu, DType.U8, 100 + i, 1f, n / 2));
                    absmax[i] = c.add(DeviceFill.random(gpu, DType.U8, 200 + i, 1f, blocks));
                    nestedAbsmax[i] = c.add(DeviceFill.constant(gpu, 0.01f, nested));
                }
                Tensor code = c.add(DeviceFill.floats(gpu, Nf4.DYNAMIC_MAP));
                Tensor out = c.add(gpu.allocateUninitialized(DType.BF16, s.nf4Rows(), s.nf4Cols()));
                int[] k = {0};
                Measured m = b.measure("nf4_dequant_bf16", () -> {
                    int i = k[0]++ % packed.length;
                    gpu.dequantizeNf4(packed[i], absmax[i], nestedAbsmax[i], code, 0.02f, out);
                });
                return List.of(bandwidthRow(plan, "nf4_dequant_bf16", "kernels", nf4What, m, 85,
                        "tf_nf4_dequant_bf16; the inputs rotate over " + s.nf4Sets() + " weights so that they do not stay in L2"));
            }
        });

        String normWhat = "RMSNorm forward (f32)";
        b.run(r, "rmsnorm_fwd", "kernels", normWhat, () -> {
            try (Closer c = new Closer()) {
                Tensor x = c.add(DeviceFill.random(gpu, DType.F32, 21, 1f, s.normRows(), s.hidden()));
                Tensor w = c.add(DeviceFill.constant(gpu, 1f, s.hidden()));
                Tensor out = c.add(gpu.allocateUninitialized(DType.F32, s.normRows(), s.hidden()));
                Tensor rstd = c.add(gpu.allocateUninitialized(DType.F32, s.normRows()));
                Measured m = b.measure("rmsnorm_fwd", () -> gpu.rmsnorm(x, w, 1e-5f, out, rstd));
                return List.of(bandwidthRow(plan, "rmsnorm_fwd", "kernels", normWhat, m, 80, "tf_rmsnorm_fwd_f32 (writes rstd too)"));
            }
        });

        String ropeWhat = "RoPE forward (f32, HF rotate_half, sin/cos computed in the kernel)";
        b.run(r, "rope_fwd", "kernels", ropeWhat, () -> {
            try (Closer c = new Closer()) {
                int rows = s.ropeRows(), heads = s.ropeHeads(), d = s.headDim();
                Tensor x = c.add(DeviceFill.random(gpu, DType.F32, 31, 1f, rows, heads, d));
                float[] inv = new float[d / 2];
                for (int i = 0; i < inv.length; i++) inv[i] = (float) (1 / Math.pow(500000.0, 2.0 * i / d));
                Tensor invFreq = c.add(DeviceFill.floats(gpu, inv));
                int[] pos = new int[rows];
                for (int i = 0; i < rows; i++) pos[i] = i;
                Tensor positions = c.add(DeviceFill.ints(gpu, pos));
                Tensor out = c.add(gpu.allocateUninitialized(DType.F32, rows, heads, d));
                Measured m = b.measure("rope_fwd", () -> gpu.rope(x, invFreq, positions, 1f, out));
                return List.of(bandwidthRow(plan, "rope_fwd", "kernels", ropeWhat, m, 80, "tf_rope_f32 into a separate output"));
            }
        });

        String swiWhat = "SwiGLU forward silu(g) * u (f32)";
        b.run(r, "swiglu_fwd", "kernels", swiWhat, () -> {
            try (Closer c = new Closer()) {
                Tensor g = c.add(DeviceFill.random(gpu, DType.F32, 41, 3f, s.swigluRows(), s.inter()));
                Tensor u = c.add(DeviceFill.random(gpu, DType.F32, 42, 3f, s.swigluRows(), s.inter()));
                Tensor out = c.add(gpu.allocateUninitialized(DType.F32, s.swigluRows(), s.inter()));
                Measured m = b.measure("swiglu_fwd", () -> gpu.swiglu(g, u, out));
                return List.of(bandwidthRow(plan, "swiglu_fwd", "kernels", swiWhat, m, 80, "tf_swiglu_fwd_f32"));
            }
        });

        String adamWhat = "AdamW step (f32 param, grad, m, v)";
        b.run(r, "adamw", "kernels", adamWhat, () -> {
            try (Closer c = new Closer()) {
                long n = s.adamwN();
                Tensor p = c.add(DeviceFill.random(gpu, DType.F32, 51, 0.1f, n));
                Tensor g = c.add(DeviceFill.random(gpu, DType.F32, 52, 0.01f, n));
                Tensor m1 = c.add(gpu.allocate(DType.F32, n)), v1 = c.add(gpu.allocate(DType.F32, n));
                Backend.AdamW hp = new Backend.AdamW(1e-4f, 0.9f, 0.999f, 1e-8f, 0f);
                long[] step = {0};
                Measured m = b.measure("adamw", () -> gpu.adamw(p, g, m1, v1, hp, ++step[0]));
                return List.of(bandwidthRow(plan, "adamw", "kernels", adamWhat, m, 80, "tf_adamw_f32 over one tensor"));
            }
        });

        for (boolean toBf16 : new boolean[] {true, false}) {
            String id = toBf16 ? "cast_f32_bf16" : "cast_bf16_f32";
            String what = toBf16 ? "cast f32 -> bf16" : "cast bf16 -> f32";
            b.run(r, id, "kernels", what, () -> {
                try (Closer c = new Closer()) {
                    long n = s.castN();
                    Tensor src = c.add(DeviceFill.random(gpu, toBf16 ? DType.F32 : DType.BF16, 61, 2f, n));
                    Tensor dst = c.add(gpu.allocateUninitialized(toBf16 ? DType.BF16 : DType.F32, n));
                    Measured m = b.measure(id, () -> gpu.cast(src, dst));
                    return List.of(bandwidthRow(plan, id, "kernels", what, m, 0, "tf_" + id));
                }
            });
        }

        String embWhat = "embedding forward (bf16 table -> f32 rows)";
        b.run(r, "embedding_fwd_bf16", "kernels", embWhat, () -> {
            try (Closer c = new Closer()) {
                int t = s.embedT(), h = s.hidden(), v = s.vocab();
                Tensor table = c.add(DeviceFill.random(gpu, DType.BF16, 71, 0.05f, v, h));
                Tensor ids = c.add(DeviceFill.ints(gpu, DeviceFill.randomInts(t, v, 72)));
                Tensor out = c.add(gpu.allocateUninitialized(DType.F32, t, h));
                Tensor error = c.add(DeviceFill.ints(gpu, new int[] {-1, -1}));
                Measured m = b.measure("embedding_fwd_bf16", () -> gpu.launchKernel(KernelAbi.EMBEDDING_FWD_BF16, KernelAbi.rows(t),
                        table, ids, out, t, h, v, error));
                int word;
                try (Tensor e = gpu.toHost(error)) {
                    word = e.getInt(0);
                }
                return List.of(bandwidthRow(plan, "embedding_fwd_bf16", "kernels", embWhat, m, 0, "tf_embedding_fwd_bf16 launched alone"
                        + " (the op also reads back its error word)" + (word == -1 ? "" : "; the error word is " + word + ", not -1!")));
            }
        });

        String ceWhat = "cross-entropy chunk: pass 1 (online max/sum), pass 2 (softmax - onehot, in place)";
        b.run(r, "ce_chunk", "kernels", ceWhat, () -> {
            try (Closer c = new Closer()) {
                int t = s.ceT(), vc = s.ceVc();
                Tensor logits = c.add(DeviceFill.random(gpu, DType.F32, 81, 4f, t, vc));
                Tensor targets = c.add(DeviceFill.ints(gpu, DeviceFill.randomInts(t, vc, 82)));
                Tensor rowMax = c.add(DeviceFill.constant(gpu, Float.NEGATIVE_INFINITY, t));
                Tensor rowSum = c.add(DeviceFill.constant(gpu, 0f, t));
                Tensor targetLogit = c.add(DeviceFill.constant(gpu, 0f, t));
                Measured stats = b.measure("ce_stats", () -> gpu.launchKernel(KernelAbi.CE_STATS_F32, KernelAbi.rows(t), logits, targets,
                        t, vc, 0, rowMax, rowSum, targetLogit));
                Measured grad = b.measure("ce_grad", () -> gpu.launchKernel(KernelAbi.CE_GRAD_F32, KernelAbi.rows(t), logits, targets,
                        rowMax, rowSum, 1f / t, t, vc, 0));
                return List.of(
                        bandwidthRow(plan, "ce_stats", "kernels", "cross-entropy pass 1 over one logits chunk", stats, 0,
                                "tf_ce_stats_f32 on the chunk the backend uses (4096 tokens x 8192 vocabulary entries)"),
                        bandwidthRow(plan, "ce_grad", "kernels", "cross-entropy pass 2 over one logits chunk", grad, 0,
                                "tf_ce_grad_f32, in place"));
            }
        });

        String smWhat = "softmax forward over rows (f32)";
        b.run(r, "softmax_fwd", "kernels", smWhat, () -> {
            try (Closer c = new Closer()) {
                Tensor x = c.add(DeviceFill.random(gpu, DType.F32, 91, 4f, s.softmaxRows(), s.softmaxN()));
                Tensor out = c.add(gpu.allocateUninitialized(DType.F32, s.softmaxRows(), s.softmaxN()));
                Measured m = b.measure("softmax_fwd", () -> gpu.softmax(x, out));
                return List.of(bandwidthRow(plan, "softmax_fwd", "kernels", smWhat, m, 0, "tf_softmax_fwd_f32 (reads x twice; counted once)"));
            }
        });
    }

    static void attention(Bench b, Sizes s, Report r) {
        for (int seq : s.attnSeqs()) {
            b.run(r, "attn_s" + seq, "attention", "flash attention at seq " + seq, () -> flash(b, s, seq));
        }
        int seq = s.backendAttnSeq();
        b.run(r, "attn_backend_s" + seq, "attention", "CudaBackend.attention at seq " + seq, () -> backendAttention(b, s, seq));
    }

    /** The flash kernels launched directly on bf16 buffers: B sequences of {@code seq} packed, one launch per pass. */
    static List<Row> flash(Bench b, Sizes s, int seq) {
        CudaBackend gpu = b.gpu;
        Map<String, Planned> plan = plan(s);
        int batch = Math.max(1, s.attnTokens() / seq), total = batch * seq, hq = s.attnHq(), hkv = s.attnHkv(), d = s.attnD();
        KernelAbi.Kernel fwdKernel = switch (d) {
            case 64 -> KernelAbi.FLASH_FWD_D64;
            case 128 -> KernelAbi.FLASH_FWD_D128;
            default -> throw new IllegalArgumentException("flash kernels take head dim 64 or 128, not " + d);
        };
        KernelAbi.Kernel bwdKernel = d == 64 ? KernelAbi.FLASH_BWD_D64 : KernelAbi.FLASH_BWD_D128;
        float scale = (float) (1 / Math.sqrt(d));
        long qElems = (long) total * hq * d;
        try (Closer c = new Closer()) {
            Tensor q = c.add(DeviceFill.random(gpu, DType.BF16, 301, 1f, total, hq, d));
            Tensor k = c.add(DeviceFill.random(gpu, DType.BF16, 302, 1f, total, hkv, d));
            Tensor v = c.add(DeviceFill.random(gpu, DType.BF16, 303, 1f, total, hkv, d));
            Tensor dout = c.add(DeviceFill.random(gpu, DType.BF16, 304, 1f, total, hq, d));
            Tensor o = c.add(gpu.allocateUninitialized(DType.BF16, total, hq, d));
            Tensor lse = c.add(gpu.allocateUninitialized(DType.F32, hq, total));
            Tensor delta = c.add(gpu.allocateUninitialized(DType.F32, hq, total));
            // dq_accum, then the deterministic mode's semaphore words: zeroed together before every backward
            Tensor dqAccum = c.add(gpu.allocateUninitialized(DType.F32, qElems + KernelAbi.flashBackwardSemaphoreWords(batch, hq, seq)));
            Tensor dq = c.add(gpu.allocateUninitialized(DType.BF16, total, hq, d));
            Tensor dk = c.add(gpu.allocateUninitialized(DType.BF16, total, hkv, d));
            Tensor dv = c.add(gpu.allocateUninitialized(DType.BF16, total, hkv, d));
            int[] cu = new int[batch + 1];
            for (int i = 0; i <= batch; i++) cu[i] = i * seq;
            Tensor cuSeq = c.add(DeviceFill.ints(gpu, cu));
            Tensor error = c.add(gpu.allocate(DType.I32, 1)); // the deterministic backward's error word (0: none)
            KernelAbi.Launch lf = KernelAbi.flashForward(seq, hq, batch, d), lb = KernelAbi.flashBackward(seq, hkv, batch, d);
            KernelAbi.Launch lpre = KernelAbi.elementwise((long) total * hq * 32), lpost = KernelAbi.elementwise(qElems);
            Runnable fwd = () -> gpu.launchKernel(fwdKernel, lf, q, k, v, o, lse, cuSeq, cuSeq, batch, seq, hq, hkv, scale);
            IntFunction<Runnable> bwd = deterministic -> () -> {
                gpu.fill(dqAccum, 0f);
                gpu.launchKernel(KernelAbi.FLASH_BWD_PRE, lpre, o, dout, delta, total, hq, d);
                gpu.launchKernel(bwdKernel, lb, q, k, v, dout, lse, delta, dqAccum, dk, dv, cuSeq, cuSeq, batch, seq, hq, hkv, scale,
                        deterministic, error);
                gpu.launchKernel(KernelAbi.FLASH_BWD_POST, lpost, dqAccum, scale, dq, qElems);
            };
            // the deterministic rows use the backend's default order (descending, deterministic == 2); _asc_ the other
            Runnable bwdDeterministic = bwd.apply(2), bwdAtomic = bwd.apply(0), bwdAscending = bwd.apply(1);
            Measured mf = b.measure("attn_fwd_s" + seq, fwd);
            Measured mb = b.measure("attn_bwd_s" + seq, bwdDeterministic);
            Measured mfb = b.measure("attn_fwd_bwd_s" + seq, () -> {
                fwd.run();
                bwdDeterministic.run();
            });
            Measured mfa = b.measure("attn_fwd_bwd_atomic_s" + seq, () -> {
                fwd.run();
                bwdAtomic.run();
            });
            Measured mfasc = b.measure("attn_fwd_bwd_asc_s" + seq, () -> {
                fwd.run();
                bwdAscending.run();
            });
            try (Tensor code = gpu.toHost(error)) { // a wait that gave up: the timings above are of an incomplete dQ
                CudaBackend.checkFlashBackwardError(bwdKernel, code.getInt(0));
            }
            String bwdNote = "memset of dq_accum, tf_flash_bwd_pre, tf_flash_bwd_d" + d + ", tf_flash_bwd_post";
            return List.of(
                    computeRow(plan, "attn_fwd_s" + seq, "attention", "flash attention forward (bf16 buffers)", mf,
                            "tf_flash_fwd_d" + d + ", one launch for the batch; FLOPs 4 B S^2 Hq d / 2"),
                    computeRow(plan, "attn_bwd_s" + seq, "attention", "flash attention backward, deterministic dQ", mb,
                            bwdNote + "; deterministic = 2 (descending key-block order, the default); FLOPs 2.5 x forward"),
                    computeRow(plan, "attn_fwd_bwd_s" + seq, "attention", "flash attention forward + backward, deterministic dQ", mfb,
                            "descending key-block order (the default); FLOPs 3.5 x forward"),
                    computeRow(plan, "attn_fwd_bwd_atomic_s" + seq, "attention", "flash attention forward + backward, atomic dQ", mfa,
                            "deterministic = 0 (dQ summed with atomics)"),
                    computeRow(plan, "attn_fwd_bwd_asc_s" + seq, "attention",
                            "flash attention forward + backward, deterministic dQ in ascending key-block order", mfasc,
                            "deterministic = 1 (TENFOLD_FLASH_BWD_ORDER=ascending)"));
        }
    }

    /** CudaBackend.attention / attentionBackward on f32 tensors: casts to and from bf16 and per-sequence launches included. */
    static List<Row> backendAttention(Bench b, Sizes s, int seq) {
        CudaBackend gpu = b.gpu;
        Map<String, Planned> plan = plan(s);
        int batch = Math.max(1, s.attnTokens() / seq), hq = s.attnHq(), hkv = s.attnHkv(), d = s.attnD();
        float scale = (float) (1 / Math.sqrt(d));
        try (Closer c = new Closer()) {
            Tensor q = c.add(DeviceFill.random(gpu, DType.F32, 401, 1f, batch, seq, hq, d));
            Tensor k = c.add(DeviceFill.random(gpu, DType.F32, 402, 1f, batch, seq, hkv, d));
            Tensor v = c.add(DeviceFill.random(gpu, DType.F32, 403, 1f, batch, seq, hkv, d));
            Tensor dOut = c.add(DeviceFill.random(gpu, DType.F32, 404, 1f, batch, seq, hq, d));
            Tensor out = c.add(gpu.allocateUninitialized(DType.F32, batch, seq, hq, d));
            Tensor lse = c.add(gpu.allocateUninitialized(DType.F32, batch, hq, seq));
            Tensor dq = c.add(gpu.allocateUninitialized(DType.F32, batch, seq, hq, d));
            Tensor dk = c.add(gpu.allocateUninitialized(DType.F32, batch, seq, hkv, d));
            Tensor dv = c.add(gpu.allocateUninitialized(DType.F32, batch, seq, hkv, d));
            Measured mf = b.measure("attn_backend_fwd_s" + seq, () -> gpu.attention(q, k, v, scale, out, lse));
            Measured mfb = b.measure("attn_backend_fwd_bwd_s" + seq, () -> {
                gpu.attention(q, k, v, scale, out, lse);
                gpu.attentionBackward(dOut, q, k, v, out, lse, scale, dq, dk, dv);
            });
            String note = "through the Backend op: f32 -> bf16 casts of the inputs, one launch per sequence, bf16 -> f32 of the outputs";
            return List.of(
                    computeRow(plan, "attn_backend_fwd_s" + seq, "attention", "CudaBackend.attention forward (f32 in/out)", mf, note),
                    computeRow(plan, "attn_backend_fwd_bwd_s" + seq, "attention", "CudaBackend.attention + attentionBackward (f32 in/out)",
                            mfb, note + "; deterministic dQ"));
        }
    }

    static void train(Bench b, Sizes s, Report r) {
        String what = "QLoRA training step (NF4 base, LoRA r=32 on q,k,v,o, checkpointing, chunked loss, AdamW)";
        b.run(r, "qlora_step", "train", what, () -> {
            GpuTrainStep.Result res = GpuTrainStep.run(b.gpu, s.trainConfig(), s.trainDescription(), b.o.trainTokens(), b.o.trainSteps(),
                    7, b.dog::enter, line -> b.err.println("gpu-report: " + line));
            double gib = GpuWork.GiB;
            String shape = trainShape(res.tokens(), s.trainDescription());
            String note = String.format(Locale.ROOT, "random NF4 weights (double-quantized), bf16 embedding and lm_head; loss %.4f after the"
                    + " steps; %,d trainable parameters; one warm-up step, median of %d timed steps (wall clock); model built in %.0f s",
                    res.loss(), res.trainableParams(), res.stepSeconds().length, res.buildSeconds());
            String memNote = String.format(Locale.ROOT, "tenfold's allocator: peak in use (weights %.2f GiB included); peak reserved %.2f GiB;"
                    + " the driver saw %.2f of %.2f GiB used after the steps (context and cuBLAS workspace included)",
                    res.weightBytes() / gib, res.peakReservedBytes() / gib, res.deviceUsedBytes() / gib, res.deviceTotalBytes() / gib);
            return List.of(
                    Row.other("qlora_step", "train", what, shape, "tokens/s", res.tokensPerSecond(), res.medianSeconds() * 1000,
                            GpuWork.min(res.stepSeconds()) * 1000, res.stepSeconds().length, note),
                    Row.other("qlora_step_peak_mem", "train", "peak GPU memory of that step", shape, "GiB", res.peakInUseBytes() / gib,
                            Double.NaN, Double.NaN, res.stepSeconds().length, memNote));
        });
    }

    /** "16384 tokens, Llama-3-8B shape (...)": the training rows' shape (qlora_step_peer.py writes the same). */
    static String trainShape(int tokens, String description) { return tokens + " tokens, " + description; }
}
