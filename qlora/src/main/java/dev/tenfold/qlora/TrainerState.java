package dev.tenfold.qlora;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * trainer_state.json: the step a checkpoint holds and what its run was started with, so that a
 * resume can check that it continues the same run: the settings that shape the updates, the
 * model's RoPE base, frozen weight format and LoRA scales and dropouts, SHA-256 hashes of the
 * training data and of the batch plan, and the trainable parameters' names and shapes. A file read
 * back is checked field by field (types and ranges); anything wrong is named with the file.
 */
record TrainerState(int step, int totalSteps, int stepsPerEpoch, TrainingSettings settings, double ropeTheta,
                    List<String> frozenWeights, List<Float> loraScales, List<Float> loraDropouts, int examples, String dataSha256,
                    String batchPlanSha256, Map<String, long[]> parameters) {

    static final String FILE = "trainer_state.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    TrainerState atStep(int newStep) {
        return new TrainerState(newStep, totalSteps, stepsPerEpoch, settings, ropeTheta, frozenWeights, loraScales, loraDropouts, examples,
                dataSha256, batchPlanSha256, parameters);
    }

    // ------------------------------------------------------------------ writing

    byte[] toJson() throws IOException {
        ObjectNode o = JSON.createObjectNode().put("step", step).put("total_steps", totalSteps).put("steps_per_epoch", stepsPerEpoch);
        TrainingSettings s = settings;
        ObjectNode so = o.putObject("settings").put("lr", s.lr()).put("schedule", s.schedule().name().toLowerCase(Locale.ROOT))
                .put("warmup_steps", s.warmupSteps()).put("epochs", s.epochs());
        if (s.maxSteps() != null) so.put("max_steps", s.maxSteps());
        else so.putNull("max_steps");
        so.put("beta1", s.beta1()).put("beta2", s.beta2()).put("eps", s.eps()).put("weight_decay", s.weightDecay())
                .put("max_grad_norm", s.maxGradNorm()).put("seed", s.seed()).put("packing", s.packTokens());
        ObjectNode mo = o.putObject("model").put("rope_theta", ropeTheta);
        frozenWeights.forEach(mo.putArray("frozen_weights")::add);
        loraScales.forEach(mo.putArray("lora_scale")::add);
        loraDropouts.forEach(mo.putArray("lora_dropout")::add);
        o.putObject("data").put("examples", examples).put("sha256", dataSha256).put("batch_plan_sha256", batchPlanSha256);
        ObjectNode po = o.putObject("parameters");
        parameters.forEach((name, shape) -> {
            ArrayNode a = po.putArray(name);
            for (long d : shape) a.add(d);
        });
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(o);
    }

    // ------------------------------------------------------------------ reading

    /**
     * Reads and checks {@code file}; a file that is not JSON, lacks a field, has one of the wrong
     * type or out of range gets an IllegalArgumentException naming the file and the field.
     */
    static TrainerState read(Path file) throws IOException {
        JsonNode o;
        try {
            o = JSON.readTree(Files.readAllBytes(file));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": missing (an incomplete checkpoint?)");
        } catch (JacksonException e) {
            throw corrupt(file, "not valid JSON (" + e.getOriginalMessage() + ")");
        }
        try {
            if (o == null || !o.isObject()) throw new IllegalArgumentException("not a JSON object");
            int total = intField(o, "total_steps", 1, Integer.MAX_VALUE);
            int perEpoch = intField(o, "steps_per_epoch", 1, Integer.MAX_VALUE);
            int step = intField(o, "step", 1, total);
            JsonNode so = object(o, "settings");
            TrainingSettings s;
            try {
                s = TrainingSettings.defaults().lr(number(so, "settings.lr")).schedule(schedule(so))
                        .warmupSteps(intField(so, "settings.warmup_steps", 0, Integer.MAX_VALUE))
                        .epochs(intField(so, "settings.epochs", 1, Integer.MAX_VALUE))
                        .maxSteps(so.path("max_steps").isNull() ? null : intField(so, "settings.max_steps", 1, Integer.MAX_VALUE))
                        .beta1(floatField(so, "settings.beta1")).beta2(floatField(so, "settings.beta2")).eps(floatField(so, "settings.eps"))
                        .weightDecay(floatField(so, "settings.weight_decay")).maxGradNorm(number(so, "settings.max_grad_norm"))
                        .seed(longField(so, "settings.seed"))
                        .packing(so.has("packing") ? intField(so, "settings.packing", 0, Integer.MAX_VALUE) : 0); // absent before packing existed
            } catch (InvalidSettingException e) {
                // named as this file names it: warmupSteps is settings.warmup_steps
                String key = e.setting().replaceAll("([A-Z])", "_$1").toLowerCase(Locale.ROOT);
                throw new IllegalArgumentException("settings." + key + e.getMessage().substring(e.setting().length()));
            }
            JsonNode mo = object(o, "model");
            double theta = number(mo, "model.rope_theta");
            if (!(theta > 0 && Double.isFinite(theta))) throw new IllegalArgumentException("model.rope_theta must be a finite number > 0, got " + theta);
            List<String> frozen = new ArrayList<>();
            for (JsonNode n : array(mo, "model.frozen_weights")) {
                if (!n.isTextual()) throw new IllegalArgumentException("model.frozen_weights must hold strings, got " + n);
                frozen.add(n.asText());
            }
            JsonNode data = object(o, "data");
            int examples = intField(data, "data.examples", 1, Integer.MAX_VALUE);
            Map<String, long[]> params = new LinkedHashMap<>();
            JsonNode po = object(o, "parameters");
            if (po.isEmpty()) throw new IllegalArgumentException("parameters is empty");
            for (Map.Entry<String, JsonNode> e : po.properties()) {
                JsonNode a = e.getValue();
                long[] shape = new long[a.size()];
                if (!a.isArray()) shape = null;
                for (int i = 0; shape != null && i < shape.length; i++) {
                    if (!a.get(i).isIntegralNumber() || !a.get(i).canConvertToLong() || a.get(i).asLong() < 0) shape = null;
                    else shape[i] = a.get(i).asLong();
                }
                if (shape == null) throw new IllegalArgumentException("parameters." + e.getKey() + " must be a shape (an array of sizes), got " + a);
                params.put(e.getKey(), shape);
            }
            return new TrainerState(step, total, perEpoch, s, theta, frozen, floats(mo, "model.lora_scale"), floats(mo, "model.lora_dropout"),
                    examples, sha256(data, "data.sha256"), sha256(data, "data.batch_plan_sha256"), params);
        } catch (IllegalArgumentException e) {
            throw corrupt(file, e.getMessage());
        }
    }

    private static IllegalArgumentException corrupt(Path file, String what) {
        return new IllegalArgumentException(file + ": corrupt trainer state: " + what);
    }

    /** The field {@code name} ("settings.lr": the lr of the object {@code o}, itself the file's "settings"). */
    private static JsonNode field(JsonNode o, String name) {
        JsonNode n = o.get(name.substring(name.lastIndexOf('.') + 1));
        if (n == null) throw new IllegalArgumentException("missing field " + name);
        return n;
    }

    private static JsonNode object(JsonNode o, String name) {
        JsonNode n = field(o, name);
        if (!n.isObject()) throw new IllegalArgumentException(name + " must be an object, got " + n);
        return n;
    }

    private static JsonNode array(JsonNode o, String name) {
        JsonNode n = field(o, name);
        if (!n.isArray()) throw new IllegalArgumentException(name + " must be an array, got " + n);
        return n;
    }

    private static int intField(JsonNode o, String name, int min, int max) {
        JsonNode n = field(o, name);
        if (!n.isIntegralNumber() || !n.canConvertToInt()) throw new IllegalArgumentException(name + " must be an integer, got " + n);
        int v = n.intValue();
        if (v < min || v > max) {
            throw new IllegalArgumentException(name + " must be in [" + min + ", " + (max == Integer.MAX_VALUE ? "2^31-1" : max) + "], got " + v);
        }
        return v;
    }

    private static long longField(JsonNode o, String name) {
        JsonNode n = field(o, name);
        if (!n.isIntegralNumber() || !n.canConvertToLong()) throw new IllegalArgumentException(name + " must be an integer, got " + n);
        return n.longValue();
    }

    private static double number(JsonNode o, String name) {
        JsonNode n = field(o, name);
        if (!n.isNumber()) throw new IllegalArgumentException(name + " must be a number, got " + n);
        return n.doubleValue();
    }

    /**
     * A float written by {@link #toJson} (its shortest decimal form, which a double holds exactly
     * enough to round-trip), read back bit-identical.
     */
    private static float floatField(JsonNode o, String name) {
        double d = number(o, name);
        return Double.isFinite(d) ? Float.parseFloat(Double.toString(d)) : (float) d;
    }

    private static List<Float> floats(JsonNode o, String name) {
        List<Float> out = new ArrayList<>();
        for (JsonNode n : array(o, name)) {
            if (!n.isNumber() || !Double.isFinite(n.doubleValue())) throw new IllegalArgumentException(name + " must hold finite numbers, got " + n);
            out.add(Float.parseFloat(Double.toString(n.doubleValue())));
        }
        return out;
    }

    private static LrSchedule.Kind schedule(JsonNode o) {
        JsonNode n = field(o, "settings.schedule");
        if (!n.isTextual()) throw new IllegalArgumentException("settings.schedule must be a string, got " + n);
        try {
            return LrSchedule.parse(n.asText());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("settings.schedule: " + e.getMessage());
        }
    }

    private static String sha256(JsonNode o, String name) {
        JsonNode n = field(o, name);
        if (!n.isTextual() || !n.asText().matches("[0-9a-f]{64}")) throw new IllegalArgumentException(name + " must be a SHA-256 in hex, got " + n);
        return n.asText();
    }

    // ------------------------------------------------------------------ comparing

    /**
     * What differs between the run that wrote this state and {@code run} (this run), one item per
     * difference ("lr: checkpoint 2.0E-4, this run 1.0E-4"); empty when resuming it is safe.
     * Settings that do not change the result (checkpoint frequency and count) are not compared.
     */
    List<String> differencesFrom(TrainerState run) {
        List<String> out = new ArrayList<>();
        TrainingSettings a = settings, b = run.settings;
        differ(out, "lr", a.lr(), b.lr());
        differ(out, "schedule", a.schedule().name().toLowerCase(Locale.ROOT), b.schedule().name().toLowerCase(Locale.ROOT));
        differ(out, "warmup_steps", a.warmupSteps(), b.warmupSteps());
        differ(out, "max_steps", a.maxSteps() == null ? "none" : a.maxSteps(), b.maxSteps() == null ? "none" : b.maxSteps());
        if (a.maxSteps() == null && b.maxSteps() == null) differ(out, "epochs", a.epochs(), b.epochs());
        differ(out, "total_steps", totalSteps, run.totalSteps);
        differ(out, "steps_per_epoch", stepsPerEpoch, run.stepsPerEpoch);
        differ(out, "beta1", a.beta1(), b.beta1());
        differ(out, "beta2", a.beta2(), b.beta2());
        differ(out, "eps", a.eps(), b.eps());
        differ(out, "weight_decay", a.weightDecay(), b.weightDecay());
        differ(out, "max_grad_norm", a.maxGradNorm(), b.maxGradNorm());
        differ(out, "seed", a.seed(), b.seed());
        differ(out, "packing", a.packTokens(), b.packTokens());
        differ(out, "rope_theta", ropeTheta, run.ropeTheta);
        differ(out, "frozen weights", frozenWeights, run.frozenWeights);
        differ(out, "LoRA scale", loraScales, run.loraScales);
        differ(out, "LoRA dropout", loraDropouts, run.loraDropouts);
        if (examples != run.examples || !dataSha256.equals(run.dataSha256)) {
            out.add("data: checkpoint " + examples + " examples (sha256 " + dataSha256.substring(0, 12) + "...), this run " + run.examples
                    + " (sha256 " + run.dataSha256.substring(0, 12) + "...)");
        } else if (!batchPlanSha256.equals(run.batchPlanSha256) && totalSteps == run.totalSteps && stepsPerEpoch == run.stepsPerEpoch) {
            out.add("batch plan: the same data batched or ordered differently (batch size, length grouping or seed)");
        }
        parameterDifferences(out, run.parameters);
        return out;
    }

    private static void differ(List<String> out, String what, Object checkpoint, Object thisRun) {
        if (!Objects.equals(checkpoint, thisRun)) out.add(what + ": checkpoint " + checkpoint + ", this run " + thisRun);
    }

    private void parameterDifferences(List<String> out, Map<String, long[]> run) {
        List<String> onlyCheckpoint = new ArrayList<>(), onlyRun = new ArrayList<>(), shapes = new ArrayList<>();
        for (Map.Entry<String, long[]> e : parameters.entrySet()) {
            long[] other = run.get(e.getKey());
            if (other == null) onlyCheckpoint.add(e.getKey());
            else if (!Arrays.equals(other, e.getValue())) {
                shapes.add(e.getKey() + " " + Arrays.toString(e.getValue()) + " vs " + Arrays.toString(other));
            }
        }
        for (String name : run.keySet()) if (!parameters.containsKey(name)) onlyRun.add(name);
        if (!onlyCheckpoint.isEmpty()) out.add("trainable parameters: the checkpoint has " + some(onlyCheckpoint) + " that this run lacks");
        if (!onlyRun.isEmpty()) out.add("trainable parameters: this run has " + some(onlyRun) + " that the checkpoint lacks");
        if (!shapes.isEmpty()) out.add("parameter shapes (checkpoint vs this run): " + some(shapes));
    }

    /** "3 (a, b, c)" or "40 (a, b, c, ...)". */
    private static String some(List<String> items) {
        return items.size() + " (" + String.join(", ", items.subList(0, Math.min(3, items.size()))) + (items.size() > 3 ? ", ..." : "") + ")";
    }

    // ------------------------------------------------------------------ hashes

    /** SHA-256 of the examples in order: each one's ids, targets and positions. */
    static String dataSha256(List<Trainer.Example> examples) {
        IntHasher h = new IntHasher();
        h.add(examples.size());
        for (Trainer.Example e : examples) {
            h.add(e.ids().length);
            h.add(e.ids());
            h.add(e.targets());
            h.add(e.positions() == null ? 0 : 1);
            if (e.positions() != null) h.add(e.positions());
        }
        return h.hex();
    }

    /** SHA-256 of the batches the run's steps take, in order. */
    static String batchPlanSha256(Trainer.BatchPlan plan, int stepsPerEpoch, int totalSteps) {
        IntHasher h = new IntHasher();
        for (int epoch = 0; (long) epoch * stepsPerEpoch < totalSteps; epoch++) {
            List<int[]> batches = plan.plan(epoch);
            int steps = (int) Math.min(stepsPerEpoch, totalSteps - (long) epoch * stepsPerEpoch);
            for (int i = 0; i < Math.min(steps, batches.size()); i++) {
                h.add(batches.get(i).length);
                h.add(batches.get(i));
            }
            h.add(-1 - batches.size()); // epoch separator, and a plan of another length hashes differently
        }
        return h.hex();
    }

    /** Feeds ints (little-endian) to SHA-256 through one buffer. */
    private static final class IntHasher {
        private final MessageDigest md;
        private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

        IntHasher() {
            try {
                md = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("this Java runtime has no SHA-256", e);
            }
        }

        void add(int v) {
            if (buf.remaining() < 4) flush();
            buf.putInt(v);
        }

        void add(int[] values) {
            for (int v : values) add(v);
        }

        private void flush() {
            md.update(buf.array(), 0, buf.position());
            buf.clear();
        }

        String hex() {
            flush();
            return HexFormat.of().formatHex(md.digest());
        }
    }
}
