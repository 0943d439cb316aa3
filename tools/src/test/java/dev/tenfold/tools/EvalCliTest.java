package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.llama.testing.TinyLlama;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * eval passkey and eval niah end to end on the tiny random model: its answers are noise, so these
 * check the files, shapes and table, not the accuracy (the library tests check scoring with a fake model).
 */
class EvalCliTest {
    @TempDir static Path dir;
    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 21);
    }

    @Test
    void passkeyWritesReportCurveAndTable() throws Exception {
        Path out = dir.resolve("pk");
        CliTest.Result r = CliTest.run("", "eval", "passkey", "--model", model.toString(), "--lengths", "300,400",
                "--trials", "2", "--seed", "5", "--max-new-tokens", "3", "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("length") && r.out().contains("accuracy"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.trim().startsWith("300 ")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.trim().startsWith("400 ") && l.contains("/2")), r.out());
        JsonNode j = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        assertEquals("passkey", j.get("eval").asText());
        assertEquals(2, j.get("lengths").size());
        for (JsonNode l : j.get("lengths")) {
            assertEquals(2, l.get("samples").size());
            double acc = l.get("accuracy").asDouble();
            assertTrue(acc >= 0 && acc <= 1);
            int tokens = l.get("samples").get(0).get("prompt_tokens").asInt();
            assertTrue(tokens <= l.get("length").asInt() && tokens >= l.get("length").asInt() - 12, "prompt tokens " + tokens);
        }
        if (dev.tenfold.tools.charts.ChartSupport.available()) {
            BufferedImage png = ImageIO.read(out.resolve("passkey.png").toFile());
            assertNotNull(png);
        }
        try (var files = Files.list(out)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary files left");
        }
        // seeded: the same report again, as JSON on stdout
        CliTest.Result again = CliTest.run("", "eval", "passkey", "--model", model.toString(), "--lengths", "300,400",
                "--trials", "2", "--seed", "5", "--max-new-tokens", "3", "--output", dir.resolve("pk2").toString(), "--json");
        assertEquals(0, again.code(), again.err());
        assertEquals(j.get("lengths"), new ObjectMapper().readTree(again.out()).get("lengths"));
    }

    @Test
    void niahWritesReportHeatmapAndTable() throws Exception {
        Path out = dir.resolve("niah");
        Path hay = dir.resolve("hay.txt");
        Files.writeString(hay, "Cats sleep a lot. Dogs bark at night. Birds sing in the morning. Fish swim all day long. ");
        CliTest.Result r = CliTest.run("", "eval", "niah", "--model", model.toString(), "--lengths", "450,600",
                "--depth-count", "3", "--max-new-tokens", "4", "--haystack", hay.toString(), "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(5, lines.length, r.out()); // header, 3 depths, summary
        assertTrue(lines[0].contains("450") && lines[0].contains("600"), r.out());
        assertTrue(lines[1].startsWith("0%") && lines[2].startsWith("50%") && lines[3].startsWith("100%"), r.out());
        assertTrue(lines[4].contains("mean ROUGE-L"), r.out());
        JsonNode j = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        assertEquals("niah", j.get("eval").asText());
        assertEquals(hay.toString(), j.get("haystack").asText());
        assertEquals(2, j.get("rouge_l").size());
        assertEquals(3, j.get("rouge_l").get(0).size());
        assertEquals(6, j.get("samples").size());
        if (dev.tenfold.tools.charts.ChartSupport.available()) assertNotNull(ImageIO.read(out.resolve("niah.png").toFile()));

        CliTest.Result chat = CliTest.run("", "eval", "niah", "--model", model.toString(), "--lengths", "500", "--depths", "10,90",
                "--max-new-tokens", "2", "--chat", "--output", dir.resolve("niah-chat").toString(), "--json");
        assertEquals(0, chat.code(), chat.err());
        JsonNode c = new ObjectMapper().readTree(chat.out());
        assertTrue(c.get("chat").asBoolean());
        assertEquals("built-in", c.get("haystack").asText());
        assertEquals(10.0, c.get("depths").get(0).asDouble(), 1e-9);
        assertEquals(10000.0, c.get("rope_theta").asDouble()); // the tiny model's own

        CliTest.Result theta = CliTest.run("", "eval", "passkey", "--model", model.toString(), "--lengths", "300", "--trials", "1",
                "--max-new-tokens", "2", "--rope-theta", "200e6", "--output", dir.resolve("theta").toString(), "--json");
        assertEquals(0, theta.code(), theta.err());
        assertEquals(200e6, new ObjectMapper().readTree(theta.out()).get("rope_theta").asDouble());
    }

    @Test
    void badInputIsOneClearLine() {
        CliTest.Result r = CliTest.run("", "eval", "passkey", "--model", model.toString(), "--lengths", "50",
                "--output", dir.resolve("short").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("shorter than"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
        assertFalse(Files.exists(dir.resolve("short").resolve("report.json")));

        r = CliTest.run("", "eval", "niah", "--model", model.toString(), "--haystack", dir.resolve("missing.txt").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("missing.txt: no such file"), r.err());

        r = CliTest.run("", "eval", "niah", "--model", model.toString(), "--depths", "50,120");
        assertEquals(2, r.code()); // a flag outside its range is a usage error
        assertTrue(r.err().contains("--depths"), r.err());

        r = CliTest.run("", "eval", "passkey", "--model", model.toString(), "--trials", "0");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--trials"), r.err());
    }
}
