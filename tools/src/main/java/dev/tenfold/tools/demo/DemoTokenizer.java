package dev.tenfold.tools.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.llama.longcontext.Passkey;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The demo model's tokenizer: a Llama-3-style byte-level BPE (so any text encodes) whose vocabulary
 * also holds, whole, every word of the pass-key prompt. With ignore_merges (as Llama-3) a word in
 * the vocabulary is one token; digits stay one token each. A prompt of N words is then about N
 * tokens, so the demo's 256-token context holds the whole pass-key question and its 10x is
 * 2,560 tokens, which two CPU cores train on in minutes.
 */
public final class DemoTokenizer {
    private DemoTokenizer() {}

    /** Llama-3's pre-tokenizer pattern. */
    static final String PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** Llama-3's first special tokens, in its order, with ids right after the vocabulary. */
    static final String[] SPECIALS = {
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|reserved_special_token_4|>", "<|eot_id|>",
    };

    /** The text whose words become single tokens: the pass-key prompt's parts. */
    static final List<String> TEXTS = List.of(Passkey.INSTRUCTION, Passkey.FILLER, Passkey.needle(12345),
            "\n\n" + Passkey.QUESTION + " " + Passkey.ANSWER_PREFIX + " 12345.");

    /** The pre-tokens (as the Llama-3 pattern splits) of {@link #TEXTS} that are not numbers, in first-seen order. */
    static List<String> words() {
        Set<String> out = new LinkedHashSet<>();
        Pattern p = Pattern.compile(PATTERN);
        for (String t : TEXTS) {
            Matcher m = p.matcher(t);
            while (m.find()) {
                String w = m.group();
                if (w.codePointCount(0, w.length()) > 1 && !w.chars().allMatch(Character::isDigit)) out.add(w);
            }
        }
        return List.copyOf(out);
    }

    /** The tokenizer.json, as a JSON tree. */
    public static ObjectNode json() {
        ObjectMapper mapper = new ObjectMapper();
        List<String> symbols = byteSymbols();
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String s : symbols) vocab.put(s, vocab.size());
        for (String w : words()) vocab.putIfAbsent(toSymbols(w), vocab.size());
        ObjectNode root = mapper.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int k = 0; k < SPECIALS.length; k++) {
            added.addObject().put("id", vocab.size() + k).put("content", SPECIALS[k]).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Sequence");
        ArrayNode steps = pre.putArray("pretokenizers");
        ObjectNode split = steps.addObject();
        split.put("type", "Split");
        split.putObject("pattern").put("Regex", PATTERN);
        split.put("behavior", "Isolated");
        split.put("invert", false);
        steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", false);
        root.putNull("post_processor");
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true)
                .put("use_regex", true);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", true);
        ObjectNode v = model.putObject("vocab");
        vocab.forEach(v::put);
        model.putArray("merges");
        return root;
    }

    /** Size of the vocabulary including the special tokens (the model's vocab_size). */
    public static int vocabSize() { return 256 + words().size() + SPECIALS.length; }

    /** GPT-2's bytes_to_unicode: BYTE_SYMBOL[b] is the one-character symbol of byte b. */
    private static final String[] BYTE_SYMBOL = new String[256];
    /** The byte symbols in GPT-2's id order (printable bytes first), as Llama-3 numbers them. */
    private static final List<String> SYMBOLS_BY_ID = new ArrayList<>();

    static {
        for (int b = 0; b < 256; b++) {
            if (b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE) {
                BYTE_SYMBOL[b] = String.valueOf((char) b);
                SYMBOLS_BY_ID.add(BYTE_SYMBOL[b]);
            }
        }
        int n = 0;
        for (int b = 0; b < 256; b++) {
            if (BYTE_SYMBOL[b] == null) {
                BYTE_SYMBOL[b] = String.valueOf((char) (256 + n++));
                SYMBOLS_BY_ID.add(BYTE_SYMBOL[b]);
            }
        }
    }

    private static List<String> byteSymbols() { return SYMBOLS_BY_ID; }

    private static String toSymbols(String word) {
        StringBuilder sb = new StringBuilder();
        for (byte b : word.getBytes(java.nio.charset.StandardCharsets.UTF_8)) sb.append(BYTE_SYMBOL[b & 0xff]);
        return sb.toString();
    }
}
