package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.tools.LongBenchCommand.Prediction;
import dev.tenfold.tools.LongBenchCommand.Prompt;
import dev.tenfold.tools.LongBenchCommand.Sample;
import dev.tenfold.tools.LongBenchTasks.Category;
import dev.tenfold.tools.LongBenchTasks.Task;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * eval longbench: the fixture files (resources/longbench/data, in LongBench's format) scored from
 * predictions whose scores were worked out by hand (resources/longbench/predictions.jsonl; the same
 * task scores as LongBench's eval.py gives), the prompts, bad input, and the command end to end on
 * the tiny random model (whose answers are noise: that run checks the files, the table and the
 * bookkeeping, not the scores).
 */
class LongBenchCliTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    @TempDir static Path dir;
    static Path model, data;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 21);
        data = dir.resolve("data");
        Files.createDirectories(data);
        for (String t : List.of("narrativeqa", "hotpotqa", "gov_report", "trec", "samsum", "passage_count", "passage_retrieval_en", "lcc", "qasper_e")) {
            Files.writeString(data.resolve(t + ".jsonl"), resource("data/" + t + ".jsonl"));
        }
    }

    static String resource(String name) throws IOException {
        try (InputStream in = LongBenchCliTest.class.getResourceAsStream("/longbench/" + name)) {
            assertNotNull(in, name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** The fixture records scored from the hand-made predictions: the results the command would have. */
    static Map<Task, List<Prediction>> handScored() throws IOException {
        Map<String, JsonNode> preds = new HashMap<>();
        for (String line : resource("predictions.jsonl").split("\n")) {
            if (line.isBlank()) continue;
            JsonNode p = JSON.readTree(line);
            preds.put(p.get("_id").asText(), p);
        }
        Map<Task, List<Prediction>> results = new LinkedHashMap<>();
        for (Task t : LongBenchCommand.selectedTasks(List.of("narrativeqa", "hotpotqa", "gov_report", "trec", "samsum", "passage_count",
                "passage_retrieval_en", "lcc"))) {
            List<Prediction> out = new ArrayList<>();
            for (Sample s : LongBenchCommand.readSamples(data.resolve(t.name() + ".jsonl"), t)) {
                JsonNode p = preds.get(s.id());
                double score = t.score(p.get("pred").asText(), s.answers(), s.allClasses());
                assertEquals(p.get("expected").asDouble(), score, 1e-12, s.id() + ": " + p.get("why").asText());
                out.add(new Prediction(s, 10, false, p.get("pred").asText(), score));
            }
            results.put(t, out);
        }
        return results;
    }

    @Test
    void fixturePredictionsScoreAsWorkedOutByHand() throws IOException {
        Map<Task, List<Prediction>> results = handScored();
        // per task: 100 x the mean, to 2 decimals (eval.py gives the same on these files)
        Map<String, Double> expected = Map.of("narrativeqa", 83.33, "hotpotqa", 0.0, "gov_report", 80.0, "trec", 50.0, "samsum", 100.0,
                "passage_count", 50.0, "passage_retrieval_en", 100.0, "lcc", 88.0);
        results.forEach((t, p) -> assertEquals(expected.get(t.name()), LongBenchCommand.taskScore(p), 0, t.name()));
        var report = JSON.createObjectNode();
        LongBenchCommand.fill(report, results);
        JsonNode cats = report.get("categories");
        assertEquals(83.33, cats.get("Single-Doc QA").asDouble());
        assertEquals(0.0, cats.get("Multi-Doc QA").asDouble());
        assertEquals(80.0, cats.get("Summarization").asDouble());
        assertEquals(75.0, cats.get("Few-shot").asDouble(), "trec 50 and samsum 100");
        assertEquals(75.0, cats.get("Synthetic").asDouble(), "passage_count 50 and passage_retrieval_en 100");
        assertEquals(88.0, cats.get("Code").asDouble());
        // the paper's average: over the 8 tasks, (83.33 + 0 + 80 + 50 + 100 + 50 + 100 + 88) / 8 = 68.91625
        assertEquals(68.92, report.get("average").asDouble());
        assertEquals(8, report.get("tasks_averaged").asInt());
        assertEquals(2, report.get("tasks").get(0).get("predictions").size());

        String table = LongBenchCommand.table(results);
        List<String> lines = table.lines().toList();
        assertTrue(lines.get(0).startsWith("task") && lines.get(0).contains("score"), table);
        assertTrue(lines.get(1).matches("narrativeqa\\s+Single-Doc QA\\s+qa_f1\\s+2\\s+83\\.33"), lines.get(1));
        int head = lines.indexOf(lines.stream().filter(l -> l.contains("Single-Doc QA") && l.contains("Avg")).findFirst().orElseThrow());
        assertEquals(List.of("Single-Doc", "QA", "Multi-Doc", "QA", "Summarization", "Few-shot", "Synthetic", "Code", "Avg"),
                List.of(lines.get(head).trim().split("\\s+")));
        assertEquals(List.of("83.33", "0.00", "80.00", "75.00", "75.00", "88.00", "68.92"), List.of(lines.get(head + 1).trim().split("\\s+")));
    }

    @Test
    void longBenchEScoresByLength() throws IOException {
        Map<String, JsonNode> preds = new HashMap<>();
        for (String line : resource("predictions.jsonl").split("\n")) {
            if (!line.isBlank()) preds.put(JSON.readTree(line).get("_id").asText(), JSON.readTree(line));
        }
        Task e = LongBenchCommand.selectedTasks(List.of("qasper_e")).get(0);
        assertEquals("qasper", e.dataset());
        assertEquals(LongBenchTasks.TASKS.get("qasper").template(), e.template());
        List<Prediction> out = new ArrayList<>();
        for (Sample s : LongBenchCommand.readSamples(data.resolve("qasper_e.jsonl"), e)) {
            JsonNode p = preds.get(s.id());
            double score = e.score(p.get("pred").asText(), s.answers(), s.allClasses());
            assertEquals(p.get("expected").asDouble(), score, 1e-12, s.id() + ": " + p.get("why").asText());
            out.add(new Prediction(s, 10, false, p.get("pred").asText(), score));
        }
        // lengths 120 and 3999: 1 and 0; 4000: 2/3; 12000: 1 (LongBench's eval.py --e gives the same)
        assertEquals(Map.of("0-4k", 50.0, "4-8k", 66.67, "8k+", 100.0), LongBenchCommand.lengthBucketScores(out));
        assertEquals(66.67, LongBenchCommand.taskScore(out));
        Map<Task, List<Prediction>> results = new LinkedHashMap<>(handScored());
        results.put(e, out);
        List<String> lines = LongBenchCommand.table(results).lines().toList();
        assertTrue(lines.get(0).endsWith("0-4k    4-8k     8k+"), lines.get(0));
        assertTrue(lines.stream().anyMatch(l -> l.matches("qasper_e\\s+Single-Doc QA\\s+qa_f1\\s+4\\s+66\\.67\\s+50\\.00\\s+66\\.67\\s+100\\.00")),
                String.join("\n", lines));
        var report = JSON.createObjectNode();
        LongBenchCommand.fill(report, results);
        JsonNode last = report.get("tasks").get(8);
        assertEquals("qasper_e", last.get("task").asText());
        assertEquals(50.0, last.get("length_buckets").get("0-4k").asDouble());
        assertFalse(report.get("tasks").get(0).has("length_buckets"));
        // a range without records: NaN in LongBench, null here
        assertTrue(LongBenchCommand.lengthBucketScores(out.subList(0, 2)).get("8k+").isNaN());
    }

    @Test
    void categoriesNotRunShowADash() throws IOException {
        Map<Task, List<Prediction>> all = handScored();
        Map<Task, List<Prediction>> some = new LinkedHashMap<>();
        all.forEach((t, p) -> {
            if (t.category() == Category.CODE || t.name().equals("trec")) some.put(t, p);
        });
        List<String> lines = LongBenchCommand.table(some).lines().toList();
        String row = lines.get(lines.size() - 2);
        assertEquals(List.of("-", "-", "-", "50.00", "-", "88.00", "69.00"), List.of(row.trim().split("\\s+")), row);
    }

    @Test
    void promptsAreCutInTheMiddleAndChatWrappedWhereLongBenchDoes() throws IOException {
        Tokenizer tok = ModelOptions.tokenizerOf(model);
        Task qa = LongBenchTasks.TASKS.get("narrativeqa"), trec = LongBenchTasks.TASKS.get("trec");
        Sample s = LongBenchCommand.readSamples(data.resolve("narrativeqa.jsonl"), qa).get(0);
        String full = qa.prompt(s.context(), s.input());
        assertTrue(full.startsWith("You are given a story") && full.contains("Story: Mary lived in Paris")
                && full.endsWith("Question: What landmark did Mary walk past every morning?\n\nAnswer:"), full);

        Prompt whole = LongBenchCommand.prompt(tok, qa, s, 100_000, false, false);
        assertFalse(whole.truncated());
        assertEquals(tok.bosId(), whole.ids()[0]);
        assertEquals(full, tok.decode(whole.ids(), true));

        int max = 120;
        Prompt cut = LongBenchCommand.prompt(tok, qa, s, max, false, false);
        assertTrue(cut.truncated());
        assertTrue(cut.ids().length <= max + 4 && cut.ids().length >= max - 4, "about max tokens: " + cut.ids().length);
        String text = tok.decode(cut.ids(), true);
        // the first and the last max/2 tokens (BOS among the first) are kept: the instruction and the question
        int[] all = LongBenchCommand.prompt(tok, qa, s, 100_000, false, false).ids();
        String head = tok.decode(java.util.Arrays.copyOfRange(all, 0, max / 2), true);
        String tail = tok.decode(java.util.Arrays.copyOfRange(all, all.length - max / 2, all.length), true);
        assertEquals(head + tail, text);
        assertTrue(text.startsWith("You are given a story") && text.endsWith("\n\nAnswer:"), text);

        // chat: narrativeqa goes through the template, trec stays raw
        int startHeader = tok.tokenId(Tokenizer.START_HEADER_ID);
        Prompt chat = LongBenchCommand.prompt(tok, qa, s, max, true, false);
        assertEquals(tok.bosId(), chat.ids()[0]);
        assertEquals(startHeader, chat.ids()[1]);
        assertEquals(1, java.util.Arrays.stream(chat.ids()).filter(id -> id == tok.bosId()).count(), "one BOS, the template's");
        Sample ts = LongBenchCommand.readSamples(data.resolve("trec.jsonl"), trec).get(0);
        Prompt raw = LongBenchCommand.prompt(tok, trec, ts, max, true, false);
        assertTrue(java.util.Arrays.stream(raw.ids()).noneMatch(id -> id == startHeader), "trec is left raw for chat models");
    }

    @Test
    void samsumStopsAtTheNewlineTokenButNotFirst() throws IOException {
        Tokenizer tok = ModelOptions.tokenizerOf(model);
        var settings = LongBenchCommand.generationSettings(tok, LongBenchTasks.TASKS.get("samsum"));
        assertEquals(128, settings.maxNewTokens());
        assertEquals(1, settings.minNewTokens());
        var expected = dev.tenfold.llama.GenerationSettings.greedy(128).alsoStopAt(tok.eotId(), tok.eosId(), tok.encode("\n", false)[0]).minNewTokens(1);
        assertEquals(expected, settings);
        var qa = LongBenchCommand.generationSettings(tok, LongBenchTasks.TASKS.get("gov_report"));
        assertEquals(dev.tenfold.llama.GenerationSettings.greedy(512).alsoStopAt(tok.eotId(), tok.eosId()), qa);
    }

    @Test
    void cleanUpTokenizationSpacesAsHuggingFace() {
        assertEquals("Hello, world. It's done! Isn't it? I'm sure they're", LongBenchCommand.cleanUpTokenizationSpaces(
                "Hello , world . It 's done ! Is n't it ? I 'm sure they 're"));
    }

    @Test
    void runsEndToEndOnTheTinyModel() throws IOException {
        Path json = dir.resolve("out/longbench.json");
        CliTest.Result r = CliTest.run("", "eval", "longbench", "--model", model.toString(), "--data", data.toString(),
                "--tasks", "narrativeqa,trec,samsum,passage_retrieval_en,lcc", "--max-length", "96", "--chat", "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("Single-Doc QA") && r.out().contains("Avg"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("samsum") && l.contains("Few-shot") && l.contains("rouge_l")), r.out());
        JsonNode rep = JSON.readTree(json.toFile());
        assertEquals("longbench", rep.get("eval").asText());
        assertEquals(96, rep.get("max_length").asInt());
        assertTrue(rep.get("chat").asBoolean());
        assertEquals(5, rep.get("tasks").size());
        Map<Task, List<Prediction>> again = new LinkedHashMap<>();
        for (JsonNode t : rep.get("tasks")) {
            Task task = LongBenchTasks.TASKS.get(t.get("task").asText());
            List<Sample> samples = LongBenchCommand.readSamples(data.resolve(task.name() + ".jsonl"), task);
            assertEquals(samples.size(), t.get("predictions").size());
            List<Prediction> preds = new ArrayList<>();
            for (int i = 0; i < samples.size(); i++) {
                JsonNode p = t.get("predictions").get(i);
                assertEquals(samples.get(i).id(), p.get("_id").asText());
                assertTrue(p.get("prompt_tokens").asInt() <= 96 + LongBenchCommand.CHAT_AND_RETOKENIZE_SLACK);
                // each score is the metric of the prediction written
                double score = task.score(p.get("pred").asText(), samples.get(i).answers(), samples.get(i).allClasses());
                assertEquals(score, p.get("score").asDouble(), 0, task.name());
                preds.add(new Prediction(samples.get(i), 0, false, p.get("pred").asText(), score));
            }
            assertEquals(LongBenchCommand.taskScore(preds), t.get("score").asDouble(), 0);
            again.put(task, preds);
        }
        assertTrue(rep.get("tasks").get(0).get("predictions").get(0).get("truncated").asBoolean(), "the story is longer than 96 tokens");
        var recomputed = JSON.createObjectNode();
        LongBenchCommand.fill(recomputed, again);
        assertEquals(recomputed.get("average"), rep.get("average"));
        assertEquals(recomputed.get("categories"), rep.get("categories"));
        // greedy: the same answers again
        CliTest.Result r2 = CliTest.run("", "eval", "longbench", "--model", model.toString(), "--data", data.toString(),
                "--tasks", "narrativeqa,trec,samsum,passage_retrieval_en,lcc", "--max-length", "96", "--chat");
        assertEquals(r.out(), r2.out());
    }

    @Test
    void predictionsFolderGoesOnWhereARunStopped() throws IOException {
        Path pred = dir.resolve("pred"), first = dir.resolve("first.json"), fresh = dir.resolve("fresh.json");
        String[] common = {"eval", "longbench", "--model", model.toString(), "--data", data.toString(), "--tasks", "narrativeqa,trec",
                "--max-length", "96"};
        CliTest.Result part = CliTest.run("", concat(common, "--limit", "1", "--predictions", pred.toString()));
        assertEquals(0, part.code(), part.err());
        assertEquals(1, Files.readAllLines(pred.resolve("narrativeqa.jsonl")).size());
        assertTrue(Files.isRegularFile(pred.resolve("run.json")));
        JsonNode line = JSON.readTree(Files.readAllLines(pred.resolve("trec.jsonl")).get(0));
        // LongBench's pred format, which its eval.py reads, and what resuming needs
        for (String f : List.of("pred", "answers", "all_classes", "length", "_id", "prompt_tokens", "truncated")) assertTrue(line.has(f), f);
        assertEquals(4, line.get("all_classes").size());
        // a kill in the middle of a write leaves a line without its newline: dropped
        Files.writeString(pred.resolve("narrativeqa.jsonl"), "{\"pred\": \"cut sho", java.nio.file.StandardOpenOption.APPEND);

        CliTest.Result rest = CliTest.run("", concat(common, "--predictions", pred.toString(), "--json", first.toString()));
        assertEquals(0, rest.code(), rest.err());
        assertTrue(rest.err().contains("narrativeqa: answers of 1 records read from"), rest.err());
        assertEquals(2, Files.readAllLines(pred.resolve("narrativeqa.jsonl")).size());
        assertEquals(2, Files.readAllLines(pred.resolve("trec.jsonl")).size());
        CliTest.Result whole = CliTest.run("", concat(common, "--json", fresh.toString()));
        assertEquals(0, whole.code(), whole.err());
        assertEquals(JSON.readTree(fresh.toFile()).get("tasks"), JSON.readTree(first.toFile()).get("tasks"), "the same as one whole run");
        assertEquals(whole.out(), rest.out());

        // everything answered: scored from the folder, no model needed
        CliTest.Result scoredOnly = CliTest.run("", concat(common, "--predictions", pred.toString()));
        assertEquals(0, scoredOnly.code(), scoredOnly.err());
        assertTrue(scoredOnly.err().contains("the model was not loaded"), scoredOnly.err());
        assertEquals(whole.out(), scoredOnly.out());

        CliTest.Result other = CliTest.run("", "eval", "longbench", "--model", model.toString(), "--data", data.toString(), "--tasks",
                "narrativeqa", "--max-length", "64", "--predictions", pred.toString());
        assertEquals(2, other.code(), other.err());
        assertTrue(other.err().contains("holds the answers of another run (max_length: 96 there, 64 now)"), other.err());
    }

    @Test
    void chatNeedsTheTemplatesTokens() throws IOException {
        Path plain = dir.resolve("no-chat-tokens");
        Files.createDirectories(plain);
        for (String f : List.of("config.json", "model.safetensors")) Files.copy(model.resolve(f), plain.resolve(f));
        var tokJson = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(model.resolve("tokenizer.json").toFile());
        var added = (com.fasterxml.jackson.databind.node.ArrayNode) tokJson.get("added_tokens");
        for (int i = added.size() - 1; i >= 0; i--) {
            if (added.get(i).get("content").asText().equals(Tokenizer.START_HEADER_ID)) added.remove(i);
        }
        Files.writeString(plain.resolve("tokenizer.json"), JSON.writeValueAsString(tokJson));
        CliTest.Result r = CliTest.run("", "eval", "longbench", "--model", plain.toString(), "--data", data.toString(), "--tasks", "lcc",
                "--max-length", "64", "--chat");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--chat: the tokenizer lacks the Llama-3 chat template's tokens") && r.err().contains("start_header_id"), r.err());
    }

    private static String[] concat(String[] a, String... b) {
        List<String> out = new ArrayList<>(List.of(a));
        out.addAll(List.of(b));
        return out.toArray(String[]::new);
    }

    @Test
    void badInputIsOneLineAndExitTwo() throws IOException {
        Path bad = dir.resolve("bad");
        Files.createDirectories(bad);
        Files.writeString(bad.resolve("narrativeqa.jsonl"), "{\"input\": \"q\", \"context\": \"c\", \"answers\": [\"a\"]}\n{not json\n");
        Files.writeString(bad.resolve("qasper.jsonl"), "{\"input\": \"q\", \"context\": \"c\", \"answers\": \"a\"}\n");
        Files.writeString(bad.resolve("trec.jsonl"), "{\"input\": \"q\", \"context\": \"c\", \"answers\": [\"a\"], \"all_classes\": null}\n");
        Files.writeString(bad.resolve("hotpotqa.jsonl"), "{\"input\": \"q\", \"context\": \"c\", \"answers\": [\"a\"], \"dataset\": \"musique\"}\n");
        Files.writeString(bad.resolve("musique.jsonl"), "{\"context\": \"c\", \"answers\": [\"a\"]}\n");
        Files.writeString(bad.resolve("lcc.jsonl"), "\n\n");
        Files.writeString(bad.resolve("lcc_e.jsonl"), "{\"input\": \"\", \"context\": \"c\", \"answers\": [\"a\"], \"dataset\": \"lcc_e\"}\n");
        Files.writeString(bad.resolve("passage_retrieval_en.jsonl"), "{\"input\": \"q\", \"context\": \"c\", \"answers\": [\"the second\"]}\n");
        Files.writeString(bad.resolve("qmsum.jsonl"), "{\"input\": \"q\", \"context\": \"c\", \"answers\": [\"a\"], \"_id\": \"x\"}\n"
                + "{\"input\": \"q\", \"context\": \"c\", \"answers\": [\"a\"], \"_id\": \"x\"}\n");
        String m = model.toString(), d = bad.toString();
        Map<String[], String> cases = new LinkedHashMap<>();
        cases.put(new String[] {"--tasks", "nosuch"}, "--tasks: unknown task \"nosuch\"");
        cases.put(new String[] {"--tasks", "narrativeqa_e"}, "--tasks: unknown task \"narrativeqa_e\"");
        cases.put(new String[] {"--tasks", "lcc_e"}, "lcc_e.jsonl:1: \"length\" must be a whole number >= 0");
        cases.put(new String[] {"--tasks", "dureader"}, "jieba");
        cases.put(new String[] {"--tasks", "trec,trec"}, "trec is given twice");
        cases.put(new String[] {"--tasks", "narrativeqa"}, "narrativeqa.jsonl:2: not valid JSON");
        cases.put(new String[] {"--tasks", "qasper"}, "qasper.jsonl:1: \"answers\" must be a list of strings");
        cases.put(new String[] {"--tasks", "trec"}, "trec.jsonl:1: trec classifies: \"all_classes\" must list the classes");
        cases.put(new String[] {"--tasks", "hotpotqa"}, "hotpotqa.jsonl:1: the record is from \"musique\", not hotpotqa");
        cases.put(new String[] {"--tasks", "musique"}, "musique.jsonl:1: \"input\" must be a string");
        cases.put(new String[] {"--tasks", "lcc"}, "lcc.jsonl: no records");
        cases.put(new String[] {"--tasks", "gov_report"}, "no gov_report.jsonl");
        cases.put(new String[] {"--tasks", "qmsum"}, "qmsum.jsonl:2: _id \"x\" is there twice");
        cases.put(new String[] {"--tasks", "passage_retrieval_en"}, "passage_retrieval_en.jsonl:1: the answer \"the second\" is not of the form \"Paragraph N\"");
        for (var e : cases.entrySet()) {
            List<String> args = new ArrayList<>(List.of("eval", "longbench", "--model", m, "--data", d, "--max-length", "64"));
            args.addAll(List.of(e.getKey()));
            CliTest.Result r = CliTest.run("", args.toArray(String[]::new));
            assertEquals(2, r.code(), String.join(" ", e.getKey()) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().contains(e.getValue()), r.err());
        }
        CliTest.Result noLength = CliTest.run("", "eval", "longbench", "--model", m, "--data", d, "--tasks", "lcc");
        assertEquals(2, noLength.code());
        assertTrue(noLength.err().contains("--max-length"), noLength.err());
        CliTest.Result small = CliTest.run("", "eval", "longbench", "--model", m, "--data", d, "--max-length", "1");
        assertEquals(2, small.code());
        assertTrue(small.err().contains("--max-length must be an integer in [2, "), small.err());
        CliTest.Result notFolder = CliTest.run("", "eval", "longbench", "--model", m, "--data", bad.resolve("lcc.jsonl").toString(), "--max-length", "64");
        assertEquals(2, notFolder.code());
        assertTrue(notFolder.err().contains("not a folder"), notFolder.err());
        CliTest.Result jsonIsFolder = CliTest.run("", "eval", "longbench", "--model", m, "--data", data.toString(), "--tasks", "lcc",
                "--max-length", "64", "--json", dir.toString());
        assertEquals(2, jsonIsFolder.code());
        assertTrue(jsonIsFolder.err().contains("--json") && jsonIsFolder.err().contains("is a folder"), jsonIsFolder.err());
    }
}
