package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** eval topics end to end on the tiny random model: files, JSON shapes and the table, not the accuracy. */
class TopicsCliTest {
    @TempDir static Path dir;
    static Path model;
    static Path topics;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 21);
        topics = dir.resolve("topics.txt");
        Files.writeString(topics, "jazz\nvolcanoes\n\nchess openings\nbaking bread\norigami\n");
    }

    @Test
    void writesReportCurveAndTable() throws Exception {
        Path out = dir.resolve("t");
        CliTest.Result r = CliTest.run("", "eval", "topics", "--model", model.toString(), "--topics", topics.toString(), "--counts", "2,4",
                "--trials", "2", "--sentences", "1", "--max-new-tokens", "3", "--seed", "3", "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(3, lines.length, r.out());
        assertTrue(lines[0].contains("topics") && lines[0].contains("accuracy"), r.out());
        assertTrue(lines[1].trim().startsWith("2 ") && lines[1].endsWith("/2"), r.out());
        assertTrue(lines[2].trim().startsWith("4 "), r.out());
        JsonNode j = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        assertEquals("topics", j.get("eval").asText());
        assertEquals(topics.toString(), j.get("topics_file").asText());
        assertEquals(2, j.get("counts").size());
        for (JsonNode c : j.get("counts")) {
            assertEquals(2, c.get("samples").size());
            for (JsonNode s : c.get("samples")) {
                assertEquals(c.get("count").asInt(), s.get("topics").size());
                assertEquals(s.get("topics").get(0), s.get("first"));
                assertTrue(s.get("prompt_tokens").asInt() > 0 && s.has("answer") && s.has("correct"));
            }
        }
        if (dev.tenfold.tools.charts.ChartSupport.available()) assertNotNull(ImageIO.read(out.resolve("topics.png").toFile()));
        CliTest.Result again = CliTest.run("", "eval", "topics", "--model", model.toString(), "--topics", topics.toString(), "--counts", "2,4",
                "--trials", "2", "--sentences", "1", "--max-new-tokens", "3", "--seed", "3", "--output", dir.resolve("t2").toString(), "--json",
                "--chat");
        assertEquals(0, again.code(), again.err());
        JsonNode a = new ObjectMapper().readTree(again.out());
        assertTrue(a.get("chat").asBoolean());
        assertEquals(j.get("counts").get(0).get("samples").get(0).get("topics"), a.get("counts").get(0).get("samples").get(0).get("topics"));
    }

    @Test
    void badTopicsFilesAreOneClearLine() throws Exception {
        CliTest.Result r = CliTest.run("", "eval", "topics", "--model", model.toString(), "--topics", dir.resolve("missing.txt").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("missing.txt: no such file"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());

        Path empty = dir.resolve("empty.txt");
        Files.writeString(empty, "\n  \n");
        r = CliTest.run("", "eval", "topics", "--model", model.toString(), "--topics", empty.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("no topics"), r.err());

        r = CliTest.run("", "eval", "topics", "--model", model.toString(), "--topics", topics.toString(), "--counts", "5,10",
                "--output", dir.resolve("few").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("5 distinct topics") && r.err().contains("10"), r.err());
        assertFalse(Files.exists(dir.resolve("few").resolve("report.json")));

        r = CliTest.run("", "eval", "topics", "--model", model.toString(), "--topics", topics.toString(), "--counts", "0");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--counts"), r.err());
    }
}
