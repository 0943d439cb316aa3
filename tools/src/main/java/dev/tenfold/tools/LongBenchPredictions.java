package dev.tenfold.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.tools.LongBenchCommand.Prediction;
import dev.tenfold.tools.LongBenchCommand.Sample;
import dev.tenfold.tools.LongBenchTasks.Task;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * The --predictions folder of eval longbench: each answer appended to NAME.jsonl as soon as it is
 * made, one line in LongBench's pred format ({"pred", "answers", "all_classes", "length"}, so that
 * LongBench's eval.py scores the folder too) with the record's _id and the prompt's size; and
 * run.json, what the answers were made with. A run given the same folder again takes the answers
 * already there (a long run killed at task 12 goes on from there) and refuses a folder of a run with
 * other settings.
 */
final class LongBenchPredictions {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** An answer read back: the text and the prompt it was made from. */
    record Stored(String pred, int promptTokens, boolean truncated) {}

    private final Path dir;

    private LongBenchPredictions(Path dir) { this.dir = dir; }

    /** Opens (or starts) the folder for a run described by {@code run}; checked before the model loads. */
    static LongBenchPredictions open(Path dir, ObjectNode run) throws IOException {
        try {
            Outputs.checkWritableFolder("--predictions", dir);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag(e.getMessage());
        }
        Path runFile = dir.resolve("run.json");
        if (Files.isRegularFile(runFile)) {
            JsonNode old;
            try {
                old = JSON.readTree(runFile.toFile());
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                throw new Flags.BadFlag("--predictions " + runFile + ": not valid JSON: " + e.getOriginalMessage());
            }
            for (Iterator<String> it = run.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                if (old == null || !run.get(f).equals(old.get(f))) {
                    throw new Flags.BadFlag("--predictions " + dir + " holds the answers of another run (" + f + ": "
                            + (old == null ? null : old.get(f)) + " there, " + run.get(f) + " now); give another folder");
                }
            }
        } else {
            try (var names = Files.exists(dir) ? Files.list(dir) : java.util.stream.Stream.<Path>empty()) {
                if (names.anyMatch(p -> p.getFileName().toString().endsWith(".jsonl"))) {
                    throw new Flags.BadFlag("--predictions " + dir + " has .jsonl files but no run.json: not answers of eval longbench; give another folder");
                }
            }
            Files.createDirectories(dir);
            AtomicFiles.write(runFile, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(run));
        }
        return new LongBenchPredictions(dir);
    }

    Path file(Task t) { return dir.resolve(t.name() + ".jsonl"); }

    /**
     * The answers already made for a task, by _id. A last line without its newline (a write cut by
     * a kill) is removed from the file; any other bad line is an error naming it.
     */
    Map<String, Stored> load(Task t) throws IOException {
        Path f = file(t);
        Map<String, Stored> out = new HashMap<>();
        if (!Files.exists(f)) return out;
        byte[] bytes = Files.readAllBytes(f);
        int end = bytes.length;
        while (end > 0 && bytes[end - 1] != '\n') end--;
        if (end < bytes.length) {
            try (var ch = java.nio.channels.FileChannel.open(f, StandardOpenOption.WRITE)) {
                ch.truncate(end);
            }
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes, 0, end)).toString();
        } catch (CharacterCodingException e) {
            throw new Flags.BadFlag("--predictions " + f + ": not UTF-8 text");
        }
        String[] lines = text.split("\n");
        for (int i = 0; i < lines.length; i++) {
            if (lines[i].isBlank()) continue;
            String at = "--predictions " + f + ":" + (i + 1) + ": ";
            JsonNode o;
            try {
                o = JSON.readTree(lines[i]);
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                throw new Flags.BadFlag(at + "not valid JSON: " + e.getOriginalMessage());
            }
            if (o == null || !o.path("_id").isTextual() || !o.path("pred").isTextual() || !o.path("prompt_tokens").canConvertToInt()
                    || !o.path("truncated").isBoolean()) {
                throw new Flags.BadFlag(at + "not an answer written by eval longbench (_id, pred, prompt_tokens, truncated)");
            }
            out.put(o.get("_id").asText(), new Stored(o.get("pred").asText(), o.get("prompt_tokens").asInt(), o.get("truncated").asBoolean()));
        }
        return out;
    }

    /** Appends one answer, a whole line at a time. */
    void append(Task t, Prediction p) throws IOException {
        Sample s = p.sample();
        ObjectNode o = JSON.createObjectNode().put("pred", p.text());
        ArrayNode answers = o.putArray("answers");
        s.answers().forEach(answers::add);
        if (s.allClasses().isEmpty()) {
            o.putNull("all_classes");
        } else {
            ArrayNode classes = o.putArray("all_classes");
            s.allClasses().forEach(classes::add);
        }
        if (s.length() != null) o.put("length", s.length());
        o.put("_id", s.id()).put("prompt_tokens", p.promptTokens()).put("truncated", p.truncated());
        Files.write(file(t), (JSON.writeValueAsString(o) + "\n").getBytes(StandardCharsets.UTF_8), StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
    }
}
