package dev.tenfold.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.llama.GenerationSettings;
import dev.tenfold.llama.Generator;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.tools.LongBenchTasks.Category;
import dev.tenfold.tools.LongBenchTasks.Task;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code tenfold eval longbench}: LongBench (Bai et al., 2023) as its scripts run it, the benchmark
 * of the ten-fold paper's headline table. Each record's prompt is the task's template filled in,
 * cut in the middle to --max-length tokens, wrapped in the chat template for chat models (except on
 * the tasks LongBench leaves raw); the greedy answer stops at end of text or end of turn; answers
 * are scored with LongBench's metrics and averaged per task, per category and over all tasks.
 */
@Command(name = "longbench", mixinStandardHelpOptions = true,
        description = "LongBench as the ten-fold paper reports it: LongBench's prompts, middle truncation to --max-length, greedy answers, "
                + "LongBench's metrics; prints the score per task, per category (Single-Doc QA, Multi-Doc QA, Summarization, Few-shot, "
                + "Synthetic, Code) and the average over the tasks. The data: LongBench's data.zip from its Hugging Face dataset "
                + "THUDM/LongBench, unpacked (data/NAME.jsonl).")
final class LongBenchCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Mixin ModelOptions model;

    @Option(names = "--data", required = true, paramLabel = "DIR", description = "The folder of LongBench's files, NAME.jsonl for each task.")
    Path data;

    @Option(names = "--tasks", split = ",", paramLabel = "NAME,NAME,...",
            description = "Tasks to run (default: the 16 English tasks, the paper's table). Also: lsht, passage_retrieval_zh, and LongBench-E's NAME_e "
                    + "(e.g. qasper_e, scored by length too); "
                    + "not: multifieldqa_zh, dureader, vcsum (scored on jieba's Chinese word segmentation).")
    List<String> tasks;

    @Option(names = "--max-length", required = true, paramLabel = "N",
            description = "Prompt tokens at most: a longer prompt keeps its first and last N/2 tokens (LongBench's middle truncation).")
    @Range(min = 2, max = Flags.MAX_TOKENS) int maxLength;

    @Option(names = "--chat", description = "A chat model: wrap prompts in the Llama-3 chat template "
            + "(not on trec, triviaqa, samsum, lsht, lcc and repobench-p, which LongBench leaves raw).")
    boolean chat;

    @Option(names = "--limit", paramLabel = "N", description = "Only the first N records of each task (a quick look; not comparable to published scores).")
    @Range(min = 1, max = Integer.MAX_VALUE) Integer limit;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the scores and every prediction as JSON to FILE.")
    Path jsonFile;

    @Option(names = "--predictions", paramLabel = "DIR",
            description = "Write each answer as it is made to DIR/NAME.jsonl, in LongBench's pred format (its eval.py scores them too); "
                    + "run again with the same folder, the answers already there are kept, not made again.")
    Path predictionsDir;

    /** One line of a LongBench file. */
    record Sample(String id, String input, String context, List<String> answers, List<String> allClasses, Integer length) {}

    /** One scored answer. */
    record Prediction(Sample sample, int promptTokens, boolean truncated, String text, double score) {}

    @Override
    public Integer call() throws IOException {
        List<Task> selected = selectedTasks(tasks);
        if (!Files.isDirectory(data)) throw new Flags.BadFlag("--data " + data + ": not a folder (unpack LongBench's data.zip and give its data folder)");
        if (jsonFile != null) {
            try {
                Outputs.checkWritableFile("--json", jsonFile);
            } catch (IllegalArgumentException e) {
                throw new Flags.BadFlag(e.getMessage());
            }
        }
        Map<Task, List<Sample>> samples = new java.util.LinkedHashMap<>();
        for (Task t : selected) {
            List<Sample> s = readSamples(data.resolve(t.name() + ".jsonl"), t);
            samples.put(t, limit == null || s.size() <= limit ? s : s.subList(0, limit));
        }
        int maxNew = selected.stream().mapToInt(Task::maxNewTokens).max().orElse(0);
        // the prompt after truncation is re-tokenized and may be wrapped in the chat template: a few tokens more than --max-length
        long longest = (long) maxLength + CHAT_AND_RETOKENIZE_SLACK;
        if (longest + maxNew > Flags.MAX_TOKENS) {
            throw new Flags.BadFlag("--max-length " + maxLength + " with answers of up to " + maxNew + " tokens passes " + Flags.MAX_TOKENS
                    + " positions, the most RoPE tells apart in F32");
        }
        LlamaConfig c = model.config();
        LongBenchPredictions store = predictionsDir == null ? null : LongBenchPredictions.open(predictionsDir, runSettings());
        new MemoryCheck("eval longbench with --max-length " + maxLength, model.onHost())
                .tensors("weights", model.weightBytes(c, false))
                .tensors("KV cache", MemoryCheck.kvCache(c, longest + maxNew))
                .tensors("activations", MemoryCheck.inferenceScratch(c, longest))
                .heap("prompt", MemoryCheck.sat(MemoryCheck.HEAP_PER_PROMPT_TOKEN, longest))
                .check();
        Tokenizer tok = model.tokenizer();
        if (chat) {
            try {
                new ChatTemplate(tok);
            } catch (IllegalArgumentException e) {
                throw new Flags.BadFlag("--chat: the tokenizer lacks the Llama-3 chat template's tokens (" + e.getMessage() + ")");
            }
        }
        boolean cleanUp = cleanUpTokenizationSpaces(model.model);
        // the answers a --predictions folder already has; the model loads only if some are missing
        Map<Task, Map<String, LongBenchPredictions.Stored>> done = new java.util.HashMap<>();
        boolean allDone = true;
        for (Task t : selected) {
            Map<String, LongBenchPredictions.Stored> d = store == null ? Map.of() : store.load(t);
            done.put(t, d);
            allDone &= samples.get(t).stream().allMatch(s -> d.containsKey(s.id()));
        }
        long t0 = System.nanoTime();
        Map<Task, List<Prediction>> results = new java.util.LinkedHashMap<>();
        ObjectNode report = JSON.createObjectNode();
        try (LlamaModel m = allDone ? null : model.load()) {
            for (Task t : selected) {
                List<Sample> list = samples.get(t);
                note(t.name() + ": " + list.size() + (list.size() == 1 ? " record" : " records"));
                GenerationSettings settings = generationSettings(tok, t);
                List<Prediction> out = new ArrayList<>();
                Map<String, LongBenchPredictions.Stored> answered = done.get(t);
                if (!answered.isEmpty()) note(t.name() + ": answers of " + answered.size() + " records read from " + store.file(t));
                long tt = System.nanoTime(), lastNote = tt;
                for (Sample s : list) {
                    LongBenchPredictions.Stored old = answered.get(s.id());
                    String text;
                    int promptTokens;
                    boolean truncated;
                    if (old != null) {
                        text = old.pred();
                        promptTokens = old.promptTokens();
                        truncated = old.truncated();
                    } else {
                        Prompt p = prompt(tok, t, s, maxLength, chat, cleanUp);
                        text = decode(tok, Generator.generate(m, p.ids(), settings), cleanUp);
                        promptTokens = p.ids().length;
                        truncated = p.truncated();
                    }
                    double score = t.score(text, s.answers(), s.allClasses());
                    Prediction pred = new Prediction(s, promptTokens, truncated, text, score);
                    out.add(pred);
                    if (store != null && old == null) store.append(t, pred);
                    long now = System.nanoTime();
                    if ((out.size() % 10 == 0 || now - lastNote > 30e9) && out.size() < list.size()) {
                        note(String.format(Locale.ROOT, "%s: %d/%d (%.1f s)", t.name(), out.size(), list.size(), (now - tt) / 1e9));
                        lastNote = now;
                    }
                }
                results.put(t, out);
                note(String.format(Locale.ROOT, "%s: %.2f in %.1f s", t.name(), taskScore(out), (System.nanoTime() - tt) / 1e9));
            }
            report.put("eval", "longbench").put("model", model.model.toString());
            if (model.adapter != null) report.put("adapter", model.adapter.toString());
            if (m != null) {
                report.put("rope_theta", m.config().ropeTheta());
                if (m.config().ropeScaling() != null) report.put("rope_scaling", String.valueOf(m.config().ropeScaling()));
            } else {
                note("every answer was in " + predictionsDir + "; the model was not loaded");
            }
        }
        report.put("max_length", maxLength).put("chat", chat);
        if (limit != null) report.put("limit", limit);
        fill(report, results);
        System.out.print(table(results));
        if (jsonFile != null) {
            Path parent = jsonFile.toAbsolutePath().getParent();
            if (parent != null) Files.createDirectories(parent);
            AtomicFiles.write(jsonFile, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
        }
        note(String.format(Locale.ROOT, "longbench in %.1f s%s", (System.nanoTime() - t0) / 1e9, jsonFile == null ? "" : "; " + jsonFile));
        return 0;
    }

    /**
     * Greedy, the task's answer length, stopping at the model's eos ids, at end of turn and end of
     * text; for samsum, as LongBench, at the newline token too (else models go on with the next
     * "Dialogue:") and never before the first token.
     */
    static GenerationSettings generationSettings(Tokenizer tok, Task t) {
        int[] stops = IntStream.concat(tok.findTokenId(Tokenizer.EOT_ID).stream(), tok.findTokenId(Tokenizer.END_OF_TEXT).stream()).toArray();
        GenerationSettings settings = GenerationSettings.greedy(t.maxNewTokens()).alsoStopAt(stops);
        if (t.dataset().equals("samsum")) {
            int[] nl = tok.encode("\n", false);
            settings = settings.alsoStopAt(nl[nl.length - 1]).minNewTokens(1);
        }
        return settings;
    }

    /** What the answers depend on besides the data: a --predictions folder holds the answers of one such run. */
    private ObjectNode runSettings() {
        ObjectNode o = JSON.createObjectNode();
        o.put("model", model.model.toAbsolutePath().normalize().toString());
        o.put("adapter", model.adapter == null ? null : model.adapter.toAbsolutePath().normalize().toString());
        o.put("rope_theta", model.ropeTheta);
        o.put("rope_scaling", model.ropeScaling);
        o.put("max_length", maxLength);
        o.put("chat", chat);
        return o;
    }

    /** Tokens the chat template adds around a prompt, and a margin for the re-tokenized cut. */
    static final int CHAT_AND_RETOKENIZE_SLACK = 64;

    private static void note(String s) { System.err.println("tenfold: " + s); }

    // ---------------------------------------------------------------------------------------------
    // Tasks and files

    /** The --tasks list (default: the English tasks), each known and scorable, no task twice. */
    static List<Task> selectedTasks(List<String> names) {
        List<String> wanted = names == null || names.isEmpty() ? LongBenchTasks.ENGLISH : names;
        LinkedHashSet<Task> out = new LinkedHashSet<>();
        for (String raw : wanted) {
            String n = raw.trim();
            if (LongBenchTasks.NEEDS_JIEBA.contains(n)) {
                throw new Flags.BadFlag("--tasks: " + n + " is scored on Chinese words cut by jieba's dictionary segmenter, which tenfold "
                        + "does not have (a different cut gives different scores); leave it out (the Chinese tasks lsht and "
                        + "passage_retrieval_zh are supported)");
            }
            Task t = LongBenchTasks.find(n);
            if (t == null) {
                throw new Flags.BadFlag("--tasks: unknown task \"" + n + "\"; LongBench's tasks here are " + String.join(", ", LongBenchTasks.TASKS.keySet())
                        + ", and LongBench-E's NAME_e for " + String.join(", ", LongBenchTasks.WITH_LONGBENCH_E));
            }
            if (!out.add(t)) throw new Flags.BadFlag("--tasks: " + n + " is given twice");
        }
        return new ArrayList<>(out);
    }

    private static String where(Path file, int line) { return "--data " + file + ":" + line + ": "; }

    /**
     * The records of one task's file as LongBench distributes them: one JSON object a line with
     * input, context, answers (a list of strings), all_classes (a list, or null where the task does
     * not classify), length, dataset (the task's name) and _id. A problem is one line naming the
     * file, the line and the field.
     */
    static List<Sample> readSamples(Path file, Task task) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new Flags.BadFlag("--data " + file.getParent() + ": no " + file.getFileName() + " (LongBench's data.zip holds data/"
                    + task.name() + ".jsonl)");
        }
        String text;
        try {
            text = Flags.readText("--data", file);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag(e.getMessage());
        }
        List<Sample> out = new ArrayList<>();
        java.util.Set<String> ids = new java.util.HashSet<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i];
            if (line.isBlank()) continue;
            String at = where(file, i + 1);
            JsonNode rec;
            try {
                rec = JSON.readTree(line);
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                throw new Flags.BadFlag(at + "not valid JSON: " + e.getOriginalMessage());
            }
            if (rec == null || !rec.isObject()) throw new Flags.BadFlag(at + "a record must be a JSON object");
            String input = string(rec, "input", at), context = string(rec, "context", at);
            List<String> answers = strings(rec.get("answers"), "answers", at);
            if (answers == null) throw new Flags.BadFlag(at + "\"answers\" must be a list of strings");
            List<String> classes = strings(rec.get("all_classes"), "all_classes", at);
            if (task.metric() == LongBenchTasks.Metric.CLASSIFICATION && (classes == null || classes.isEmpty())) {
                throw new Flags.BadFlag(at + task.name() + " classifies: \"all_classes\" must list the classes");
            }
            for (String a : answers) {
                try {
                    task.metric().score("", a, classes == null ? List.of() : classes); // an answer the metric cannot read fails here, not after the run
                } catch (IllegalArgumentException e) {
                    throw new Flags.BadFlag(at + e.getMessage());
                }
            }
            JsonNode dataset = rec.get("dataset");
            if (dataset != null && !dataset.isNull() && !dataset.asText().equals(task.name()) && !dataset.asText().equals(task.dataset())) {
                throw new Flags.BadFlag(at + "the record is from \"" + dataset.asText() + "\", not " + task.name());
            }
            JsonNode length = rec.get("length");
            Integer len = length != null && length.canConvertToInt() ? length.intValue() : null;
            if (task.isLongBenchE() && (len == null || len < 0)) {
                throw new Flags.BadFlag(at + "\"length\" must be a whole number >= 0 (LongBench-E scores by it)");
            }
            String id = rec.path("_id").isTextual() ? rec.get("_id").asText() : String.valueOf(i + 1);
            if (!ids.add(id)) throw new Flags.BadFlag(at + "_id \"" + id + "\" is there twice");
            out.add(new Sample(id, input, context, answers, classes == null ? List.of() : classes, len));
        }
        if (out.isEmpty()) throw new Flags.BadFlag("--data " + file + ": no records");
        return out;
    }

    private static String string(JsonNode rec, String field, String at) {
        JsonNode v = rec.get(field);
        if (v == null || !v.isTextual()) throw new Flags.BadFlag(at + "\"" + field + "\" must be a string");
        return v.asText();
    }

    /** A JSON list of strings; null for a missing or null field. */
    private static List<String> strings(JsonNode v, String field, String at) {
        if (v == null || v.isNull()) return null;
        if (!v.isArray()) throw new Flags.BadFlag(at + "\"" + field + "\" must be a list of strings");
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) throw new Flags.BadFlag(at + "\"" + field + "\" must be a list of strings, found " + e);
            out.add(e.asText());
        }
        return out;
    }

    // ---------------------------------------------------------------------------------------------
    // Prompts

    /** The ids the model is given, and whether the middle of the prompt was cut out. */
    record Prompt(int[] ids, boolean truncated) {}

    /**
     * As LongBench's pred.py: the prompt's tokens (BOS first, as the Hugging Face tokenizer adds it);
     * if more than maxLength, the text of the first and the last maxLength/2 of them (special tokens
     * left out) joined and tokenized again; then the chat template for a chat model where the task
     * takes it, else BOS and the text. (pred.py tokenizes the chat-formatted text with a BOS of its
     * own in front of the template's; here the template's BOS is the only one.)
     */
    static Prompt prompt(Tokenizer tok, Task task, Sample s, int maxLength, boolean chat, boolean cleanUp) {
        String text = task.prompt(s.context(), s.input());
        int[] ids = GenerateCommand.withBos(tok, tok.encode(text, false));
        boolean truncated = ids.length > maxLength;
        if (truncated) {
            int half = maxLength / 2;
            text = decode(tok, Arrays.copyOfRange(ids, 0, half), cleanUp) + decode(tok, Arrays.copyOfRange(ids, ids.length - half, ids.length), cleanUp);
        }
        if (chat && task.chat()) {
            return new Prompt(new ChatTemplate(tok).render(List.of(ChatTemplate.Message.user(text)), true).ids(), truncated);
        }
        return new Prompt(truncated ? GenerateCommand.withBos(tok, tok.encode(text, false)) : ids, truncated);
    }

    /** Text of ids without special tokens, as Hugging Face's decode(skip_special_tokens=True) gives it. */
    static String decode(Tokenizer tok, int[] ids, boolean cleanUp) {
        String s = tok.decode(ids, true);
        return cleanUp ? cleanUpTokenizationSpaces(s) : s;
    }

    static String decode(Tokenizer tok, List<Integer> ids, boolean cleanUp) {
        return decode(tok, ids.stream().mapToInt(Integer::intValue).toArray(), cleanUp);
    }

    /**
     * Whether the model's tokenizer_config.json asks decode to clean up spaces before punctuation
     * (Llama-3's does); a missing file or field is no.
     */
    static boolean cleanUpTokenizationSpaces(Path modelDir) throws IOException {
        Path f = modelDir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(f)) return false;
        JsonNode cfg;
        try {
            cfg = JSON.readTree(f.toFile());
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IllegalArgumentException(f + ": not valid JSON: " + e.getOriginalMessage());
        }
        return cfg != null && cfg.path("clean_up_tokenization_spaces").asBoolean(false);
    }

    /** Hugging Face's clean_up_tokenization: the space before . ? ! , and English contractions removed. */
    static String cleanUpTokenizationSpaces(String s) {
        return s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",").replace(" ' ", "'")
                .replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s").replace(" 've", "'ve").replace(" 're", "'re");
    }

    // ---------------------------------------------------------------------------------------------
    // Scores

    /** A task's score as eval.py writes it: 100 x the mean over its records, rounded to 2 decimals. */
    static double taskScore(List<Prediction> predictions) {
        double sum = 0;
        for (Prediction p : predictions) sum += p.score();
        return round2(100 * sum / predictions.size());
    }

    /** LongBench-E's length ranges (the record's "length": words, or characters for Chinese). */
    static final List<String> LENGTH_BUCKETS = List.of("0-4k", "4-8k", "8k+");

    /** LongBench-E's scores by length, as its eval.py --e: 100 x the mean in each range, rounded; NaN for a range with no record. */
    static Map<String, Double> lengthBucketScores(List<Prediction> predictions) {
        double[] sum = new double[3];
        int[] n = new int[3];
        for (Prediction p : predictions) {
            int len = p.sample().length();
            int b = len < 4000 ? 0 : len < 8000 ? 1 : 2;
            sum[b] += p.score();
            n[b]++;
        }
        Map<String, Double> out = new java.util.LinkedHashMap<>();
        for (int b = 0; b < 3; b++) out.put(LENGTH_BUCKETS.get(b), n[b] == 0 ? Double.NaN : round2(100 * sum[b] / n[b]));
        return out;
    }

    /** Python's round(x, 2): the nearest to the exact binary value, ties to even. */
    static double round2(double x) {
        return new BigDecimal(x).setScale(2, RoundingMode.HALF_EVEN).doubleValue();
    }

    /** The mean of the task scores in each category that has any (from the rounded task scores, as tables are made from result.json). */
    static Map<Category, Double> categoryScores(Map<Task, Double> taskScores) {
        Map<Category, double[]> sums = new EnumMap<>(Category.class);
        taskScores.forEach((t, s) -> {
            double[] a = sums.computeIfAbsent(t.category(), k -> new double[2]);
            a[0] += s;
            a[1]++;
        });
        Map<Category, Double> out = new EnumMap<>(Category.class);
        sums.forEach((k, a) -> out.put(k, round2(a[0] / a[1])));
        return out;
    }

    /** The mean over tasks, as the ten-fold paper averages its LongBench table (16 English tasks, not the 6 categories). */
    static double average(Map<Task, Double> taskScores) {
        return round2(taskScores.values().stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN));
    }

    private static Map<Task, Double> taskScores(Map<Task, List<Prediction>> results) {
        Map<Task, Double> out = new java.util.LinkedHashMap<>();
        results.forEach((t, p) -> out.put(t, taskScore(p)));
        return out;
    }

    /** The per-task lines, then the paper's row: the six categories and the average. */
    static String table(Map<Task, List<Prediction>> results) {
        Map<Task, Double> scores = taskScores(results);
        StringBuilder sb = new StringBuilder();
        boolean byLength = scores.keySet().stream().anyMatch(Task::isLongBenchE);
        sb.append(String.format(Locale.ROOT, "%-22s %-15s %-14s %7s %7s", "task", "category", "metric", "records", "score"));
        if (byLength) for (String b : LENGTH_BUCKETS) sb.append(String.format(Locale.ROOT, " %7s", b));
        sb.append(System.lineSeparator());
        scores.forEach((t, s) -> {
            sb.append(String.format(Locale.ROOT, "%-22s %-15s %-14s %7d %7.2f", t.name(), t.category().title, t.metric().label,
                    results.get(t).size(), s));
            if (t.isLongBenchE()) {
                for (double v : lengthBucketScores(results.get(t)).values()) {
                    sb.append(String.format(Locale.ROOT, " %7s", Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.2f", v)));
                }
            }
            sb.append(System.lineSeparator());
        });
        sb.append(System.lineSeparator());
        Map<Category, Double> cats = categoryScores(scores);
        StringBuilder head = new StringBuilder(), row = new StringBuilder();
        for (Category c : Category.values()) {
            int w = Math.max(c.title.length(), 6);
            head.append(String.format(Locale.ROOT, "%" + w + "s  ", c.title));
            Double v = cats.get(c);
            row.append(String.format(Locale.ROOT, "%" + w + "s  ", v == null ? "-" : String.format(Locale.ROOT, "%.2f", v)));
        }
        head.append(String.format(Locale.ROOT, "%6s", "Avg"));
        row.append(String.format(Locale.ROOT, "%6.2f", average(scores)));
        sb.append(head).append(System.lineSeparator()).append(row).append(System.lineSeparator());
        sb.append(String.format(Locale.ROOT, "(Avg: the mean over the %d tasks, as the ten-fold paper averages its table)%n", scores.size()));
        return sb.toString();
    }

    /** The report: per task its score and every prediction, per category, and the average. */
    static void fill(ObjectNode report, Map<Task, List<Prediction>> results) {
        Map<Task, Double> scores = taskScores(results);
        ArrayNode tasks = report.putArray("tasks");
        scores.forEach((t, s) -> {
            ObjectNode o = tasks.addObject().put("task", t.name()).put("category", t.category().title).put("metric", t.metric().label)
                    .put("records", results.get(t).size()).put("score", s);
            if (t.isLongBenchE()) {
                ObjectNode buckets = o.putObject("length_buckets");
                lengthBucketScores(results.get(t)).forEach((b, v) -> {
                    if (Double.isNaN(v)) buckets.putNull(b);
                    else buckets.put(b, v);
                });
            }
            ArrayNode preds = o.putArray("predictions");
            for (Prediction p : results.get(t)) {
                ObjectNode po = preds.addObject().put("_id", p.sample().id());
                if (p.sample().length() != null) po.put("length", p.sample().length());
                po.put("prompt_tokens", p.promptTokens()).put("truncated", p.truncated()).put("pred", p.text());
                ArrayNode answers = po.putArray("answers");
                p.sample().answers().forEach(answers::add);
                po.put("score", p.score());
            }
        });
        ObjectNode cats = report.putObject("categories");
        categoryScores(scores).forEach((c, v) -> cats.put(c.title, v));
        report.put("average", average(scores));
        report.put("tasks_averaged", scores.size());
    }
}
