package dev.tenfold.benchmarks;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.FiniteScan;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
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
 * The NaN/infinity scan that every checkpoint and adapter tensor passes at load
 * ({@link FiniteScan}), on a 1 GiB tensor in memory (the size of Llama-3-8B's BF16 embedding; the
 * whole 8B model is 16 GB): the Vector-API scan on all cores, and the plain per-element loop it
 * replaces. Scores are milliseconds per GiB, so GB/s = 1073.7 / score.
 * <pre>
 *   ./tenfold bench FiniteScanBench -f 1
 * </pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
@State(Scope.Benchmark)
public class FiniteScanBench {
    @Param({"BF16", "F32"})
    public String dtype;

    private Tensor t;

    @Setup
    public void setup() {
        DType d = DType.valueOf(dtype);
        t = Tensor.allocate(d, (1L << 30) / (d.bits() / 8));
        SplittableRandom rng = new SplittableRandom(1);
        float[] chunk = new float[1 << 20];
        for (int i = 0; i < chunk.length; i++) chunk[i] = (float) rng.nextGaussian();
        try (Tensor c = Tensor.allocate(d, chunk.length)) {
            c.copyFrom(chunk);
            for (long off = 0; off < t.byteSize(); off += c.byteSize()) {
                java.lang.foreign.MemorySegment.copy(c.data(), 0, t.data(), off, c.byteSize());
            }
        }
    }

    @TearDown
    public void tearDown() { t.close(); }

    @Benchmark
    public long fast() {
        long i = FiniteScan.firstNonFinite(t);
        if (i >= 0) throw new IllegalStateException("finite data reported non-finite at " + i);
        return i;
    }

    @Benchmark
    public long reference() { return FiniteScan.firstNonFiniteReference(t); }
}
