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

/**
 * eval ruler-niah end to end on the tiny random model: files, JSON shapes and the table, not the
 * accuracy (RulerNiahTest checks the scoring with fake models).
 */
class RulerNiahCliTest {
    @TempDir static Path dir;
    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 21);
    }

    @Test
    void writesReportCurveAndTable() throws Exception {
        Path out = dir.resolve("mq");
        CliTest.Result r = CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multiquery",
                "--needles", "3", "--queries", "2", "--lengths", "500,600", "--trials", "2", "--seed", "5", "--max-new-tokens", "3",
                "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(3, lines.length, r.out());
        assertTrue(lines[0].contains("length") && lines[0].contains("score") && lines[0].contains("samples"), r.out());
        assertTrue(lines[1].trim().startsWith("500 ") && lines[1].trim().endsWith(" 2"), r.out());
        assertTrue(lines[2].trim().startsWith("600 "), r.out());
        JsonNode j = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        assertEquals("ruler-niah", j.get("eval").asText());
        assertEquals("multiquery", j.get("variant").asText());
        assertEquals(3, j.get("needles").asInt());
        assertEquals(2, j.get("queries").asInt());
        assertEquals("built-in", j.get("haystack").asText());
        assertEquals(2, j.get("lengths").size());
        for (JsonNode l : j.get("lengths")) {
            double score = l.get("score").asDouble();
            assertTrue(score >= 0 && score <= 1);
            assertEquals(2, l.get("samples").size());
            for (JsonNode s : l.get("samples")) {
                assertEquals(3, s.get("needles").size());
                assertEquals(2, s.get("asked").size());
                assertEquals(2, s.get("expected").size());
                assertTrue(s.get("needles").get(0).has("key") && s.get("needles").get(0).has("number") && s.get("needles").get(0).has("depth"));
                int tokens = s.get("prompt_tokens").asInt();
                assertTrue(tokens <= l.get("length").asInt() && tokens >= l.get("length").asInt() - 12, "prompt tokens " + tokens);
                assertTrue(s.has("answer") && s.has("score"));
            }
        }
        if (dev.tenfold.tools.charts.ChartSupport.available()) {
            assertNotNull(ImageIO.read(out.resolve("ruler-niah-multiquery.png").toFile()));
        }
        try (var files = Files.list(out)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary files left");
        }
        // seeded: the same samples again, as JSON on stdout
        CliTest.Result again = CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multiquery",
                "--needles", "3", "--queries", "2", "--lengths", "500,600", "--trials", "2", "--seed", "5", "--max-new-tokens", "3",
                "--output", dir.resolve("mq2").toString(), "--json");
        assertEquals(0, again.code(), again.err());
        assertEquals(j.get("lengths"), new ObjectMapper().readTree(again.out()).get("lengths"));
    }

    @Test
    void otherVariantsChatAndHaystackFile() throws Exception {
        Path hay = dir.resolve("hay.txt");
        Files.writeString(hay, "Cats sleep a lot. Dogs bark at night. Birds sing in the morning. Fish swim all day long. ");
        Path cwdDefault = dir.resolve("mk");
        CliTest.Result mk = CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multikey", "--needles", "2",
                "--lengths", "450", "--trials", "1", "--max-new-tokens", "2", "--haystack", hay.toString(), "--chat",
                "--output", cwdDefault.toString(), "--json");
        assertEquals(0, mk.code(), mk.err());
        JsonNode j = new ObjectMapper().readTree(mk.out());
        assertEquals("multikey", j.get("variant").asText());
        assertEquals(1, j.get("queries").asInt());
        assertTrue(j.get("chat").asBoolean());
        assertEquals(hay.toString(), j.get("haystack").asText());
        assertEquals(10000.0, j.get("rope_theta").asDouble());
        JsonNode s = j.get("lengths").get(0).get("samples").get(0);
        assertEquals(1, s.get("asked").size());
        assertNotEquals(s.get("needles").get(0).get("key"), s.get("needles").get(1).get("key"));

        CliTest.Result mv = CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multivalue", "--needles", "2",
                "--lengths", "450", "--trials", "1", "--max-new-tokens", "2", "--output", dir.resolve("mv").toString(), "--json");
        assertEquals(0, mv.code(), mv.err());
        JsonNode v = new ObjectMapper().readTree(mv.out()).get("lengths").get(0).get("samples").get(0);
        assertEquals(v.get("needles").get(0).get("key"), v.get("needles").get(1).get("key"));
        assertEquals(2, v.get("expected").size());
    }

    @Test
    void badInputIsOneClearLine() {
        CliTest.Result r = CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multihop");
        assertEquals(2, r.code()); // a bad flag value is a usage error
        assertTrue(r.err().contains("unknown variant 'multihop'"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());

        r = CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multikey", "--lengths", "200",
                "--output", dir.resolve("short").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("shorter than"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
        assertFalse(Files.exists(dir.resolve("short").resolve("report.json")));

        r = CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multiquery", "--queries", "5");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--queries"), r.err());

        r = CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multikey", "--trials", "0");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--trials"), r.err());

        r = CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multikey",
                "--haystack", dir.resolve("missing.txt").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("missing.txt: no such file"), r.err());

        r = CliTest.run("", "eval", "ruler-niah", "--model", model.toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("--variant"), r.err());
    }
}
