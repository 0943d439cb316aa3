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
 * The fast CPU matmul ({@code CpuBackend.fast().matmul}), all cores.
 *
 * <p>Scores are milliseconds per product. A product of an [M, K] and a [K, N] matrix is
 * 2 * M * N * K flops (M * N * K multiply-adds), so GFLOP/s = 2 * M * N * K / (score * 1e6):
 * <pre>
 *   f32Square  size=512            2 * 512^3            =   0.268 GFLOP  -> GFLOP/s =   268.4 / ms
 *   f32Square  size=1024           2 * 1024^3           =   2.147 GFLOP  -> GFLOP/s =  2147.5 / ms
 *   f32Square  size=2048           2 * 2048^3           =  17.180 GFLOP  -> GFLOP/s = 17179.9 / ms
 *   bf16Weight M=512, N=K=2048     2 * 512 * 2048 * 2048 =  4.295 GFLOP  -> GFLOP/s =  4295.0 / ms
 *   bf16Decode M=1, N=K=4096       2 * 4096 * 4096      =   0.034 GFLOP  -> GFLOP/s =    33.6 / ms
 * </pre>
 * The decode shape is bound by reading the 32 MiB (33.6 MB) BF16 weight once: its bandwidth is
 * 33.6 / score(ms) GB/s.
 *
 * <p>The peer is numpy/OpenBLAS sgemm, measured by {@code benchmarks/scripts/numpy_sgemm.py} on
 * the same machine in the same session (with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset).
 * Run with a JDK 25 {@code java}, after {@code mvn -B -ntp -q install -DskipTests} at the root (which
 * also refreshes the engine jar the benchmarks run against):
 * <pre>
 *   java -cp "benchmarks/target/classes:benchmarks/target/lib/*" org.openjdk.jmh.Main MatmulBench
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benchmarks/scripts/numpy_sgemm.py
 * </pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "-XX:+UseParallelGC", "-Xmx4g"})
public class MatmulBench {
    private static final Backend FAST = CpuBackend.fast();

    /** out[size, size] = a[size, size] . b[size, size], all F32. */
    @State(Scope.Benchmark)
    public static class Square {
        @Param({"512", "1024", "2048"})
        public int size;

        Tensor a, b, out;

        @Setup(Level.Trial)
        public void setUp() {
            SplittableRandom rng = new SplittableRandom(42);
            a = random(rng, DType.F32, size, size);
            b = random(rng, DType.F32, size, size);
            out = Tensor.allocate(DType.F32, size, size);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            a.close();
            b.close();
            out.close();
        }
    }

    /**
     * A linear layer with a BF16 weight in the Hugging Face layout W[N, K]: out = x . W^T.
     * x F32 [512, 2048] by W [2048, 2048] (a training micro-batch), and x F32 [1, 4096] by
     * W [4096, 4096] (decoding one token).
     */
    @State(Scope.Benchmark)
    public static class Bf16Weight {
        Tensor x, w, out, x1, w1, out1;

        @Setup(Level.Trial)
        public void setUp() {
            SplittableRandom rng = new SplittableRandom(43);
            x = random(rng, DType.F32, 512, 2048);
            w = random(rng, DType.BF16, 2048, 2048);
            out = Tensor.allocate(DType.F32, 512, 2048);
            x1 = random(rng, DType.F32, 1, 4096);
            w1 = random(rng, DType.BF16, 4096, 4096);
            out1 = Tensor.allocate(DType.F32, 1, 4096);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            for (Tensor t : new Tensor[] {x, w, out, x1, w1, out1}) t.close();
        }
    }

    /** FLOPs of one call of {@code method} with these parameters (for CpuReport). */
    public static double workPerOp(String method, java.util.function.Function<String, String> param) {
        return switch (method) {
            case "f32Square" -> 2.0 * Math.pow(Integer.parseInt(param.apply("size")), 3);
            case "bf16Weight" -> 2.0 * 512 * 2048 * 2048;
            case "bf16Decode" -> 2.0 * 4096 * 4096;
            default -> throw new IllegalArgumentException(method);
        };
    }

    /** 2 * size^3 flops. */
    public static String rateUnit(String method) { return "GFLOP/s"; }

    @Benchmark
    public Tensor f32Square(Square s) {
        FAST.matmul(s.a, false, s.b, false, s.out, false);
        return s.out;
    }

    /** 2 * 512 * 2048 * 2048 flops. */
    @Benchmark
    public Tensor bf16Weight(Bf16Weight s) {
        FAST.matmul(s.x, false, s.w, true, s.out, false);
        return s.out;
    }

    /** 2 * 4096 * 4096 flops; 32 MiB of weight read. */
    @Benchmark
    public Tensor bf16Decode(Bf16Weight s) {
        FAST.matmul(s.x1, false, s.w1, true, s.out1, false);
        return s.out1;
    }

    /** Uniform values in [-1, 1), written in bulk (setFloat per element is slow for 16M elements). */
    static Tensor random(SplittableRandom rng, DType dtype, long rows, long cols) {
        Tensor t = Tensor.allocate(dtype, rows, cols);
        float[] v = new float[Math.toIntExact(rows * cols)];
        for (int i = 0; i < v.length; i++) v[i] = (float) (rng.nextDouble() * 2 - 1);
        t.copyFrom(v);
        return t;
    }
}
