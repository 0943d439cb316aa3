package dev.tenfold.llama.testing;

import dev.tenfold.llama.longcontext.Corpus;
import dev.tenfold.llama.tokenizer.TinyTokenizerJson;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Test helpers: the tiny Llama-3-like tokenizer and a small corpus. */
public final class SynthTestData {
    private SynthTestData() {}

    static final String CORPUS_TEXT = """
            The river town woke slowly. Fishermen dragged their boats onto the gravel while gulls argued \
            over scraps. A baker opened her shutters and the smell of bread drifted down the lane!

            Nobody in the town remembered when the bridge was built. Some said it was older than the church; \
            others swore their grandfathers had carried its stones. Does it matter? It has stood through \
            floods and frosts alike.

            In the afternoon the market filled with voices. Merchants sold apples, rope, lamp oil and \
            woollen socks. Children chased each other between the stalls, and an old man played the accordion \
            near the fountain.

            When evening came, lamps were lit one by one. The tide turned, the boats went out again, and the \
            town settled into its long, quiet night.
            """;

    public static Tokenizer tokenizer(Path dir) {
        try {
            Path sub = Files.createDirectories(dir.resolve("tok"));
            TinyTokenizerJson.writeLlamaLike(sub);
            return Tokenizer.load(sub.resolve("tokenizer.json"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static Corpus corpus() {
        return Corpus.of(CORPUS_TEXT, "test-corpus");
    }
}
