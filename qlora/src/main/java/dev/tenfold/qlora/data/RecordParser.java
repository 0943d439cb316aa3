package dev.tenfold.qlora.data;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.ChatTemplate.Message;
import dev.tenfold.llama.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.tenfold.qlora.data.TrainingRecord.IGNORE;

/**
 * Turns one JSON line into a training record, or says why not. Stateless apart from its immutable
 * tokenizer and template, so worker threads share one instance.
 */
final class RecordParser {
    /** The three record shapes, for the report. */
    enum Kind { TEXT, CHAT, TOKENS }

    /** What became of one line. */
    sealed interface Outcome {}

    record Kept(TrainingRecord record, Kind kind, boolean truncated) implements Outcome {}

    /** A chat record longer than max_length (chat is never cut: a cut answer teaches a wrong stop). */
    record TooLong(Kind kind, int length) implements Outcome {}

    /** Nothing to learn from: every target is -100. */
    record NoLabels(Kind kind) implements Outcome {}

    record Bad(String reason) implements Outcome {}

    /**
     * A well-formed record that the tokenizer given cannot handle (none given, or one without the
     * special tokens its shape needs): not a bad line to skip but a reason the data cannot be used.
     */
    record Unusable(String reason) implements Outcome {}

    // Strict JSON: trailing garbage after the object and repeated keys are errors, not silently
    // ignored (a line with two "text" keys would otherwise train on whichever came last).
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    private static final String SHAPES =
            "expected {\"text\": ...}, {\"conversations\": [...]}, {\"messages\": [...]} or {\"input_ids\": [...]}";

    private final Tokenizer tokenizer;      // null: pre-tokenized records only
    private final ChatTemplate template;    // null: the tokenizer lacks the chat template's special tokens
    private final String noTemplate;        // why there is no template
    private final int bos;                  // -1 with noText: text records cannot be framed
    private final int eos;
    private final String noText;            // why text records cannot be used, or null
    private final int vocabSize;
    private final int maxLength;

    /**
     * What each record shape needs is looked up once, here, and asked for only by records of that
     * shape: input_ids need no tokenizer at all, text records the tokenizer and its
     * &lt;|begin_of_text|&gt; and &lt;|end_of_text|&gt;, chat records the chat template's special tokens.
     */
    RecordParser(Tokenizer tokenizer, int vocabSize, int maxLength) {
        this.tokenizer = tokenizer;
        this.vocabSize = vocabSize;
        this.maxLength = maxLength;
        ChatTemplate t = null;
        String whyNoTemplate = null, whyNoText = null;
        int b = -1, e = -1;
        if (tokenizer == null) {
            whyNoTemplate = whyNoText = "no tokenizer was given";
        } else {
            try {
                t = new ChatTemplate(tokenizer);
            } catch (IllegalArgumentException x) {
                whyNoTemplate = x.getMessage(); // "SOURCE: no token "<|start_header_id|>""
            }
            var bosId = tokenizer.findTokenId(Tokenizer.BEGIN_OF_TEXT);
            var eosId = tokenizer.findTokenId(Tokenizer.END_OF_TEXT);
            if (bosId.isEmpty() || eosId.isEmpty()) {
                whyNoText = tokenizer.source() + ": no token \"" + (bosId.isEmpty() ? Tokenizer.BEGIN_OF_TEXT : Tokenizer.END_OF_TEXT) + "\"";
            } else {
                b = bosId.getAsInt();
                e = eosId.getAsInt();
            }
        }
        this.template = t;
        this.noTemplate = whyNoTemplate;
        this.bos = b;
        this.eos = e;
        this.noText = whyNoText;
    }

    /** Thrown inside the parser for a bad line; caught in {@link #parse}. No stack trace: it is data. */
    private static final class BadLine extends RuntimeException {
        BadLine(String reason) {
            super(reason, null, false, false);
        }
    }

    Outcome parse(String line, String source) {
        try {
            return parseOrThrow(line, source);
        } catch (BadLine e) {
            return new Bad(e.getMessage());
        }
    }

    private Outcome parseOrThrow(String line, String source) {
        JsonNode root;
        try {
            root = JSON.readTree(line);
        } catch (JacksonException e) {
            throw new BadLine(jsonError(e));
        }
        if (root == null || !root.isObject()) throw new BadLine("not a JSON object; " + SHAPES);

        // Exactly one of the shape keys; other keys (ids, metadata) are the user's business.
        List<String> shapes = new ArrayList<>();
        for (String key : new String[] {"text", "conversations", "messages", "input_ids"}) {
            if (root.has(key)) shapes.add(key);
        }
        if (shapes.isEmpty()) {
            List<String> keys = new ArrayList<>();
            root.properties().forEach(e -> keys.add("\"" + e.getKey() + "\""));
            throw new BadLine("unknown record shape (keys " + (keys.isEmpty() ? "none" : String.join(", ", keys))
                    + "); " + SHAPES);
        }
        if (shapes.size() > 1) {
            throw new BadLine("has both \"" + shapes.get(0) + "\" and \"" + shapes.get(1)
                    + "\"; a record is one kind");
        }
        if (root.has("labels") && !shapes.get(0).equals("input_ids")) {
            throw new BadLine("\"labels\" goes only with \"input_ids\"");
        }
        return switch (shapes.get(0)) {
            case "text" -> text(root.get("text"), source);
            case "input_ids" -> tokens(root.get("input_ids"), root.get("labels"), source);
            default -> chat(root.get(shapes.get(0)), shapes.get(0), source);
        };
    }

    /** Plain LM: BOS + text + EOS, every token labelled; cut to max_length. */
    private Outcome text(JsonNode node, String source) {
        if (!node.isTextual()) throw new BadLine("\"text\" is " + describe(node) + ", not a string");
        if (noText != null) return new Unusable("a \"text\" record is tokenized and framed by <|begin_of_text|> and <|end_of_text|>, but " + noText);
        // Special tokens written in the text stay text (a web page that quotes "<|eot_id|>" must not
        // end a document), as the chat template does for message content.
        int[] body = tokenizer.encode(node.asText(), false);
        int n = body.length + 2;
        boolean truncated = n > maxLength;
        int[] ids = new int[Math.min(n, maxLength)];
        ids[0] = bos;
        System.arraycopy(body, 0, ids, 1, Math.min(body.length, ids.length - 1));
        if (!truncated) ids[n - 1] = eos;
        // labels == ids: one array serves both (halves the memory of long documents).
        return keep(new TrainingRecord(ids, ids, source), Kind.TEXT, truncated);
    }

    /** Llama-3 chat template; loss on assistant content and its <|eot_id|>; too long: dropped. */
    private Outcome chat(JsonNode node, String key, String source) {
        if (!node.isArray()) throw new BadLine("\"" + key + "\" is " + describe(node) + ", not an array of messages");
        if (node.isEmpty()) throw new BadLine("\"" + key + "\" is empty");
        List<Message> messages = new ArrayList<>(node.size());
        for (int i = 0; i < node.size(); i++) {
            JsonNode m = node.get(i);
            String at = key + "[" + i + "]";
            if (!m.isObject()) throw new BadLine(at + " is " + describe(m) + ", not an object {\"role\", \"content\"}");
            if (!m.has("role") && m.has("from")) {
                throw new BadLine(at + " has \"from\"/\"value\" (ShareGPT style); write {\"role\": ..., \"content\": ...}");
            }
            JsonNode role = m.get("role");
            JsonNode content = m.get("content");
            if (role == null) throw new BadLine(at + " has no \"role\"");
            if (!role.isTextual()) throw new BadLine(at + ".role is " + describe(role) + ", not a string");
            String r = role.asText();
            if (!r.equals("system") && !r.equals("user") && !r.equals("assistant")) {
                throw new BadLine(at + ".role \"" + r + "\" is not one of system, user, assistant");
            }
            if (content == null) throw new BadLine(at + " has no \"content\"");
            if (!content.isTextual()) throw new BadLine(at + ".content is " + describe(content) + ", not a string");
            messages.add(new Message(r, content.asText()));
        }
        if (template == null) return new Unusable("a \"" + key + "\" record needs the Llama-3 chat template's special tokens, but " + noTemplate);
        ChatTemplate.Rendered rendered = template.render(messages, false);
        if (rendered.length() > maxLength) return new TooLong(Kind.CHAT, rendered.length());
        return keep(new TrainingRecord(rendered.ids(), rendered.labels(), source), Kind.CHAT, false);
    }

    /** Pre-tokenized: ids (and labels, default the ids) as given, checked; cut to max_length. */
    private Outcome tokens(JsonNode idsNode, JsonNode labelsNode, String source) {
        int[] ids = intArray(idsNode, "input_ids", false);
        if (ids.length == 0) throw new BadLine("\"input_ids\" is empty");
        int[] labels = ids;
        if (labelsNode != null && !labelsNode.isNull()) {
            labels = intArray(labelsNode, "labels", true);
            if (labels.length != ids.length) {
                throw new BadLine("\"labels\" has " + labels.length + " entries but \"input_ids\" has " + ids.length);
            }
        }
        boolean truncated = ids.length > maxLength;
        if (truncated) {
            boolean same = labels == ids;
            ids = Arrays.copyOf(ids, maxLength);
            labels = same ? ids : Arrays.copyOf(labels, maxLength);
        }
        return keep(new TrainingRecord(ids, labels, source), Kind.TOKENS, truncated);
    }

    private int[] intArray(JsonNode node, String key, boolean ignoreAllowed) {
        if (!node.isArray()) throw new BadLine("\"" + key + "\" is " + describe(node) + ", not an array of token ids");
        int[] out = new int[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode e = node.get(i);
            if (!e.isIntegralNumber() || !e.canConvertToInt()) {
                throw new BadLine(key + "[" + i + "] is " + describe(e) + ", not an integer token id");
            }
            int v = e.intValue();
            if (!(ignoreAllowed && v == IGNORE) && (v < 0 || v >= vocabSize)) {
                throw new BadLine(key + "[" + i + "] = " + v + " is not a token id (0.." + (vocabSize - 1) + ")"
                        + (ignoreAllowed ? " or " + IGNORE : ""));
            }
            out[i] = v;
        }
        return out;
    }

    private static Outcome keep(TrainingRecord r, Kind kind, boolean truncated) {
        // labels[0] is never a target, so "no labels" means no target, not no label.
        return r.targetCount() == 0 ? new NoLabels(kind) : new Kept(r, kind, truncated);
    }

    /** Jackson's message without its source dump, with the column (the line is ours to name). */
    private static String jsonError(JacksonException e) {
        String m = e.getOriginalMessage();
        int cut = m.indexOf(" (start marker at");
        if (cut >= 0) m = m.substring(0, cut);
        var where = e.getLocation();
        return "not valid JSON" + (where != null && where.getColumnNr() > 0 ? " at column " + where.getColumnNr() : "")
                + ": " + m;
    }

    /** A short description of a JSON value for messages: its type and, if short, itself. */
    private static String describe(JsonNode n) {
        String type = switch (n.getNodeType()) {
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            default -> n.getNodeType().toString().toLowerCase();
        };
        if (n.isContainerNode() || n.isNull()) return type;
        String text = n.toString();
        return text.length() <= 40 ? type + " " + text : type;
    }
}
