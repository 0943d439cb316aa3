package dev.tenfold.benchmarks;

import dev.tenfold.llama.tokenizer.BookTokenizer;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.Random;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * Tokenizer throughput on one core: a generated 400,000-character English-like book, encoded with
 * a byte-level BPE tokenizer of 1,000 merges learned from it (so merging does real work), and the
 * ids decoded back. The goal (issue 3): a 400K-character book in well under a second.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Benchmark)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class TokenizerBench {
    static final int CHARS = 400_000;

    String book;
    Tokenizer tokenizer;
    int[] ids;

    @Setup(Level.Trial)
    public void setUp() {
        book = BookTokenizer.englishLike(CHARS, new Random(2024));
        tokenizer = BookTokenizer.trainedOn(book, 1000);
        ids = tokenizer.encode(book, false);
        if (!tokenizer.decode(ids).equals(book)) throw new AssertionError("round trip failed");
    }

    @Benchmark
    public int[] encode() { return tokenizer.encode(book, false); }

    @Benchmark
    public String decode() { return tokenizer.decode(ids); }

    /** Characters per call, reported as millions of characters per second. */
    public static double workPerOp(String method, java.util.function.Function<String, String> param) { return CHARS; }

    public static String rateUnit(String method) { return "Mchar/s"; }
}
