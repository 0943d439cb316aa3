package dev.tenfold.qlora.data;

import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Test helpers: the tiny Llama-3-like tokenizer (model-llama's test jar) and JSONL files. */
final class TinyData {
    // Ids of the tiny tokenizer (TinyTokenizerJson): 275 ordinary tokens, then Llama-3's first ten
    // special tokens in Llama-3's order. Printable ASCII c is the byte symbol c - 33.
    static final int VOCAB_SIZE = 285;
    static final int BOS = 275, EOS = 276, START_HEADER = 281, END_HEADER = 282, EOT = 284;
    static final int NN = 270;           // "\n\n"
    static final int HELLO = 264;        // "Hello"
    static final int SPACE_WORLD = 260;  // " world"
    static final int BANG = 0;           // "!"
    static final int X = TrainingRecord.IGNORE;

    private TinyData() {}

    static Tokenizer tokenizer(Path dir) {
        try {
            Path sub = Files.createDirectories(dir.resolve("tok"));
            int size = TinyLlama.writeTokenizer(sub);
            Tokenizer t = Tokenizer.load(sub.resolve("tokenizer.json"));
            if (size != VOCAB_SIZE || t.vocabSize() != VOCAB_SIZE || t.bosId() != BOS || t.eotId() != EOT) {
                throw new AssertionError("the tiny tokenizer changed: " + t);
            }
            return t;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Writes the lines, each followed by "\n". */
    static Path write(Path dir, String name, String... lines) {
        try {
            return Files.writeString(dir.resolve(name), String.join("\n", lines) + "\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The byte symbols of an ASCII word no tiny merge applies to. */
    static int[] chars(String s) {
        int[] out = new int[s.length()];
        for (int i = 0; i < out.length; i++) out[i] = s.charAt(i) - 33;
        return out;
    }

    static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] out = new int[n];
        int k = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, k, p.length);
            k += p.length;
        }
        return out;
    }

    static int[] masked(int[] ids) {
        int[] out = new int[ids.length];
        java.util.Arrays.fill(out, X);
        return out;
    }
}
