package dev.tenfold.llama.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds small tokenizer.json files shaped like Llama-3's: the 256 byte symbols (ids in GPT-2 order,
 * so '!' is 0, 'Ġ' is 220, 'Ċ' is 198, as in Llama-3), a few merges, and Llama-3's special tokens
 * with ids right after the vocab.
 */
public final class TinyTokenizerJson {
    static final ObjectMapper JSON = new ObjectMapper();

    static final String LLAMA3_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /**
     * Merges of the tiny vocab in rank order; merge k makes token id 256 + k. Chosen so that rank
     * order matters: "e l" (9) ranks after "l l" (6), so "yell" is y e ll, not y el l.
     */
    static final String[][] MERGES = {
        {"Ġ", "w"},    // 0  -> 256 Ġw
        {"o", "r"},    // 1  -> 257 or
        {"Ġw", "or"},  // 2  -> 258 Ġwor
        {"l", "d"},    // 3  -> 259 ld
        {"Ġwor", "ld"},// 4  -> 260 Ġworld
        {"H", "e"},    // 5  -> 261 He
        {"l", "l"},    // 6  -> 262 ll
        {"He", "ll"},  // 7  -> 263 Hell
        {"Hell", "o"}, // 8  -> 264 Hello
        {"e", "l"},    // 9  -> 265 el
        {"Ġ", "t"},    // 10 -> 266 Ġt
        {"h", "e"},    // 11 -> 267 he
        {"Ġt", "he"},  // 12 -> 268 Ġthe
        {"Ġ", "Ġ"},    // 13 -> 269 ĠĠ
        {"Ċ", "Ċ"},    // 14 -> 270 ĊĊ
        {"1", "2"},    // 15 -> 271 12
        {"12", "3"},   // 16 -> 272 123
    };
    /** Vocab entries no merge produces: what ignore_merges can emit whole. */
    static final String[] EXTRA_VOCAB = {"Ġcat", "Ġhello"}; // 273, 274

    static final int VOCAB = 256 + MERGES.length + EXTRA_VOCAB.length; // 275
    // Llama-3's first ten added tokens in its order (128000 + k there, VOCAB + k here).
    static final String[] SPECIALS = {
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|reserved_special_token_4|>", "<|eot_id|>",
    };
    static final int BOS = VOCAB, EOS = VOCAB + 1, START_HEADER = VOCAB + 6, END_HEADER = VOCAB + 7, EOT = VOCAB + 9;

    private TinyTokenizerJson() {}

    /**
     * GPT-2's bytes_to_unicode, written the way its Python is (a list of printable bytes, then the
     * rest appended with code points 256, 257, ...); independent of the main code's table. Index =
     * vocab id, value = {byte, character}.
     */
    static List<int[]> byteAlphabet() {
        return ALPHABET;
    }

    private static final List<int[]> ALPHABET = buildAlphabet();

    private static List<int[]> buildAlphabet() {
        List<Integer> bs = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) bs.add(b);
        for (int b = 0xA1; b <= 0xAC; b++) bs.add(b);
        for (int b = 0xAE; b <= 0xFF; b++) bs.add(b);
        List<int[]> out = new ArrayList<>();
        for (int b : bs) out.add(new int[] {b, b});
        int n = 0;
        for (int b = 0; b < 256; b++) {
            if (!bs.contains(b)) out.add(new int[] {b, 256 + n++});
        }
        return List.copyOf(out);
    }

    /** The vocab id of the symbol of one byte. */
    static int byteId(int b) {
        List<int[]> a = byteAlphabet();
        for (int id = 0; id < a.size(); id++) if (a.get(id)[0] == b) return id;
        throw new AssertionError();
    }

    /** The byte-level symbol of one byte. */
    static String byteSymbol(int b) {
        for (int[] e : byteAlphabet()) if (e[0] == b) return String.valueOf((char) e[1]);
        throw new AssertionError();
    }

    /** A builder so that tests can vary one part at a time. */
    static final class Spec {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        List<String[]> merges = new ArrayList<>();
        boolean mergesAsPairs = false;
        boolean ignoreMerges = true;
        String pattern = LLAMA3_PATTERN;
        List<Object[]> added = new ArrayList<>(); // {id, content, special}

        Spec() {
            List<int[]> a = byteAlphabet();
            for (int id = 0; id < a.size(); id++) vocab.put(String.valueOf((char) a.get(id)[1]), id);
        }

        Spec merge(String left, String right) {
            merges.add(new String[] {left, right});
            vocab.putIfAbsent(left + right, vocab.size());
            return this;
        }

        Spec added(int id, String content, boolean special) {
            added.add(new Object[] {id, content, special});
            return this;
        }

        ObjectNode toJson() {
            ObjectNode root = JSON.createObjectNode();
            root.put("version", "1.0");
            root.putNull("truncation");
            root.putNull("padding");
            ArrayNode addedNode = root.putArray("added_tokens");
            for (Object[] t : added) {
                ObjectNode o = addedNode.addObject();
                o.put("id", (Integer) t[0]);
                o.put("content", (String) t[1]);
                o.put("single_word", false);
                o.put("lstrip", false);
                o.put("rstrip", false);
                o.put("normalized", false);
                o.put("special", (Boolean) t[2]);
            }
            root.putNull("normalizer");
            ObjectNode pre = root.putObject("pre_tokenizer");
            pre.put("type", "Sequence");
            ArrayNode steps = pre.putArray("pretokenizers");
            ObjectNode split = steps.addObject();
            split.put("type", "Split");
            split.putObject("pattern").put("Regex", pattern);
            split.put("behavior", "Isolated");
            split.put("invert", false);
            ObjectNode byteLevel = steps.addObject();
            byteLevel.put("type", "ByteLevel");
            byteLevel.put("add_prefix_space", false);
            byteLevel.put("trim_offsets", true);
            byteLevel.put("use_regex", false);
            root.putNull("post_processor");
            ObjectNode decoder = root.putObject("decoder");
            decoder.put("type", "ByteLevel");
            decoder.put("add_prefix_space", true);
            decoder.put("trim_offsets", true);
            decoder.put("use_regex", true);
            ObjectNode model = root.putObject("model");
            model.put("type", "BPE");
            model.putNull("dropout");
            model.putNull("unk_token");
            model.putNull("continuing_subword_prefix");
            model.putNull("end_of_word_suffix");
            model.put("fuse_unk", false);
            model.put("byte_fallback", false);
            model.put("ignore_merges", ignoreMerges);
            ObjectNode v = model.putObject("vocab");
            vocab.forEach(v::put);
            ArrayNode m = model.putArray("merges");
            for (String[] pair : merges) {
                if (mergesAsPairs) m.addArray().add(pair[0]).add(pair[1]);
                else m.add(pair[0] + " " + pair[1]);
            }
            return root;
        }

        Path write(Path dir) throws IOException {
            Path file = dir.resolve("tokenizer.json");
            Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(toJson()));
            return file;
        }
    }

    /** The tiny Llama-3-like tokenizer: byte symbols, {@link #MERGES}, {@link #EXTRA_VOCAB}, specials. */
    static Spec llamaLike() {
        Spec s = new Spec();
        for (String[] m : MERGES) s.merge(m[0], m[1]);
        for (String extra : EXTRA_VOCAB) s.vocab.put(extra, s.vocab.size());
        if (s.vocab.size() != VOCAB) throw new AssertionError("tiny vocab size " + s.vocab.size());
        for (int k = 0; k < SPECIALS.length; k++) s.added(VOCAB + k, SPECIALS[k], true);
        return s;
    }

    /** Writes the tiny Llama-3-like tokenizer.json into {@code dir}; returns its vocabulary size (specials included). */
    public static int writeLlamaLike(Path dir) throws IOException {
        Spec s = llamaLike();
        s.write(dir);
        return VOCAB + SPECIALS.length;
    }

    static Tokenizer tiny() {
        return Tokenizer.fromJson(llamaLike().toJson(), "tiny-tokenizer.json");
    }
}
