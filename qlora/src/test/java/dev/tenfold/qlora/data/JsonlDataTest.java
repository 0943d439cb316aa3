package dev.tenfold.qlora.data;

import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.ChatTemplate.Message;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.data.JsonlDataset.Options;
import dev.tenfold.qlora.data.JsonlDataset.Report;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.tenfold.qlora.data.TinyData.*;
import static org.junit.jupiter.api.Assertions.*;

/** The three record formats, max_length, mixing files and the report, on the tiny tokenizer. */
class JsonlDataTest {
    @TempDir
    Path dir;
    Tokenizer tok;

    @BeforeEach
    void setUp() {
        tok = tokenizer(dir);
    }

    private JsonlDataset load(Options options, Path... files) throws IOException {
        return JsonlDataset.load(tok, options, files);
    }

    private JsonlDataset load(Path... files) throws IOException {
        return load(new Options(), files);
    }

    // ---------------------------------------------------------------------------------------- text

    @Test
    void textHandWritten() throws IOException {
        Path f = write(dir, "a.jsonl", "{\"text\": \"Hello world!\"}");
        TrainingRecord r = load(f).get(0);
        int[] expected = {BOS, HELLO, SPACE_WORLD, BANG, EOS};
        assertArrayEquals(expected, r.inputIds());
        assertArrayEquals(expected, r.labels());
        assertArrayEquals(new int[] {HELLO, SPACE_WORLD, BANG, EOS}, r.targets());
        assertEquals(f + ":1", r.source());
    }

    @Test
    void textIsBosTokensEos() throws IOException {
        String text = "the cat yell 123\nHello\tworld";
        Path f = write(dir, "a.jsonl", "{\"text\": \"the cat yell 123\\nHello\\tworld\", \"id\": 7}");
        TrainingRecord r = load(f).get(0);
        int[] expected = concat(new int[] {BOS}, tok.encode(text, false), new int[] {EOS});
        assertArrayEquals(expected, r.inputIds());
        assertArrayEquals(expected, r.labels());
    }

    @Test
    void specialTokensInTextStayText() throws IOException {
        Path f = write(dir, "a.jsonl", "{\"text\": \"<|eot_id|>\"}");
        TrainingRecord r = load(f).get(0);
        int[] expected = concat(new int[] {BOS}, tok.encode("<|eot_id|>", false), new int[] {EOS});
        assertArrayEquals(expected, r.inputIds());
        for (int i = 1; i < r.length() - 1; i++) assertNotEquals(EOT, r.inputIds()[i]);
    }

    @Test
    void textLongerThanMaxLengthIsTruncated() throws IOException {
        Path f = write(dir, "a.jsonl",
                "{\"text\": \"Hello world!\"}",  // 5 tokens
                "{\"text\": \"Hello world\"}");  // 4 tokens: fits exactly
        JsonlDataset d = load(new Options().maxLength(4), f);
        assertEquals(2, d.size());
        assertArrayEquals(new int[] {BOS, HELLO, SPACE_WORLD, BANG}, d.get(0).inputIds()); // EOS cut off
        assertArrayEquals(new int[] {BOS, HELLO, SPACE_WORLD, BANG}, d.get(0).labels());
        assertArrayEquals(new int[] {BOS, HELLO, SPACE_WORLD, EOS}, d.get(1).inputIds());
        assertEquals(1, d.report().truncated());
        assertEquals(0, d.report().droppedTooLong());
    }

    @Test
    void textCutToOneTokenHasNoTargetAndIsDropped() throws IOException {
        Path f = write(dir, "a.jsonl", "{\"text\": \"Hello\"}");
        JsonlDataset d = load(new Options().maxLength(1), f);
        assertEquals(0, d.size());
        assertEquals(1, d.report().droppedNoLabels());
    }

    // ---------------------------------------------------------------------------------------- chat

    @Test
    void chatHandWritten() throws IOException {
        Path f = write(dir, "a.jsonl", "{\"conversations\": [{\"role\": \"user\", \"content\": \"hi\"},"
                + " {\"role\": \"assistant\", \"content\": \"Hello world!\"}]}");
        TrainingRecord r = load(f).get(0);
        // u=84 s=82 e=68 r=81; a=64 i=72 t=83 n=77; h=71
        int[] ids = {BOS,
                START_HEADER, 84, 82, 68, 81, END_HEADER, NN, 71, 72, EOT,
                START_HEADER, 64, 82, 82, 72, 82, 83, 64, 77, 83, END_HEADER, NN, HELLO, SPACE_WORLD, BANG, EOT};
        int[] labels = {X,
                X, X, X, X, X, X, X, X, X, X,
                X, X, X, X, X, X, X, X, X, X, X, X, HELLO, SPACE_WORLD, BANG, EOT};
        assertArrayEquals(ids, r.inputIds());
        assertArrayEquals(labels, r.labels());
        // The target at position i is the label of i+1: the "\n\n" before the answer predicts "Hello".
        int[] targets = r.targets();
        assertEquals(NN, r.inputIds()[22]);
        assertEquals(HELLO, targets[22]);
        assertEquals(X, targets[21]);
        assertEquals(4, r.targetCount());
    }

    @Test
    void chatIsTheTemplateWithEveryAssistantTurnTrained() throws IOException {
        List<Message> conversation = List.of(
                Message.system("You are the cat."),
                Message.user("hello the world"),
                Message.assistant(" Hello world!\n"),
                Message.user("123 yell"),
                Message.assistant("the cat"));
        ChatTemplate.Rendered expected = new ChatTemplate(tok).render(conversation, false);
        Path f = write(dir, "a.jsonl",
                "{\"messages\": [{\"role\": \"system\", \"content\": \"You are the cat.\"},"
                        + " {\"role\": \"user\", \"content\": \"hello the world\"},"
                        + " {\"role\": \"assistant\", \"content\": \" Hello world!\\n\"},"
                        + " {\"role\": \"user\", \"content\": \"123 yell\"},"
                        + " {\"role\": \"assistant\", \"content\": \"the cat\", \"weight\": 1}]}");
        TrainingRecord r = load(f).get(0);
        assertArrayEquals(expected.ids(), r.inputIds());
        assertArrayEquals(expected.labels(), r.labels());
        // Both answers are trained: two <|eot_id|> labels.
        int eots = 0;
        for (int l : r.labels()) if (l == EOT) eots++;
        assertEquals(2, eots);
        // Same line under the other key gives the same record.
        Path g = write(dir, "b.jsonl", Files.readString(f).replace("\"messages\"", "\"conversations\""));
        assertArrayEquals(r.inputIds(), load(g).get(0).inputIds());
        assertArrayEquals(r.labels(), load(g).get(0).labels());
    }

    @Test
    void chatLongerThanMaxLengthIsDroppedNotCut() throws IOException {
        String line = "{\"conversations\": [{\"role\": \"user\", \"content\": \"hi\"},"
                + " {\"role\": \"assistant\", \"content\": \"Hello world!\"}]}";
        Path f = write(dir, "a.jsonl", line, "{\"text\": \"Hello world!\"}");
        int length = 27; // chatHandWritten

        JsonlDataset fits = load(new Options().maxLength(length), f);
        assertEquals(2, fits.size());
        assertEquals(length, fits.get(0).length());
        assertEquals(0, fits.report().droppedTooLong());

        JsonlDataset over = load(new Options().maxLength(length - 1), f);
        assertEquals(1, over.size());
        assertEquals(f + ":2", over.get(0).source());
        assertEquals(1, over.report().droppedTooLong());
        assertEquals(0, over.report().truncated());
    }

    @Test
    void chatWithoutAssistantIsDroppedForNoLabels() throws IOException {
        Path f = write(dir, "a.jsonl",
                "{\"conversations\": [{\"role\": \"system\", \"content\": \"x\"}, {\"role\": \"user\", \"content\": \"hi\"}]}");
        JsonlDataset d = load(f);
        assertEquals(0, d.size());
        assertEquals(1, d.report().droppedNoLabels());
    }

    // ---------------------------------------------------------------------------------- input_ids

    @Test
    void inputIdsWithoutLabelsAreTheirOwnLabels() throws IOException {
        Path f = write(dir, "a.jsonl", "{\"input_ids\": [275, 5, 6, 284]}");
        TrainingRecord r = load(f).get(0);
        assertArrayEquals(new int[] {275, 5, 6, 284}, r.inputIds());
        assertArrayEquals(new int[] {275, 5, 6, 284}, r.labels());
    }

    @Test
    void inputIdsWithLabelsAsGiven() throws IOException {
        Path f = write(dir, "a.jsonl", "{\"input_ids\": [275, 5, 6, 284], \"labels\": [-100, -100, 6, 284]}",
                "{\"input_ids\": [1, 2], \"labels\": null}");
        JsonlDataset d = load(f);
        assertArrayEquals(new int[] {275, 5, 6, 284}, d.get(0).inputIds());
        assertArrayEquals(new int[] {X, X, 6, 284}, d.get(0).labels());
        assertArrayEquals(new int[] {X, 6, 284}, d.get(0).targets());
        assertArrayEquals(new int[] {1, 2}, d.get(1).labels()); // null labels: the default
    }

    @Test
    void inputIdsTruncatedWithTheirLabels() throws IOException {
        Path f = write(dir, "a.jsonl",
                "{\"input_ids\": [275, 5, 6, 7, 284], \"labels\": [-100, 5, -100, 7, 284]}",
                "{\"input_ids\": [275, 5, 6, 7, 284]}",
                "{\"input_ids\": [275, 5, 6, 7, 284], \"labels\": [-100, -100, -100, 7, 284]}");
        JsonlDataset d = load(new Options().maxLength(3), f);
        assertEquals(2, d.size());
        assertArrayEquals(new int[] {275, 5, 6}, d.get(0).inputIds());
        assertArrayEquals(new int[] {X, 5, X}, d.get(0).labels());
        assertArrayEquals(new int[] {275, 5, 6}, d.get(1).labels());
        Report rep = d.report();
        assertEquals(2, rep.truncated());
        assertEquals(1, rep.droppedNoLabels()); // the third: its labels were all past the cut
    }

    @Test
    void labelOnlyOnTheFirstTokenIsNoLabel() throws IOException {
        // labels[0] is never predicted, so this record has nothing to learn.
        Path f = write(dir, "a.jsonl", "{\"input_ids\": [5, 6, 7], \"labels\": [5, -100, -100]}");
        JsonlDataset d = load(f);
        assertEquals(0, d.size());
        assertEquals(1, d.report().droppedNoLabels());
    }

    @Test
    void vocabSizeOptionWidensTheIdCheck() throws IOException {
        Path f = write(dir, "a.jsonl", "{\"input_ids\": [1, 300]}");
        assertEquals(300, load(new Options().vocabSize(301), f).get(0).inputIds()[1]);
        assertThrows(IllegalArgumentException.class, () -> load(new Options().vocabSize(100), f));
    }

    // ------------------------------------------------------------------------- files and the report

    @Test
    void twoFilesAreReadInOrder() throws IOException {
        Path a = write(dir, "a.jsonl", "{\"text\": \"Hello\"}", "{\"input_ids\": [1, 2, 3]}");
        Path b = write(dir, "b.jsonl", "{\"input_ids\": [4, 5]}", "", "{\"text\": \"!\"}");
        JsonlDataset d = load(a, b);
        assertEquals(4, d.size());
        assertEquals(List.of(a + ":1", a + ":2", b + ":1", b + ":3"),
                d.records().stream().map(TrainingRecord::source).toList());
        assertArrayEquals(new int[] {BOS, HELLO, EOS}, d.get(0).inputIds());
        assertArrayEquals(new int[] {1, 2, 3}, d.get(1).inputIds());
        assertArrayEquals(new int[] {4, 5}, d.get(2).inputIds());
        assertArrayEquals(new int[] {BOS, BANG, EOS}, d.get(3).inputIds());
        assertArrayEquals(new int[] {3, 3, 2, 3}, d.lengths());
        // Reversed order, reversed records.
        JsonlDataset r = load(b, a);
        assertEquals(b + ":1", r.get(0).source());
        assertEquals(a + ":2", r.get(3).source());
    }

    @Test
    void reportCounts() throws IOException {
        Path a = write(dir, "a.jsonl",
                "{\"text\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",                       // 32 -> cut to 20
                "{\"conversations\": [{\"role\": \"user\", \"content\": \"hi\"},"
                        + " {\"role\": \"assistant\", \"content\": \"Hello world!\"}]}", // 27: dropped
                "",
                "{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, -100]}",             // 3, 1 target
                "not json");                                                              // bad
        Path b = write(dir, "b.jsonl",
                "{\"messages\": [{\"role\": \"assistant\", \"content\": \"!\"}]}",      // 15 tokens
                "{\"input_ids\": [7], \"labels\": [7]}");                              // 1 token: no target
        JsonlDataset d = load(new Options().maxLength(20).skipBadLines(true), a, b);
        Report rep = d.report();
        // b:1 = BOS, <sh>, "assistant" (9), <eh>, "\n\n", "!", <eot> = 15 tokens, targets "!" and <eot>.
        assertEquals(15, d.get(2).length());
        assertEquals(List.of(new JsonlDataset.FileStats(a.toString(), 4, 2), new JsonlDataset.FileStats(b.toString(), 2, 1)),
                rep.files());
        assertEquals(6, rep.read());
        assertEquals(3, rep.kept());
        assertEquals(1, rep.keptText());
        assertEquals(1, rep.keptChat());
        assertEquals(1, rep.keptTokens());
        assertEquals(1, rep.truncated());
        assertEquals(1, rep.droppedTooLong());
        assertEquals(1, rep.droppedNoLabels());
        assertEquals(1, rep.badSkipped());
        assertEquals(1, rep.badLines().size());
        assertTrue(rep.badLines().get(0).startsWith(a + ":5: not valid JSON at column "), rep.badLines().get(0));
        assertEquals(20 + 3 + 15, rep.totalTokens());
        assertEquals(19 + 1 + 2, rep.targetTokens());
        assertEquals(20, rep.maxLength());
        assertEquals(38 / 3.0, rep.meanLength(), 1e-12);
        assertEquals(20, rep.lengthLimit());
        String s = rep.summary();
        assertTrue(s.contains("6 records read from 2 files, 3 kept (1 text, 1 chat, 1 input_ids)"), s);
        assertTrue(s.contains("a.jsonl: 4 read, 2 kept"), s);
        assertTrue(s.contains("max_length 20: 1 truncated, 1 chat dropped as too long"), s);
        assertTrue(s.contains("dropped with no label: 1; bad lines skipped: 1"), s);
        assertTrue(s.contains("tokens 38, with loss 22 (57.9%); length max 20, mean 12.7"), s);
        assertTrue(s.contains("a.jsonl:5: not valid JSON"), s);
    }

    @Test
    void blankLinesCrLfAndByteOrderMark() throws IOException {
        Path f = dir.resolve("a.jsonl");
        Files.write(f, ("\uFEFF{\"text\": \"Hello\"}\r\n  \r\n\t\n{\"text\": \"!\"}").getBytes(StandardCharsets.UTF_8));
        JsonlDataset d = load(f);
        assertEquals(2, d.size());
        assertEquals(f + ":1", d.get(0).source());
        assertEquals(f + ":4", d.get(1).source()); // blank lines count for numbering, not as records
        assertEquals(2, d.report().read());
        assertArrayEquals(new int[] {BOS, BANG, EOS}, d.get(1).inputIds());
    }

    @Test
    void aLineLongerThanTheReadBuffer() throws IOException {
        String text = "the cat ".repeat(30_000) + "Hello world!"; // 240K characters on one line
        Path f = write(dir, "a.jsonl", "{\"text\": \"" + text + "\"}", "{\"text\": \"!\"}");
        JsonlDataset d = load(f);
        assertArrayEquals(concat(new int[] {BOS}, tok.encode(text, false), new int[] {EOS}), d.get(0).inputIds());
        assertEquals(f + ":2", d.get(1).source());
    }

    @Test
    void emptyFileGivesNoRecords() throws IOException {
        Path f = Files.writeString(dir.resolve("empty.jsonl"), "");
        JsonlDataset d = load(f);
        assertEquals(0, d.size());
        assertEquals(0, d.report().read());
        assertEquals(0.0, d.report().meanLength());
        assertTrue(d.report().summary().contains("0 records read from 1 file,"), d.report().summary());
    }

    @Test
    void missingFileIsAClearErrorBeforeAnythingIsRead() throws IOException {
        Path a = write(dir, "a.jsonl", "{\"text\": \"Hello\"}");
        Path missing = dir.resolve("nope.jsonl");
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> load(a, missing));
        assertTrue(e.getMessage().contains("nope.jsonl"), e.getMessage());
        assertTrue(e.getMessage().contains("not found"), e.getMessage());
        IllegalArgumentException d = assertThrows(IllegalArgumentException.class, () -> load(dir));
        assertTrue(d.getMessage().contains("not a file"), d.getMessage());
    }

    @Test
    void threadsDoNotChangeTheResult() throws IOException {
        // Enough lines for several chunks per file, of mixed kinds, with some long lines.
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            switch (i % 4) {
                case 0 -> lines.add("{\"text\": \"" + "the cat ".repeat(1 + i % 37) + i + "\"}");
                case 1 -> lines.add("{\"conversations\": [{\"role\": \"user\", \"content\": \"" + i + "\"},"
                        + " {\"role\": \"assistant\", \"content\": \"" + "Hello world ".repeat(1 + i % 9) + "\"}]}");
                case 2 -> lines.add("{\"input_ids\": [" + (i % 280) + ", 5, 6]}");
                default -> lines.add(i % 7 == 0 ? "bad" : "{\"text\": \"" + "x".repeat(i) + "\"}");
            }
        }
        Path a = write(dir, "a.jsonl", lines.toArray(String[]::new));
        Path b = write(dir, "b.jsonl", lines.reversed().toArray(String[]::new));
        JsonlDataset one = load(new Options().threads(1).maxLength(40).skipBadLines(true), a, b);
        JsonlDataset four = load(new Options().threads(4).maxLength(40).skipBadLines(true), a, b);
        assertEquals(one.records(), four.records());
        assertEquals(one.report(), four.report());
        assertTrue(one.size() > 400, one.report().summary());
        assertTrue(one.report().badSkipped() > 0 && one.report().truncated() > 0 && one.report().droppedTooLong() > 0,
                one.report().summary());
    }
}
