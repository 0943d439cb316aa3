package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.tools.LongBenchTasks.Metric;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * LongBench's metrics on cases whose scores were worked out by hand (metric-cases.jsonl, each with
 * its reasoning) and on random cases scored by LongBench's own metrics.py (metric-reference.jsonl);
 * tools/src/test/python/ has the scripts that check and write them against LongBench.
 */
class LongBenchMetricsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static List<JsonNode> cases(String name) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        try (InputStream in = LongBenchMetricsTest.class.getResourceAsStream("/longbench/" + name)) {
            assertNotNull(in, name);
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (!line.isBlank()) out.add(JSON.readTree(line));
            }
        }
        return out;
    }

    static double score(JsonNode c) {
        Metric m = switch (c.get("metric").asText()) {
            case "qa_f1" -> Metric.QA_F1;
            case "rouge_l" -> Metric.ROUGE_L;
            case "classification" -> Metric.CLASSIFICATION;
            case "count" -> Metric.COUNT;
            case "retrieval" -> Metric.RETRIEVAL_EN;
            case "retrieval_zh" -> Metric.RETRIEVAL_ZH;
            case "code_sim" -> Metric.CODE_SIM;
            default -> throw new AssertionError(c.get("metric").asText());
        };
        List<String> classes = new ArrayList<>();
        if (c.hasNonNull("all_classes")) c.get("all_classes").forEach(x -> classes.add(x.asText()));
        return m.score(c.get("prediction").asText(), c.get("answer").asText(), classes);
    }

    @Test
    void handCheckedCases() throws IOException {
        List<JsonNode> cases = cases("metric-cases.jsonl");
        assertEquals(30, cases.size());
        for (JsonNode c : cases) {
            assertEquals(c.get("expected").asDouble(), score(c), 1e-12, c.get("metric").asText() + ": " + c.get("why").asText());
        }
    }

    @Test
    void randomCasesAgreeWithLongBenchsMetricsPy() throws IOException {
        List<JsonNode> cases = cases("metric-reference.jsonl");
        assertEquals(320, cases.size());
        int i = 0;
        for (JsonNode c : cases) {
            i++;
            assertEquals(c.get("expected").asDouble(), score(c), 1e-12,
                    "case " + i + " " + c.get("metric").asText() + ": " + c.get("prediction") + " vs " + c.get("answer"));
        }
    }

    @Test
    void namedCases() {
        // the few the others lean on, spelled out
        assertEquals(2.0 / 3, LongBenchMetrics.qaF1("The Eiffel Tower, in Paris.", "Eiffel Tower"), 1e-12);
        assertEquals("eiffel tower in paris", LongBenchMetrics.normalizeAnswer("The Eiffel  Tower, in Paris."));
        assertEquals(List.of("b"), LongBenchMetrics.lcsWords(new String[] {"a", "b"}, new String[] {"b", "a"}));
        assertEquals(List.of("A b", "C d"), LongBenchMetrics.sentences("A b. C d."));
        assertEquals(List.of("Hello", ""), LongBenchMetrics.sentences("Hello. "));
        assertEquals(92, LongBenchMetrics.fuzzRatio("x = foo(a, b)", "x = foo(a, c)"));
        assertEquals(100, LongBenchMetrics.fuzzRatio("", ""), "equal strings come first, even empty ones");
        assertEquals(0, LongBenchMetrics.fuzzRatio("", "x"));
        assertEquals(List.of("a", "b"), LongBenchMetrics.pythonSplit("\u2003a\u001fb\u0085"));
    }

    @Test
    void retrievalNeedsAParagraphAnswer() {
        var e = assertThrows(IllegalArgumentException.class, () -> LongBenchMetrics.retrievalEn("Paragraph 1", "the first"));
        assertTrue(e.getMessage().contains("Paragraph N"), e.getMessage());
    }
}
