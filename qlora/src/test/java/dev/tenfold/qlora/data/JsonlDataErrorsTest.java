package dev.tenfold.qlora.data;

import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.data.JsonlDataset.Options;
import dev.tenfold.qlora.data.JsonlDataset.Report;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static dev.tenfold.qlora.data.TinyData.*;
import static org.junit.jupiter.api.Assertions.*;

/** Bad lines: each kind names FILE:LINE and what is wrong; skipBadLines skips and counts them. */
class JsonlDataErrorsTest {
    @TempDir
    Path dir;
    Tokenizer tok;

    @BeforeEach
    void setUp() {
        tok = tokenizer(dir);
    }

    static Stream<Arguments> badLines() {
        return Stream.of(
                Arguments.of("{\"text\": \"a\"", "not valid JSON"),
                Arguments.of("{\"text\": \"a\"} {\"text\": \"b\"}", "not valid JSON"),
                Arguments.of("{\"text\": \"a\", \"text\": \"b\"}", "Duplicate field 'text'"),
                Arguments.of("[1, 2]", "not a JSON object"),
                Arguments.of("\"Hello\"", "not a JSON object"),
                Arguments.of("{\"prompt\": \"a\", \"completion\": \"b\"}", "unknown record shape (keys \"prompt\", \"completion\")"),
                Arguments.of("{}", "unknown record shape (keys none)"),
                Arguments.of("{\"text\": \"a\", \"input_ids\": [1]}", "has both \"text\" and \"input_ids\""),
                Arguments.of("{\"text\": \"a\", \"labels\": [1]}", "\"labels\" goes only with \"input_ids\""),
                Arguments.of("{\"text\": 5}", "\"text\" is a number 5, not a string"),
                Arguments.of("{\"text\": null}", "\"text\" is null, not a string"),
                Arguments.of("{\"conversations\": []}", "\"conversations\" is empty"),
                Arguments.of("{\"messages\": []}", "\"messages\" is empty"),
                Arguments.of("{\"conversations\": \"hi\"}", "\"conversations\" is a string \"hi\", not an array of messages"),
                Arguments.of("{\"conversations\": [\"hi\"]}", "conversations[0] is a string \"hi\", not an object"),
                Arguments.of("{\"conversations\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"tool\", \"content\": \"b\"}]}",
                        "conversations[1].role \"tool\" is not one of system, user, assistant"),
                Arguments.of("{\"conversations\": [{\"role\": \"User\", \"content\": \"a\"}]}",
                        "conversations[0].role \"User\" is not one of"),
                Arguments.of("{\"conversations\": [{\"content\": \"a\"}]}", "conversations[0] has no \"role\""),
                Arguments.of("{\"conversations\": [{\"role\": 1, \"content\": \"a\"}]}", "conversations[0].role is a number 1, not a string"),
                Arguments.of("{\"messages\": [{\"role\": \"user\"}]}", "messages[0] has no \"content\""),
                Arguments.of("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]}",
                        "messages[0].content is an array, not a string"),
                Arguments.of("{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}]}", "ShareGPT"),
                Arguments.of("{\"input_ids\": []}", "\"input_ids\" is empty"),
                Arguments.of("{\"input_ids\": \"1 2\"}", "\"input_ids\" is a string \"1 2\", not an array of token ids"),
                Arguments.of("{\"input_ids\": [1, 285]}", "input_ids[1] = 285 is not a token id (0..284)"),
                Arguments.of("{\"input_ids\": [-100, 2]}", "input_ids[0] = -100 is not a token id (0..284)"),
                Arguments.of("{\"input_ids\": [1, 2.5]}", "input_ids[1] is a number 2.5, not an integer token id"),
                Arguments.of("{\"input_ids\": [1, 99999999999]}", "input_ids[1] is a number 99999999999, not an integer"),
                Arguments.of("{\"input_ids\": [1, \"2\"]}", "input_ids[1] is a string \"2\", not an integer token id"),
                Arguments.of("{\"input_ids\": [1, 2], \"labels\": [1]}", "\"labels\" has 1 entries but \"input_ids\" has 2"),
                Arguments.of("{\"input_ids\": [1, 2], \"labels\": [1, -5]}", "labels[1] = -5 is not a token id (0..284) or -100"),
                Arguments.of("{\"input_ids\": [1, 2], \"labels\": [1, 300]}", "labels[1] = 300 is not a token id"),
                Arguments.of("{\"input_ids\": [1, 2], \"labels\": 3}", "\"labels\" is a number 3, not an array"));
    }

    @ParameterizedTest
    @MethodSource("badLines")
    void badLineNamesFileLineAndReason(String bad, String reason) throws IOException {
        // Line 1 good, line 2 blank, line 3 bad: the number counts blank lines.
        Path f = write(dir, "file.jsonl", "{\"text\": \"Hello\"}", "", bad, "{\"text\": \"!\"}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> JsonlDataset.load(tok, new Options(), f));
        assertTrue(e.getMessage().startsWith(f + ":3: "), e.getMessage());
        assertTrue(e.getMessage().contains("file.jsonl:3: "), e.getMessage());
        assertTrue(e.getMessage().contains(reason), e.getMessage() + "\n  should contain: " + reason);

        // Skipped instead, the good lines around it are kept.
        JsonlDataset d = JsonlDataset.load(tok, new Options().skipBadLines(true), f);
        assertEquals(2, d.size());
        assertEquals(1, d.report().badSkipped());
        assertEquals(e.getMessage(), d.report().badLines().get(0));
    }

    @Test
    void invalidUtf8IsOneBadLine() throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        bytes.writeBytes("{\"text\": \"Hello\"}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"text\": \"caf".getBytes(StandardCharsets.UTF_8));
        bytes.write(0xE9); // Latin-1 é: not UTF-8
        bytes.writeBytes("\"}\n{\"text\": \"!\"}\n".getBytes(StandardCharsets.UTF_8));
        Path f = Files.write(dir.resolve("file.jsonl"), bytes.toByteArray());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> JsonlDataset.load(tok, new Options(), f));
        // the byte within the line, not the decoder's "Input length = 1"
        assertTrue(e.getMessage().endsWith("file.jsonl:2: not valid UTF-8 at byte 13 of the line; save the file as UTF-8"), e.getMessage());
        JsonlDataset d = JsonlDataset.load(tok, new Options().skipBadLines(true), f);
        assertEquals(2, d.size());
        assertEquals(f + ":3", d.get(1).source());
    }

    @Test
    void theFirstBadLineIsReportedEvenWithThreads() throws IOException {
        String[] lines = new String[500];
        for (int i = 0; i < lines.length; i++) lines[i] = "{\"text\": \"the cat " + i + "\"}";
        lines[211] = "{\"text\": 1}";
        lines[212] = "oops";
        lines[450] = "{}";
        Path f = write(dir, "file.jsonl", lines);
        for (int threads : new int[] {1, 3}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> JsonlDataset.load(tok, new Options().threads(threads), f));
            assertTrue(e.getMessage().contains("file.jsonl:212: \"text\" is a number"), e.getMessage());
        }
    }

    @Test
    void badLineInTheSecondFileNamesThatFile() throws IOException {
        Path a = write(dir, "a.jsonl", "{\"text\": \"Hello\"}");
        Path b = write(dir, "b.jsonl", "{\"text\": \"Hello\"}", "{\"text\": \"Hello\"}", "{\"role\": \"user\"}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> JsonlDataset.load(tok, new Options(), a, b));
        assertTrue(e.getMessage().startsWith(b + ":3: unknown record shape"), e.getMessage());
    }

    @Test
    void skipBadLinesCountsAllAndListsTheFirstFew() throws IOException {
        Path f = write(dir, "file.jsonl",
                "{\"text\": \"Hello\"}",
                "nope",                                    // 2
                "{\"input_ids\": [9999]}",                 // 3
                "{\"text\": \"!\"}",
                "{\"conversations\": []}",                 // 5
                "{\"text\": false}",                       // 6
                "{\"input_ids\": [3, 4]}");
        JsonlDataset d = JsonlDataset.load(tok, new Options().skipBadLines(true).badLinesListed(2), f);
        Report rep = d.report();
        assertEquals(3, d.size());
        assertEquals(7, rep.read());
        assertEquals(3, rep.kept());
        assertEquals(4, rep.badSkipped());
        assertEquals(2, rep.badLines().size());
        assertTrue(rep.badLines().get(0).startsWith(f + ":2: not valid JSON"), rep.badLines().get(0));
        assertTrue(rep.badLines().get(1).startsWith(f + ":3: input_ids[0] = 9999"), rep.badLines().get(1));
        assertTrue(rep.summary().contains("bad lines (first 2 of 4):"), rep.summary());
        assertEquals(f + ":7", d.get(2).source());
    }
}
