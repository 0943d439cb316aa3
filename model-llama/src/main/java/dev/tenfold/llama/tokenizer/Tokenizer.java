package dev.tenfold.llama.tokenizer;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A byte-level BPE tokenizer read from a Hugging Face tokenizer.json (the Llama-3 kind).
 *
 * <p>Encoding: added tokens are cut out first (special ones only when asked for); each remaining
 * span is split into pre-tokens by the file's regex (Llama-3: Split, Isolated); each pre-token's
 * UTF-8 bytes become byte-alphabet symbols, and BPE joins adjacent pairs, lowest merge rank first.
 * With ignore_merges, a pre-token that is itself in the vocab is emitted whole.
 *
 * <p>No BOS is added: Llama-3's post_processor would prepend &lt;|begin_of_text|&gt;, but what goes
 * around a text (BOS, chat headers, EOS) is the caller's choice (see {@link ChatTemplate}).
 *
 * <p>Instances are immutable apart from a bounded pre-token cache and are safe to share between
 * threads.
 */
public final class Tokenizer {
    public static final String BEGIN_OF_TEXT = "<|begin_of_text|>";
    public static final String END_OF_TEXT = "<|end_of_text|>";
    public static final String START_HEADER_ID = "<|start_header_id|>";
    public static final String END_HEADER_ID = "<|end_header_id|>";
    public static final String EOT_ID = "<|eot_id|>";

    /** The pre-tokenizer regex ByteLevel applies itself when use_regex is true (GPT-2's). */
    static final String GPT2_PATTERN =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    private static final ObjectMapper JSON = new ObjectMapper();

    // The cache holds the ids of recently seen pre-tokens: natural text repeats its words, so most
    // pre-tokens skip BPE. Bounded by dropping everything when full (cheap, and a real corpus
    // refills the hot words at once); long pre-tokens are rare and not worth keeping.
    private static final int CACHE_MAX_ENTRIES = 65_536;
    private static final int CACHE_MAX_PIECE_CHARS = 64;

    /** One added token as the file lists it. */
    record AddedToken(int id, String content, boolean special, boolean lstrip, boolean rstrip) {}

    /** One pre-tokenizer stage: optionally prepend a space, then split (Isolated) by a regex, if any. */
    private record PreStep(Pattern pattern, boolean prefixSpace) {}

    private final String source;
    private final Map<String, Integer> vocab;
    private final MergeTable merges;
    private final boolean ignoreMerges;
    private final PreStep[] preSteps;
    private final int[] byteIds;          // byte value -> id of its one-character token
    private final String[] idTokens;      // id -> token string (vocab form, or added-token content)
    private final byte[][] idBytes;       // id -> the bytes it decodes to
    private final boolean[] special;      // id -> is a special added token
    private final Map<String, Integer> addedIds;
    private final AddedMatcher allAdded;   // every added token; null if none
    private final AddedMatcher plainAdded; // the non-special ones only; null if none
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();
    private volatile boolean cacheEnabled = true;

    private Tokenizer(String source, Map<String, Integer> vocab, MergeTable merges, boolean ignoreMerges,
                      PreStep[] preSteps, List<AddedToken> added) {
        this.source = source;
        this.vocab = vocab;
        this.merges = merges;
        this.ignoreMerges = ignoreMerges;
        this.preSteps = preSteps;

        byteIds = new int[256];
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(String.valueOf(ByteLevel.BYTE_TO_CHAR[b]));
            if (id == null) {
                throw bad(source, String.format("model.vocab lacks the byte-level symbol '%c' for byte 0x%02X;"
                        + " not a byte-level BPE vocabulary", ByteLevel.BYTE_TO_CHAR[b], b));
            }
            byteIds[b] = id;
        }

        int maxId = -1;
        for (int id : vocab.values()) maxId = Math.max(maxId, id);
        for (AddedToken t : added) maxId = Math.max(maxId, t.id());
        idTokens = new String[maxId + 1];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            String previous = idTokens[e.getValue()];
            if (previous != null) {
                throw bad(source, "model.vocab gives id " + e.getValue() + " to both \"" + previous
                        + "\" and \"" + e.getKey() + "\"");
            }
            idTokens[e.getValue()] = e.getKey();
        }
        special = new boolean[maxId + 1];
        addedIds = new HashMap<>();
        AddedMatcher all = new AddedMatcher();
        AddedMatcher plain = new AddedMatcher();
        for (AddedToken t : added) {
            idTokens[t.id()] = t.content(); // an added token may repeat a vocab entry (GPT-2's <|endoftext|>)
            special[t.id()] = t.special();
            addedIds.put(t.content(), t.id());
            if (t.content().isEmpty()) continue; // matches nothing
            all.add(t);
            if (!t.special()) plain.add(t);
        }
        allAdded = all.isEmpty() ? null : all;
        plainAdded = plain.isEmpty() ? null : plain;
        idBytes = new byte[maxId + 1][];
        for (int id = 0; id <= maxId; id++) {
            if (idTokens[id] != null) idBytes[id] = ByteLevel.tokenBytes(idTokens[id]);
        }
    }

    // ------------------------------------------------------------------------------------------
    // Loading

    /** Reads a Hugging Face tokenizer.json; bad content is an IllegalArgumentException naming the file. */
    public static Tokenizer load(Path tokenizerJson) throws IOException {
        JsonNode root;
        try (InputStream in = Files.newInputStream(tokenizerJson)) {
            root = JSON.readTree(in);
        } catch (JacksonException e) {
            throw new IllegalArgumentException(tokenizerJson + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        return fromJson(root, tokenizerJson.toString());
    }

    /**
     * Builds a tokenizer from a tokenizer.json's text; {@code source} names it in error messages (a
     * path, or e.g. "tokenizer.json in model.zip").
     */
    public static Tokenizer fromJson(String json, String source) {
        try {
            return fromJson(JSON.readTree(json), source);
        } catch (JacksonException e) {
            throw new IllegalArgumentException(source + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** As {@link #fromJson(String, String)}, from an already-parsed tree. */
    static Tokenizer fromJson(JsonNode root, String source) {
        if (root == null || !root.isObject()) throw bad(source, "not a JSON object (a tokenizer.json is one)");

        JsonNode normalizer = root.get("normalizer");
        if (normalizer != null && !normalizer.isNull()) {
            throw bad(source, "normalizer " + describeType(normalizer) + " is not supported (Llama-3 has none)");
        }

        JsonNode model = root.get("model");
        if (model == null || model.isNull()) throw bad(source, "no \"model\" section; expected a byte-level BPE model");
        if (!model.isObject()) throw bad(source, "\"model\" is not an object");
        JsonNode type = model.get("type");
        if (type == null || !type.isTextual()) {
            throw bad(source, "model.type is missing; only byte-level BPE (\"BPE\") is supported");
        }
        if (!type.asText().equals("BPE")) {
            throw bad(source, "model.type is \"" + type.asText() + "\"; only byte-level BPE (\"BPE\") is supported");
        }
        JsonNode dropout = model.get("dropout");
        if (dropout != null && !dropout.isNull() && dropout.asDouble() > 0) {
            throw bad(source, "model.dropout " + dropout + " is not supported (BPE dropout is for training tokenizers)");
        }
        for (String affix : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
            JsonNode v = model.get(affix);
            if (v != null && !v.isNull() && !v.asText().isEmpty()) {
                throw bad(source, "model." + affix + " " + v + " is not supported by byte-level BPE");
            }
        }
        JsonNode ignore = model.get("ignore_merges");
        boolean ignoreMerges = ignore != null && ignore.asBoolean(false);

        Map<String, Integer> vocab = parseVocab(model.get("vocab"), source);
        MergeTable merges = parseMerges(model.get("merges"), vocab, source);
        PreStep[] preSteps = parsePreTokenizer(root.get("pre_tokenizer"), source);
        checkDecoder(root.get("decoder"), source);
        List<AddedToken> added = parseAddedTokens(root.get("added_tokens"), source);
        return new Tokenizer(source, vocab, merges, ignoreMerges, preSteps, added);
    }

    private static Map<String, Integer> parseVocab(JsonNode node, String source) {
        if (node == null || node.isNull()) throw bad(source, "model.vocab is missing");
        if (!node.isObject()) throw bad(source, "model.vocab is not an object of {token: id}");
        Map<String, Integer> vocab = new HashMap<>(node.size() * 2);
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            JsonNode id = e.getValue();
            if (!id.canConvertToInt() || !id.isIntegralNumber() || id.asInt() < 0) {
                throw bad(source, "model.vocab[\"" + e.getKey() + "\"] is " + id + ", not a non-negative integer id");
            }
            vocab.put(e.getKey(), id.asInt());
        }
        return vocab;
    }

    private static MergeTable parseMerges(JsonNode node, Map<String, Integer> vocab, String source) {
        if (node == null || node.isNull()) throw bad(source, "model.merges is missing");
        if (!node.isArray()) throw bad(source, "model.merges is not an array");
        MergeTable table = new MergeTable(node.size());
        for (int rank = 0; rank < node.size(); rank++) {
            JsonNode m = node.get(rank);
            String left;
            String right;
            // Two formats exist: "a b" (older files; byte-level tokens never contain a raw space) and
            // ["a", "b"] (tokenizers >= 0.20).
            if (m.isTextual()) {
                String s = m.asText();
                int sp = s.indexOf(' ');
                if (sp < 0 || s.indexOf(' ', sp + 1) >= 0) {
                    throw bad(source, "model.merges[" + rank + "] \"" + s + "\" is not two tokens separated by one space");
                }
                left = s.substring(0, sp);
                right = s.substring(sp + 1);
            } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
                left = m.get(0).asText();
                right = m.get(1).asText();
            } else {
                throw bad(source, "model.merges[" + rank + "] is " + m + "; expected \"a b\" or [\"a\", \"b\"]");
            }
            Integer l = vocab.get(left);
            Integer r = vocab.get(right);
            if (l == null || r == null) {
                throw bad(source, "model.merges[" + rank + "] (\"" + left + "\", \"" + right + "\") refers to \""
                        + (l == null ? left : right) + "\", which is not in model.vocab");
            }
            Integer joined = vocab.get(left + right);
            if (joined == null) {
                throw bad(source, "model.merges[" + rank + "] (\"" + left + "\", \"" + right + "\") produces \""
                        + left + right + "\", which is not in model.vocab");
            }
            table.put(l, r, rank, joined);
        }
        return table;
    }

    private static PreStep[] parsePreTokenizer(JsonNode node, String source) {
        String supported = "supported: a Sequence of Split (behavior Isolated) pre-tokenizers ending in ByteLevel,"
                + " or ByteLevel alone";
        if (node == null || node.isNull()) throw bad(source, "no pre_tokenizer; " + supported);
        List<JsonNode> parts = new ArrayList<>();
        if ("Sequence".equals(node.path("type").asText())) {
            JsonNode list = node.get("pretokenizers");
            if (list == null || !list.isArray()) throw bad(source, "pre_tokenizer Sequence has no pretokenizers array");
            list.forEach(parts::add);
        } else {
            parts.add(node);
        }
        List<PreStep> steps = new ArrayList<>();
        boolean byteLevel = false;
        for (JsonNode p : parts) {
            String type = p.path("type").asText("?");
            if (byteLevel) throw bad(source, "pre_tokenizer " + type + " after ByteLevel is not supported; " + supported);
            switch (type) {
                case "Split" -> {
                    String behavior = p.path("behavior").asText("?");
                    if (!behavior.equals("Isolated")) {
                        throw bad(source, "pre_tokenizer Split with behavior " + behavior + " is not supported; " + supported);
                    }
                    if (p.path("invert").asBoolean(false)) {
                        throw bad(source, "pre_tokenizer Split with invert=true is not supported; " + supported);
                    }
                    JsonNode pattern = p.path("pattern");
                    String regex;
                    if (pattern.path("Regex").isTextual()) regex = pattern.get("Regex").asText();
                    else if (pattern.path("String").isTextual()) regex = Pattern.quote(pattern.get("String").asText());
                    else throw bad(source, "pre_tokenizer Split has no pattern {\"Regex\": ...} or {\"String\": ...}");
                    steps.add(new PreStep(compile(regex, source), false));
                }
                case "ByteLevel" -> {
                    // Hugging Face defaults: add_prefix_space true, use_regex true.
                    boolean prefix = p.path("add_prefix_space").asBoolean(true);
                    boolean useRegex = p.path("use_regex").asBoolean(true);
                    steps.add(new PreStep(useRegex ? compile(GPT2_PATTERN, source) : null, prefix));
                    byteLevel = true;
                }
                default -> throw bad(source, "pre_tokenizer " + type + " is not supported; " + supported);
            }
        }
        if (!byteLevel) throw bad(source, "pre_tokenizer has no ByteLevel stage, so this is not byte-level BPE; " + supported);
        return steps.toArray(PreStep[]::new);
    }

    private static Pattern compile(String regex, String source) {
        try {
            // UNICODE_CHARACTER_CLASS makes \s, \w and (?i) Unicode-aware, as in the Rust regex engines
            // Hugging Face uses (without it \s would miss e.g. U+3000 and U+00A0).
            return Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (PatternSyntaxException e) {
            throw bad(source, "pre_tokenizer regex " + regex + " does not compile in java.util.regex: " + e.getDescription());
        }
    }

    private static void checkDecoder(JsonNode node, String source) {
        if (node == null || node.isNull() || !"ByteLevel".equals(node.path("type").asText())) {
            throw bad(source, "decoder is " + (node == null || node.isNull() ? "missing" : describeType(node))
                    + "; byte-level BPE needs a ByteLevel decoder");
        }
    }

    private static List<AddedToken> parseAddedTokens(JsonNode node, String source) {
        List<AddedToken> out = new ArrayList<>();
        if (node == null || node.isNull()) return out;
        if (!node.isArray()) throw bad(source, "added_tokens is not an array");
        for (int i = 0; i < node.size(); i++) {
            JsonNode t = node.get(i);
            JsonNode id = t.get("id");
            JsonNode content = t.get("content");
            if (id == null || !id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0
                    || content == null || !content.isTextual()) {
                throw bad(source, "added_tokens[" + i + "] needs an integer \"id\" and a string \"content\": " + t);
            }
            if (t.path("single_word").asBoolean(false)) {
                throw bad(source, "added_tokens[" + i + "] " + content + " has single_word=true, which is not supported");
            }
            out.add(new AddedToken(id.asInt(), content.asText(), t.path("special").asBoolean(false),
                    t.path("lstrip").asBoolean(false), t.path("rstrip").asBoolean(false)));
        }
        return out;
    }

    private static String describeType(JsonNode node) {
        JsonNode type = node.get("type");
        return type == null ? node.toString() : "\"" + type.asText() + "\"";
    }

    private static IllegalArgumentException bad(String source, String message) {
        return new IllegalArgumentException(source + ": " + message);
    }

    // ------------------------------------------------------------------------------------------
    // Encoding

    /**
     * Token ids of {@code text}, without BOS. With {@code allowSpecial}, special added tokens written
     * in the text (e.g. "&lt;|eot_id|&gt;") become their ids, the longest one where several start at
     * the same place; without it they are encoded as ordinary text, so that user content cannot
     * forge control tokens. Non-special added tokens are always recognised, as Hugging Face does.
     */
    public int[] encode(String text, boolean allowSpecial) {
        Objects.requireNonNull(text, "text");
        IntList out = new IntList(text.length() / 3 + 16);
        encodeInto(text, allowSpecial, out);
        return out.toArray();
    }

    /** Same as {@link #encode(String, boolean)} with special tokens treated as text. */
    public int[] encode(String text) {
        return encode(text, false);
    }

    void encodeInto(String text, boolean allowSpecial, IntList out) {
        AddedMatcher matcher = allowSpecial ? allAdded : plainAdded;
        if (matcher == null) {
            encodeOrdinary(text, out);
            return;
        }
        int n = text.length();
        int segmentStart = 0;
        int i = 0;
        while (i < n) {
            AddedToken t = matcher.longestAt(text, i);
            if (t == null) {
                i++;
                continue;
            }
            int start = i;
            int end = i + t.content().length();
            // lstrip/rstrip: the token swallows the whitespace beside it (Roberta's <mask> does).
            while (t.lstrip() && start > segmentStart && isWhiteSpace(text.codePointBefore(start))) {
                start -= Character.charCount(text.codePointBefore(start));
            }
            while (t.rstrip() && end < n && isWhiteSpace(text.codePointAt(end))) {
                end += Character.charCount(text.codePointAt(end));
            }
            encodeOrdinary(text.substring(segmentStart, start), out);
            out.add(t.id());
            segmentStart = end;
            i = end;
        }
        encodeOrdinary(text.substring(segmentStart), out);
    }

    /** Unicode White_Space, what Rust's char::is_whitespace tests (Java's isWhitespace differs). */
    private static boolean isWhiteSpace(int cp) {
        return Character.isSpaceChar(cp) || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85;
    }

    private void encodeOrdinary(String text, IntList out) {
        if (!text.isEmpty()) split(text, 0, piece -> encodePiece(piece, out));
    }

    /**
     * The pre-tokens of {@code text} (no added-token handling), as strings of the original text:
     * "Hello world!" gives ["Hello", " world", "!"]. Concatenated they give the text back (unless
     * ByteLevel's add_prefix_space inserted a space).
     */
    public List<String> preTokenize(String text) {
        List<String> out = new ArrayList<>();
        if (!text.isEmpty()) split(text, 0, out::add);
        return out;
    }

    private void split(String s, int step, Consumer<String> sink) {
        if (step == preSteps.length) {
            sink.accept(s);
            return;
        }
        PreStep st = preSteps[step];
        if (st.prefixSpace() && !s.startsWith(" ")) s = " " + s;
        if (st.pattern() == null) {
            split(s, step + 1, sink);
            return;
        }
        // Isolated: every match is a piece, and so is any text between matches.
        Matcher m = st.pattern().matcher(s);
        int last = 0;
        while (m.find()) {
            if (m.start() > last) split(s.substring(last, m.start()), step + 1, sink);
            if (m.end() > m.start()) split(s.substring(m.start(), m.end()), step + 1, sink);
            last = m.end();
        }
        if (last < s.length()) split(s.substring(last), step + 1, sink);
    }

    private void encodePiece(String piece, IntList out) {
        boolean cacheable = cacheEnabled && piece.length() <= CACHE_MAX_PIECE_CHARS;
        if (cacheable) {
            int[] hit = cache.get(piece);
            if (hit != null) {
                out.addAll(hit);
                return;
            }
        }
        int[] ids = bpe(piece);
        if (cacheable) {
            if (cache.size() >= CACHE_MAX_ENTRIES) cache.clear();
            cache.put(piece, ids);
        }
        out.addAll(ids);
    }

    /** BPE of one pre-token. */
    int[] bpe(String piece) {
        byte[] bytes = utf8(piece);
        int n = bytes.length;
        if (n == 1) return new int[] {byteIds[bytes[0] & 0xFF]};
        if (ignoreMerges) {
            char[] chars = new char[n];
            for (int i = 0; i < n; i++) chars[i] = ByteLevel.BYTE_TO_CHAR[bytes[i] & 0xFF];
            Integer whole = vocab.get(new String(chars));
            if (whole != null) return new int[] {whole};
        }
        int[] sym = new int[n];
        for (int i = 0; i < n; i++) sym[i] = byteIds[bytes[i] & 0xFF];
        return merge(sym);
    }

    /**
     * Applies merges to a symbol sequence until none applies, always the lowest-ranked pair first
     * and, among equal pairs, the leftmost. Symbols form a linked list (merging a pair keeps the left
     * slot and unlinks the right); candidate pairs wait in a min-heap keyed (rank, left position),
     * so a pre-token of n bytes costs O(n log n) even when it is long (a CJK line without spaces is
     * one pre-token). Heap entries made stale by a neighbouring merge are recognised on pop: the
     * pair now at that position no longer has that rank.
     */
    private int[] merge(int[] sym) {
        int n = sym.length;
        int[] next = new int[n];
        int[] prev = new int[n];
        for (int i = 0; i < n; i++) {
            next[i] = i + 1;
            prev[i] = i - 1;
        }
        long[] heap = new long[3 * n]; // n-1 initial pairs + at most 2 new pairs per merge (n-1 merges)
        int size = 0;
        for (int i = 0; i + 1 < n; i++) {
            int slot = merges.find(sym[i], sym[i + 1]);
            if (slot >= 0) size = heapPush(heap, size, entry(merges.rank(slot), i));
        }
        int live = n;
        while (size > 0) {
            long top = heap[0];
            size = heapPop(heap, size);
            int pos = (int) top;
            int rank = (int) (top >>> 32);
            if (sym[pos] < 0) continue;          // this symbol was merged into its left neighbour
            int right = next[pos];
            if (right >= n) continue;            // now the last symbol
            int slot = merges.find(sym[pos], sym[right]);
            if (slot < 0 || merges.rank(slot) != rank) continue; // stale: the pair here has changed
            sym[pos] = merges.mergedId(slot);
            sym[right] = -1;
            live--;
            int after = next[right];
            next[pos] = after;
            if (after < n) prev[after] = pos;
            int before = prev[pos];
            if (before >= 0) {
                int s = merges.find(sym[before], sym[pos]);
                if (s >= 0) size = heapPush(heap, size, entry(merges.rank(s), before));
            }
            if (after < n) {
                int s = merges.find(sym[pos], sym[after]);
                if (s >= 0) size = heapPush(heap, size, entry(merges.rank(s), pos));
            }
        }
        int[] out = new int[live];
        for (int i = 0, k = 0; i < n; i = next[i]) out[k++] = sym[i];
        return out;
    }

    /** Heap entries order by rank, then by position: one long compare. */
    private static long entry(int rank, int pos) {
        return ((long) rank << 32) | pos;
    }

    private static int heapPush(long[] h, int size, long v) {
        int i = size;
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (h[parent] <= v) break;
            h[i] = h[parent];
            i = parent;
        }
        h[i] = v;
        return size + 1;
    }

    private static int heapPop(long[] h, int size) {
        long v = h[--size];
        int i = 0;
        while (true) {
            int c = 2 * i + 1;
            if (c >= size) break;
            if (c + 1 < size && h[c + 1] < h[c]) c++;
            if (h[c] >= v) break;
            h[i] = h[c];
            i = c;
        }
        h[i] = v;
        return size;
    }

    /** UTF-8 of a Java string; a lone surrogate (not valid Unicode text) is encoded as U+FFFD. */
    private static byte[] utf8(String s) {
        byte[] b = new byte[s.length() * 3]; // 1-3 bytes per char; a surrogate pair is 4 bytes for 2 chars
        int n = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
            if (cp < 0x80) {
                b[n++] = (byte) cp;
            } else if (cp < 0x800) {
                b[n++] = (byte) (0xC0 | cp >> 6);
                b[n++] = (byte) (0x80 | cp & 0x3F);
            } else if (cp < 0x10000) {
                b[n++] = (byte) (0xE0 | cp >> 12);
                b[n++] = (byte) (0x80 | cp >> 6 & 0x3F);
                b[n++] = (byte) (0x80 | cp & 0x3F);
            } else {
                b[n++] = (byte) (0xF0 | cp >> 18);
                b[n++] = (byte) (0x80 | cp >> 12 & 0x3F);
                b[n++] = (byte) (0x80 | cp >> 6 & 0x3F);
                b[n++] = (byte) (0x80 | cp & 0x3F);
            }
        }
        return n == b.length ? b : java.util.Arrays.copyOf(b, n);
    }

    /** For benchmarks and tests: turn the pre-token cache off (and empty it) or back on. */
    void setCacheEnabled(boolean enabled) {
        cacheEnabled = enabled;
        cache.clear();
    }

    // ------------------------------------------------------------------------------------------
    // Decoding

    /** The text of {@code ids}, special tokens included. Invalid UTF-8 becomes U+FFFD; never throws for that. */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /** The text of {@code ids}, leaving out special added tokens when {@code skipSpecial}. */
    public String decode(int[] ids, boolean skipSpecial) {
        int total = 0;
        for (int id : ids) {
            checkId(id);
            if (!(skipSpecial && special[id])) total += idBytes[id].length;
        }
        byte[] buf = new byte[total];
        int n = 0;
        for (int id : ids) {
            if (skipSpecial && special[id]) continue;
            byte[] b = idBytes[id];
            System.arraycopy(b, 0, buf, n, b.length);
            n += b.length;
        }
        return ByteLevel.decodeUtf8Lossy(buf, 0, n);
    }

    public String decode(List<Integer> ids) {
        return decode(ids, false);
    }

    public String decode(List<Integer> ids, boolean skipSpecial) {
        int[] a = new int[ids.size()];
        for (int i = 0; i < a.length; i++) a[i] = ids.get(i);
        return decode(a, skipSpecial);
    }

    /**
     * The bytes one token stands for. A token may end inside a multi-byte character, so streaming
     * generation should collect bytes and decode complete characters, not decode token by token.
     */
    public byte[] tokenBytes(int id) {
        checkId(id);
        return idBytes[id].clone();
    }

    private void checkId(int id) {
        if (id < 0 || id >= idTokens.length || idTokens[id] == null) {
            throw new IllegalArgumentException("token id " + id + " is not in the vocabulary of " + source
                    + " (size " + idTokens.length + ")");
        }
    }

    // ------------------------------------------------------------------------------------------
    // Lookups

    /** The id of a token given as the file writes it (vocab form such as "Ġworld", or an added token's content). */
    public OptionalInt findTokenId(String token) {
        Integer id = addedIds.get(token);
        if (id == null) id = vocab.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** Like {@link #findTokenId} but a token that is not there is an error naming the file. */
    public int tokenId(String token) {
        OptionalInt id = findTokenId(token);
        if (id.isEmpty()) throw new IllegalArgumentException(source + ": no token \"" + token + "\"");
        return id.getAsInt();
    }

    /** The token string of an id, as the file writes it. */
    public String token(int id) {
        checkId(id);
        return idTokens[id];
    }

    /** Whether the id is an added token marked special. */
    public boolean isSpecial(int id) {
        checkId(id);
        return special[id];
    }

    /** One more than the largest id (vocab and added tokens): Llama-3 gives 128,256, its embedding rows. */
    public int vocabSize() {
        return idTokens.length;
    }

    /** &lt;|begin_of_text|&gt; (Llama-3: 128000). */
    public int bosId() {
        return tokenId(BEGIN_OF_TEXT);
    }

    /** &lt;|end_of_text|&gt; (Llama-3: 128001), the end of a plain-text document. */
    public int eosId() {
        return tokenId(END_OF_TEXT);
    }

    /** &lt;|eot_id|&gt; (Llama-3: 128009), the end of a chat turn. */
    public int eotId() {
        return tokenId(EOT_ID);
    }

    /** What this tokenizer was read from, for messages. */
    public String source() {
        return source;
    }

    @Override
    public String toString() {
        return "Tokenizer[" + source + ", " + vocabSize() + " ids, " + merges.size() + " merges]";
    }

    // ------------------------------------------------------------------------------------------

    /** Finds added tokens in text: a character trie, asked at each position for its longest match. */
    private static final class AddedMatcher {
        private static final class Node {
            final Map<Character, Node> children = new HashMap<>();
            AddedToken token;
        }

        private final Node root = new Node();
        private final BitSet firstChars = new BitSet(65536); // most positions are rejected here

        void add(AddedToken t) {
            Node node = root;
            for (int i = 0; i < t.content().length(); i++) {
                node = node.children.computeIfAbsent(t.content().charAt(i), c -> new Node());
            }
            node.token = t;
            firstChars.set(t.content().charAt(0));
        }

        boolean isEmpty() {
            return root.children.isEmpty();
        }

        AddedToken longestAt(String s, int i) {
            if (!firstChars.get(s.charAt(i))) return null;
            Node node = root;
            AddedToken best = null;
            for (int j = i; j < s.length(); j++) {
                node = node.children.get(s.charAt(j));
                if (node == null) break;
                if (node.token != null) best = node.token;
            }
            return best;
        }
    }
}
