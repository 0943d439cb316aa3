package dev.tenfold.benchmarks;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.llama.KvCache;
import dev.tenfold.llama.LlamaModel;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Llama inference on the CPU with a small configuration and random BF16 weights (hidden 512,
 * 8 layers, 8 query / 2 kv heads of 64, MLP 1536, vocabulary 32,000: 56M parameters, 112 MB):
 * prefill of 512 tokens, and decoding one token after them with the KV cache.
 *
 * <p>Decoding is bound by reading every weight once per token, so its peer is the machine itself:
 * {@link #copy} measures the memory copy bandwidth in the same run, and decode's weight-read rate
 * (112 MB per token) can be set beside it.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Benchmark)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "-XX:+UseParallelGC", "-Xmx6g"})
public class InferenceBench {
    static final int PROMPT = 512;
    static final long COPY_BYTES = 256L << 20;

    LlamaModel model;
    KvCache prefillCache, decodeCache;
    int[] prompt;
    Tensor copyFrom, copyTo;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        model = RandomLlama.small(7);
        SplittableRandom rng = new SplittableRandom(8);
        prompt = new int[PROMPT];
        for (int i = 0; i < PROMPT; i++) prompt[i] = rng.nextInt(model.config().vocabSize());
        prefillCache = new KvCache(model.config(), PROMPT);
        decodeCache = new KvCache(model.config(), PROMPT + 1);
        model.forward(prompt, decodeCache, null);
        copyFrom = Tensor.allocate(DType.U8, COPY_BYTES);
        copyTo = Tensor.allocate(DType.U8, COPY_BYTES);
        copyFrom.data().fill((byte) 1);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        prefillCache.close();
        decodeCache.close();
        model.close();
        copyFrom.close();
        copyTo.close();
    }

    /** 512 tokens from an empty cache. */
    @Benchmark
    public float[] prefill() {
        prefillCache.reset();
        return model.forward(prompt, prefillCache, null);
    }

    /** One token at position 512 (the cache is rewound after each call). */
    @Benchmark
    public float[] decode() {
        decodeCache.truncate(PROMPT);
        return model.forward(new int[] {17}, decodeCache, null);
    }

    /** The machine's memory copy bandwidth (256 MiB, read + write): the limit decoding runs against. */
    @Benchmark
    public Tensor copy() {
        MemorySegment.copy(copyFrom.data(), 0, copyTo.data(), 0, COPY_BYTES);
        return copyTo;
    }

    public static double workPerOp(String method, java.util.function.Function<String, String> param) {
        return switch (method) {
            case "prefill" -> PROMPT;
            case "decode" -> 1;
            case "copy" -> 2.0 * COPY_BYTES; // bytes read plus bytes written
            default -> throw new IllegalArgumentException(method);
        };
    }

    public static String rateUnit(String method) { return method.equals("copy") ? "GB/s" : "tok/s"; }
}
