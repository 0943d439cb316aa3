package dev.tenfold.llama.tokenizer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The Llama-3 split regex on hand-checked examples. */
class TokenizerPreTokenizerTest {
    private final Tokenizer tok = TinyTokenizerJson.tiny();

    private void check(String text, String... pieces) {
        assertEquals(List.of(pieces), tok.preTokenize(text), () -> "pre-tokens of \"" + text + "\"");
        assertEquals(text, String.join("", pieces));
    }

    @Test
    void words() {
        check("Hello world!", "Hello", " world", "!");
        check("naïve café 東京", "naïve", " café", " 東京");
        // a letter run takes one non-letter, non-digit, non-newline char in front of it
        check("(hello) \"x\"", "(hello", ")", " \"", "x", "\"");
    }

    @Test
    void contractionsDigitsNewlinesAndSpaces() {
        // " 12345": no word follows the space, and \s+(?!\S) can't end before a non-space, so " "
        // is alone (last alternative \s+); digits go in groups of at most three; "\n\n" is one
        // piece; of "  x" the last space joins the word.
        check("I'm 12345 ok\n\n  x", "I", "'m", " ", "123", "45", " ok", "\n\n", " ", " x");
        check("a  b", "a", " ", " b");
        check("x   ", "x", "   ");
        check("DON'T they're WE'VE", "DON", "'T", " they", "'re", " WE", "'VE");
        check("line\r\nnext", "line", "\r\n", "next");
        check("end.\n\nNext", "end", ".\n\n", "Next");
        check("2024年", "202", "4", "年");
        check("١٢٣٤", "١٢٣", "٤"); // Arabic-Indic digits are \p{N}
    }

    @Test
    void unicodeWhitespaceIsWhitespace() {
        // U+3000 is \s only with Unicode classes; with ASCII \s the two would be one symbol run.
        check("a\u3000\u3000b", "a", "\u3000", "\u3000b");
        check("a\u00a0\u00a0b", "a", "\u00a0", "\u00a0b");
    }

    @Test
    void byteLevelAloneUsesGpt2Split() {
        // GPT-2's shape: no Split, ByteLevel with its own regex (digits not grouped by three,
        // contractions case-sensitive) and, if asked, a space put in front.
        for (boolean prefix : new boolean[] {false, true}) {
            ObjectNode root = TinyTokenizerJson.llamaLike().toJson();
            ObjectNode pre = root.putObject("pre_tokenizer");
            pre.put("type", "ByteLevel");
            pre.put("add_prefix_space", prefix);
            pre.put("trim_offsets", true);
            pre.put("use_regex", true);
            Tokenizer gpt2 = Tokenizer.fromJson(root, "gpt2-like.json");
            String first = prefix ? " Hello" : "Hello";
            assertEquals(List.of(first, " world", " 12345", "'s", " DON", "'", "T"),
                    gpt2.preTokenize("Hello world 12345's DON'T"));
            assertEquals((prefix ? " " : "") + "Hello world", gpt2.decode(gpt2.encode("Hello world", false)));
        }
    }

    @Test
    void emojiAndSymbols() {
        check("ok 👍🏽!", "ok", " 👍🏽!");
        check("😀😀 x", "😀😀", " x");
        check("a+=b", "a", "+=", "b");
    }
}
