package dev.tenfold.llama.tokenizer;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.*;

/** Files the tokenizer must refuse, each with a message naming the file and what was wrong. */
class TokenizerErrorsTest {
    @TempDir
    Path dir;

    private String loadError(Consumer<ObjectNode> edit) throws IOException {
        ObjectNode root = TinyTokenizerJson.llamaLike().toJson();
        edit.accept(root);
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, root.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertTrue(e.getMessage().startsWith(file.toString()), "message should name the file: " + e.getMessage());
        return e.getMessage();
    }

    private static ArrayNode merges(ObjectNode root) {
        return (ArrayNode) root.get("model").get("merges");
    }

    private static void assertMentions(String message, String... parts) {
        for (String p : parts) assertTrue(message.contains(p), "\"" + message + "\" should mention " + p);
    }

    @Test
    void otherModelTypes() throws IOException {
        assertMentions(loadError(r -> ((ObjectNode) r.get("model")).put("type", "Unigram")), "Unigram", "BPE");
        assertMentions(loadError(r -> ((ObjectNode) r.get("model")).put("type", "WordPiece")), "WordPiece", "BPE");
        assertMentions(loadError(r -> ((ObjectNode) r.get("model")).remove("type")), "model.type", "missing");
        assertMentions(loadError(r -> r.remove("model")), "model");
        assertMentions(loadError(r -> r.putNull("model")), "model");
    }

    @Test
    void brokenVocabAndMerges() throws IOException {
        assertMentions(loadError(r -> ((ObjectNode) r.get("model")).remove("vocab")), "model.vocab", "missing");
        assertMentions(loadError(r -> ((ObjectNode) r.get("model")).put("vocab", "nope")), "model.vocab");
        assertMentions(loadError(r -> ((ObjectNode) r.get("model").get("vocab")).put("Ġx", "7")), "Ġx");
        assertMentions(loadError(r -> ((ObjectNode) r.get("model")).remove("merges")), "model.merges", "missing");
        assertMentions(loadError(r -> merges(r).add("Ġ zzz")),
                "model.merges[17]", "zzz", "not in model.vocab");
        assertMentions(loadError(r -> merges(r).addArray().add("q").add("q")),
                "model.merges[17]", "qq", "not in model.vocab");
        assertMentions(loadError(r -> merges(r).add("abc")), "model.merges[17]", "abc");
        assertMentions(loadError(r -> merges(r).add(5)), "model.merges[17]");
        // a vocab without every byte symbol is not byte-level
        assertMentions(loadError(r -> ((ObjectNode) r.get("model").get("vocab")).remove("Ā")), "0x00", "byte-level");
    }

    @Test
    void unsupportedPipelines() throws IOException {
        assertMentions(loadError(r -> r.putObject("pre_tokenizer").put("type", "Whitespace")), "Whitespace", "not supported");
        assertMentions(loadError(r -> r.remove("pre_tokenizer")), "pre_tokenizer");
        assertMentions(loadError(r -> ((ObjectNode) r.get("pre_tokenizer").get("pretokenizers").get(0))
                .put("behavior", "Removed")), "Removed");
        assertMentions(loadError(r -> ((ObjectNode) r.get("pre_tokenizer").get("pretokenizers").get(0))
                .putObject("pattern").put("Regex", "(unclosed")), "regex", "(unclosed");
        // Split alone would leave raw bytes unmapped
        assertMentions(loadError(r -> ((ArrayNode) r.get("pre_tokenizer").get("pretokenizers")).remove(1)), "ByteLevel");
        assertMentions(loadError(r -> r.putObject("normalizer").put("type", "NFC")), "normalizer", "NFC");
        assertMentions(loadError(r -> r.putObject("decoder").put("type", "WordPiece")), "decoder", "WordPiece");
        assertMentions(loadError(r -> ((ObjectNode) r.get("model")).put("continuing_subword_prefix", "##")),
                "continuing_subword_prefix");
        assertMentions(loadError(r -> ((ArrayNode) r.get("added_tokens")).addObject().put("content", "<x>")), "added_tokens[10]");
    }

    @Test
    void notJson() throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"model\": {\"type\": \"BPE\", ");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertMentions(e.getMessage(), file.toString(), "not valid JSON");
        Files.writeString(file, "<html>rate limited</html>");
        e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertMentions(e.getMessage(), file.toString(), "not valid JSON");
        Files.writeString(file, "[1, 2]");
        e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertMentions(e.getMessage(), file.toString(), "not a JSON object");
        Files.writeString(file, "");
        e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertMentions(e.getMessage(), file.toString());
    }

    @Test
    void missingFileIsAnIoError() {
        Path file = dir.resolve("absent.json");
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> Tokenizer.load(file));
        assertMentions(e.getMessage(), "absent.json");
    }
}
