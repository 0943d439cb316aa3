package dev.tenfold.llama;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The fields of a JSON object that a file holds (config.json, adapter_config.json), read with
 * their kind and range checked where they enter: a number field must be a JSON number, finite and
 * in its {@link Range}; an integer field an integer in its bounds; a flag true or false. Jackson's
 * own accessors would turn {@code "abc"} into a default and 1e400 into Infinity. Errors name the
 * field (with the path of a nested object, e.g. {@code rope_parameters.factor}), the allowed range
 * and what was there; the caller adds the file.
 */
public final class JsonFields {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final JsonNode node;
    private final String prefix;

    JsonFields(JsonNode node, String prefix) {
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException((prefix.isEmpty() ? "the file" : prefix.substring(0, prefix.length() - 1))
                    + " must be a JSON object, got " + abbreviate(node));
        }
        this.node = node;
        this.prefix = prefix;
    }

    /** The JSON object in {@code file}; not valid JSON or not an object is an error naming the file. */
    public static JsonFields read(Path file) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(file));
        } catch (JacksonException e) {
            throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw new IllegalArgumentException(file + ": not a JSON object");
        return new JsonFields(root, "");
    }

    /** The JSON object in {@code json} (a flag's value, a test's config). */
    public static JsonFields parse(String json) {
        return parseObject(json, "");
    }

    /** As {@link #parse}, the fields named with {@code prefix} ("rope_scaling.") in errors. */
    public static JsonFields parseObject(String json, String prefix) {
        try {
            return new JsonFields(JSON.readTree(json), prefix);
        } catch (JacksonException e) {
            throw new IllegalArgumentException((prefix.isEmpty() ? "" : prefix.substring(0, prefix.length() - 1) + ": ")
                    + "not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** The field's name as errors give it (with the nested object's path). */
    public String name(String field) { return prefix + field; }

    /** Whether the field is present and not null (a null field counts as absent). */
    public boolean has(String field) { return node.hasNonNull(field); }

    /** The field names, in file order. */
    public Set<String> names() {
        Set<String> names = new LinkedHashSet<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }

    /** A nested object as plain Java values (maps, lists, strings, numbers, booleans), or null when absent or null. */
    @SuppressWarnings("unchecked")
    Map<String, Object> objectOrNull(String field) {
        if (!has(field)) return null;
        if (!node.get(field).isObject()) throw new IllegalArgumentException(name(field) + " must be a JSON object, got " + show(field));
        return JSON.convertValue(node.get(field), Map.class);
    }

    /** A required number in range. */
    public double number(String field, Range range) {
        Double v = numberOrNull(field, range);
        if (v == null) throw missing(field);
        return v;
    }

    /** A number in range, or {@code dflt} when absent or null. */
    public double number(String field, Range range, double dflt) {
        Double v = numberOrNull(field, range);
        return v == null ? dflt : v;
    }

    /** A number in range, or null when absent or null. */
    public Double numberOrNull(String field, Range range) {
        if (!has(field)) return null;
        return number(node.get(field), name(field), range);
    }

    /** A required integer in [min, max]. */
    public long integer(String field, long min, long max) {
        if (!has(field)) throw missing(field);
        return integer(node.get(field), name(field), min, max);
    }

    /** An integer in [min, max], or {@code dflt} when absent or null. */
    public long integer(String field, long min, long max, long dflt) {
        return has(field) ? integer(node.get(field), name(field), min, max) : dflt;
    }

    /** An integer in [min, max], or null when absent or null. */
    public Long integerOrNull(String field, long min, long max) {
        return has(field) ? integer(node.get(field), name(field), min, max) : null;
    }

    /** An integer, or a list of them, each in [min, max]; empty when absent or null. */
    public List<Long> integers(String field, long min, long max) {
        List<Long> out = new ArrayList<>();
        if (!has(field)) return out;
        JsonNode v = node.get(field);
        if (!v.isArray()) {
            if (!v.isNumber()) throw new IllegalArgumentException(name(field) + " must be an integer or a list of integers, got " + abbreviate(v));
            out.add(integer(v, name(field), min, max));
            return out;
        }
        for (int i = 0; i < v.size(); i++) out.add(integer(v.get(i), name(field) + "[" + i + "]", min, max));
        return out;
    }

    /** A list of numbers, each in range. */
    public double[] numbers(String field, Range range) {
        if (!has(field)) throw missing(field);
        JsonNode v = node.get(field);
        if (!v.isArray()) throw new IllegalArgumentException(name(field) + " must be a list of numbers, got " + abbreviate(v));
        double[] out = new double[v.size()];
        for (int i = 0; i < out.length; i++) out[i] = number(v.get(i), name(field) + "[" + i + "]", range);
        return out;
    }

    /** A string, or {@code dflt} when absent or null. */
    public String text(String field, String dflt) {
        if (!has(field)) return dflt;
        JsonNode v = node.get(field);
        if (!v.isTextual()) throw new IllegalArgumentException(name(field) + " must be a string, got " + abbreviate(v));
        return v.textValue();
    }

    /** A list of strings; empty when absent or null. */
    public List<String> texts(String field) {
        List<String> out = new ArrayList<>();
        if (!has(field)) return out;
        JsonNode v = node.get(field);
        if (!v.isArray()) throw new IllegalArgumentException(name(field) + " must be a list of strings, got " + abbreviate(v));
        for (int i = 0; i < v.size(); i++) {
            if (!v.get(i).isTextual()) {
                throw new IllegalArgumentException(name(field) + "[" + i + "] must be a string, got " + abbreviate(v.get(i)));
            }
            out.add(v.get(i).textValue());
        }
        return out;
    }

    /** true or false, or {@code dflt} when absent or null. */
    public boolean bool(String field, boolean dflt) {
        if (!has(field)) return dflt;
        JsonNode v = node.get(field);
        if (!v.isBoolean()) throw new IllegalArgumentException(name(field) + " must be true or false, got " + abbreviate(v));
        return v.booleanValue();
    }

    /** A nested object (its errors name {@code field.x}), or null when absent or null. */
    public JsonFields object(String field) {
        if (!has(field)) return null;
        JsonNode v = node.get(field);
        if (!v.isObject()) throw new IllegalArgumentException(name(field) + " must be a JSON object or null, got " + abbreviate(v));
        return new JsonFields(v, name(field) + ".");
    }

    /** Whether the field holds a string. */
    public boolean isText(String field) { return has(field) && node.get(field).isTextual(); }

    /** Whether the field holds a JSON object. */
    public boolean isObject(String field) { return has(field) && node.get(field).isObject(); }

    /** Whether the field is set: present and not null, false, an empty list or an empty object (peft's "unset" values). */
    public boolean isSet(String field) {
        if (!has(field)) return false;
        JsonNode v = node.get(field);
        return !(v.isContainerNode() && v.isEmpty()) && !(v.isBoolean() && !v.booleanValue());
    }

    /** The field's JSON text, shortened, for messages. */
    public String show(String field) { return abbreviate(node.get(field)); }

    private IllegalArgumentException missing(String field) {
        return new IllegalArgumentException("missing field " + name(field));
    }

    private static double number(JsonNode v, String name, Range range) {
        if (!v.isNumber()) throw new IllegalArgumentException(name + " must be a finite number " + range + ", got " + abbreviate(v));
        double d = v.doubleValue(); // a literal beyond the double range (1e400) reads as Infinity and is refused here
        if (!range.contains(d)) throw new IllegalArgumentException(name + " must be a finite number " + range + ", got " + abbreviate(v));
        return d;
    }

    private static long integer(JsonNode v, String name, long min, long max) {
        if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < min || v.longValue() > max) {
            throw new IllegalArgumentException(name + " must be an integer in [" + min + ", " + max + "], got " + abbreviate(v));
        }
        return v.longValue();
    }

    private static String abbreviate(JsonNode v) {
        if (v != null && v.isNumber() && !Double.isFinite(v.doubleValue())) return v.asText() + " (beyond the range of a double)";
        String s = String.valueOf(v);
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }
}
