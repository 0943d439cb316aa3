package dev.tenfold.benchmarks;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Causal grouped-query attention on the fast CPU backend: B = 1, 8 query heads sharing 2 kv heads
 * (4 per group, as Llama-3), f32.
 *
 * <p>FLOP convention (FlashAttention's): forward = 4 * B * S^2 * Hq * d / 2 (two S x S x d products,
 * halved because causal masking skips half the scores); backward = 2.5 x forward (five products,
 * whatever the implementation recomputes). GFLOP/s = FLOP / (time in ms * 1e6). For example S = 2048,
 * d = 128: forward 8.59 GFLOP, backward 21.5 GFLOP.
 *
 * <p>Run: {@code java -cp "benchmarks/target/classes:benchmarks/target/lib/*" org.openjdk.jmh.Main AttentionBench
 * -p seq=2048 -p headDim=128}. seq 8192 takes seconds per call on two cores.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Benchmark)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgs = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "-XX:+UseParallelGC", "-Xmx8g"})
public class AttentionBench {
    @Param({"2048", "8192"})
    public int seq;

    @Param({"64", "128"})
    public int headDim;

    static final int BATCH = 1, HEADS = 8, KV_HEADS = 2;

    private final Backend cpu = CpuBackend.fast();
    private Tensor q, k, v, out, lse, dOut, dq, dk, dv;
    private float scale;

    @Setup(Level.Trial)
    public void setup() {
        SplittableRandom rng = new SplittableRandom(42);
        q = random(rng, BATCH, seq, HEADS, headDim);
        k = random(rng, BATCH, seq, KV_HEADS, headDim);
        v = random(rng, BATCH, seq, KV_HEADS, headDim);
        dOut = random(rng, BATCH, seq, HEADS, headDim);
        out = Tensor.allocate(DType.F32, BATCH, seq, HEADS, headDim);
        lse = Tensor.allocate(DType.F32, BATCH, HEADS, seq);
        dq = Tensor.allocate(DType.F32, BATCH, seq, HEADS, headDim);
        dk = Tensor.allocate(DType.F32, BATCH, seq, KV_HEADS, headDim);
        dv = Tensor.allocate(DType.F32, BATCH, seq, KV_HEADS, headDim);
        scale = (float) (1 / Math.sqrt(headDim));
        cpu.attention(q, k, v, scale, out, lse); // the backward's saved tensors
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : new Tensor[] {q, k, v, out, lse, dOut, dq, dk, dv}) t.close();
    }

    /** FLOP of one forward under the convention above (multiply by 2.5 for one backward). */
    public static double forwardFlop(int seq, int headDim) {
        return 4.0 * BATCH * seq * (double) seq * HEADS * headDim / 2;
    }

    /** FLOPs of one call of {@code method} by the convention above (for CpuReport). */
    public static double workPerOp(String method, java.util.function.Function<String, String> param) {
        double s = Integer.parseInt(param.apply("seq")), d = Integer.parseInt(param.apply("headDim"));
        double forward = 4.0 * BATCH * s * s * HEADS * d / 2;
        return switch (method) {
            case "forward" -> forward;
            case "backward" -> 2.5 * forward;
            default -> throw new IllegalArgumentException(method);
        };
    }

    public static String rateUnit(String method) { return "GFLOP/s"; }

    @Benchmark
    public Tensor forward() {
        cpu.attention(q, k, v, scale, out, lse);
        return out;
    }

    @Benchmark
    public Tensor backward() {
        cpu.attentionBackward(dOut, q, k, v, out, lse, scale, dq, dk, dv);
        return dq;
    }

    private static Tensor random(SplittableRandom rng, long... shape) {
        Tensor t = Tensor.allocate(DType.F32, shape);
        float[] x = new float[Math.toIntExact(t.numel())];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() * 2 - 1);
        t.copyFrom(x);
        return t;
    }
}
