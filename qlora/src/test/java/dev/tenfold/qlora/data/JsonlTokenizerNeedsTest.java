package dev.tenfold.qlora.data;

import static dev.tenfold.qlora.data.TinyData.*;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.data.JsonlDataset.Options;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tokenizer is asked only for what the records need: none for input_ids, BOS/EOS for text, the chat tokens for chat. */
class JsonlTokenizerNeedsTest {
    @TempDir Path dir;

    static final String TOKENS = "{\"input_ids\": [1, 2, 3, 4], \"labels\": [-100, 2, 3, 4]}";
    static final String TEXT = "{\"text\": \"Hello world\"}";
    static final String CHAT = "{\"conversations\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}";

    /** The tiny tokenizer without some of its special tokens (another Llama's, say). */
    Tokenizer without(Set<String> dropped) throws IOException {
        Path sub = Files.createDirectories(dir.resolve("tok-without"));
        dev.tenfold.llama.testing.TinyLlama.writeTokenizer(sub);
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = (ObjectNode) json.readTree(sub.resolve("tokenizer.json").toFile());
        ArrayNode kept = json.createArrayNode();
        for (var t : root.get("added_tokens")) if (!dropped.contains(t.get("content").asText())) kept.add(t);
        root.set("added_tokens", kept);
        Files.writeString(sub.resolve("tokenizer.json"), json.writeValueAsString(root));
        return Tokenizer.load(sub.resolve("tokenizer.json"));
    }

    @Test
    void preTokenizedRecordsNeedNoTokenizer() throws IOException {
        Path f = write(dir, "ids.jsonl", TOKENS, "{\"input_ids\": [5, 6, 7]}");
        JsonlDataset d = JsonlDataset.load(null, new Options().vocabSize(VOCAB_SIZE), f);
        assertEquals(2, d.size());
        assertArrayEquals(new int[] {1, 2, 3, 4}, d.get(0).inputIds());
        // ids are still checked against the vocabulary given
        Path bad = write(dir, "bad-ids.jsonl", "{\"input_ids\": [1, 300]}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> JsonlDataset.load(null, new Options().vocabSize(VOCAB_SIZE), bad));
        assertTrue(e.getMessage().contains("input_ids[1] = 300 is not a token id (0..284)"), e.getMessage());
        // without a tokenizer the vocabulary size must be given
        e = assertThrows(IllegalArgumentException.class, () -> JsonlDataset.load(null, new Options(), f));
        assertTrue(e.getMessage().contains("vocabSize"), e.getMessage());
    }

    @Test
    void recordsThatNeedTheMissingTokenizerFailTheLoadEvenWhenBadLinesAreSkipped() throws IOException {
        Path f = write(dir, "mixed.jsonl", TOKENS, TEXT);
        for (boolean skip : new boolean[] {false, true}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> JsonlDataset.load(null, new Options().vocabSize(VOCAB_SIZE).skipBadLines(skip), f));
            assertEquals(f + ":2: a \"text\" record is tokenized and framed by <|begin_of_text|> and <|end_of_text|>, but no tokenizer was given",
                    e.getMessage());
        }
        Path chat = write(dir, "chat.jsonl", CHAT);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> JsonlDataset.load(null, new Options().vocabSize(VOCAB_SIZE), chat));
        assertTrue(e.getMessage().startsWith(chat + ":1: a \"conversations\" record needs the Llama-3 chat template's special tokens"),
                e.getMessage());
    }

    @Test
    void aTokenizerWithoutLlama3sChatTokensServesTextAndPreTokenizedRecords() throws IOException {
        Tokenizer tok = without(Set.of("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"));
        Path f = write(dir, "plain.jsonl", TOKENS, TEXT);
        JsonlDataset d = JsonlDataset.load(tok, new Options(), f);
        assertEquals(2, d.size());
        assertEquals(BOS, d.get(1).inputIds()[0]);

        Path chat = write(dir, "chat.jsonl", TEXT, CHAT);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> JsonlDataset.load(tok, new Options(), chat));
        assertTrue(e.getMessage().startsWith(chat + ":2: a \"conversations\" record needs the Llama-3 chat template's special tokens, but "),
                e.getMessage());
        assertTrue(e.getMessage().contains("no token \"<|start_header_id|>\""), e.getMessage());
    }

    @Test
    void aTokenizerWithoutBeginOfTextServesPreTokenizedRecordsOnly() throws IOException {
        Tokenizer tok = without(Set.of("<|begin_of_text|>"));
        assertEquals(1, JsonlDataset.load(tok, new Options().vocabSize(VOCAB_SIZE), write(dir, "ids.jsonl", TOKENS)).size());
        Path text = write(dir, "text.jsonl", TEXT);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> JsonlDataset.load(tok, new Options().vocabSize(VOCAB_SIZE), text));
        assertTrue(e.getMessage().endsWith("but " + tok.source() + ": no token \"<|begin_of_text|>\""), e.getMessage());
    }
}
