package dev.tenfold.llama.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.tenfold.llama.tokenizer.TinyTokenizerJson.*;
import static org.junit.jupiter.api.Assertions.*;

/** Encoding and decoding with the tiny Llama-3-like vocab; expected ids worked out by hand from MERGES. */
class TokenizerTest {
    // Byte-symbol ids in GPT-2 order: '!'..'~' are 0..93 (so a printable ASCII char c is c - 33),
    // 'Ġ' (space) is 220, 'Ċ' (newline) is 198.
    static final int SPACE = 220, NEWLINE = 198;

    static int c(char ch) {
        return ch - 33;
    }

    private final Tokenizer tok = tiny();

    @Test
    void byteAlphabetMatchesGpt2() {
        assertEquals(0, byteId('!'));
        assertEquals(SPACE, byteId(' '));
        assertEquals(NEWLINE, byteId('\n'));
        assertEquals("Ġ", byteSymbol(' '));
        assertEquals("Ċ", byteSymbol('\n'));
        assertEquals(SPACE, tok.tokenId("Ġ"));
        assertEquals(c('H'), tok.tokenId("H"));
        for (int b = 0; b < 256; b++) {
            assertArrayEquals(new byte[] {(byte) b}, tok.tokenBytes(byteId(b)), "byte " + b);
            assertEquals(byteSymbol(b), String.valueOf(ByteLevel.BYTE_TO_CHAR[b]), "byte " + b);
        }
    }

    @Test
    void helloWorldByHand() {
        // "Hello": H e l l o -> He(5) -> ll(6) -> Hell(7) -> Hello(8) = 264
        // " world": Ġ w o r l d -> Ġw(0) -> or(1) -> Ġwor(2) -> ld(3) -> Ġworld(4) = 260
        // "!" = 0, as in Llama-3's [9906, 1917, 0]
        assertArrayEquals(new int[] {264, 260, 0}, tok.encode("Hello world!", false));
        assertEquals("Hello world!", tok.decode(new int[] {264, 260, 0}));
    }

    @Test
    void lowestRankMergesFirst() {
        // "yell": pairs ye(-), el(9), ll(6): ll wins, then "e ll" has no merge -> y e ll.
        // A left-to-right merger would give y el l.
        assertArrayEquals(new int[] {c('y'), c('e'), 262}, tok.encode("yell", false));
        // "the the": "the" -> t he(11); " the" -> Ġt(10) h e -> Ġt he(11) -> Ġthe(12) = 268
        assertArrayEquals(new int[] {c('t'), 267, 268}, tok.encode("the the", false));
        // digits in groups of three: "123" -> 12(15) -> 123(16) = 272; "45" has no merge
        assertArrayEquals(new int[] {272, c('4'), c('5')}, tok.encode("12345", false));
    }

    @Test
    void aRepeatedMergeKeepsItsLastRank() {
        // As in Hugging Face (merges collected into a map in file order): "a b" ends up rank 2, so in
        // "abc" the pair "b c" (rank 1) goes first.
        Spec spec = new Spec();
        spec.merge("a", "b").merge("b", "c").merge("a", "b");
        Tokenizer t = Tokenizer.fromJson(spec.toJson(), "dup.json");
        assertArrayEquals(new int[] {c('a'), t.tokenId("bc")}, t.encode("abc", false));
        assertArrayEquals(new int[] {t.tokenId("ab")}, t.encode("ab", false));
    }

    @Test
    void whitespaceByHand() {
        // "a  b" -> "a", " ", " b" (\s+(?!\S) leaves the last space to the word)
        assertArrayEquals(new int[] {c('a'), SPACE, SPACE, c('b')}, tok.encode("a  b", false));
        // "x\n\ny" -> "x", "\n\n" (ĊĊ, merge 14 = 270), "y"
        assertArrayEquals(new int[] {c('x'), 270, c('y')}, tok.encode("x\n\ny", false));
        // trailing spaces are one pre-token: ĠĠ (merge 13 = 269)
        assertArrayEquals(new int[] {c('x'), 269}, tok.encode("x  ", false));
    }

    @Test
    void nonAsciiBytesByHand() {
        // é = C3 A9; 0xC3 is 'Ã' (id 106 + 0xC3 - 0xAE = 127), 0xA9 is '©' (id 94 + 0xA9 - 0xA1 = 102)
        assertArrayEquals(new int[] {127, 102}, tok.encode("é", false));
        assertEquals(127, byteId(0xC3));
        assertEquals(102, byteId(0xA9));
    }

    @Test
    void ignoreMergesEmitsWholeVocabPreTokens() {
        // " hello": merges give Ġ he ll o (ll(6), then he(11)); but "Ġhello" is in the vocab (274)
        assertArrayEquals(new int[] {274}, tok.encode(" hello", false));
        assertArrayEquals(new int[] {273}, tok.encode(" cat", false));
        Spec spec = llamaLike();
        spec.ignoreMerges = false;
        Tokenizer merging = Tokenizer.fromJson(spec.toJson(), "no-ignore.json");
        assertArrayEquals(new int[] {SPACE, 267, 262, c('o')}, merging.encode(" hello", false));
        assertArrayEquals(new int[] {SPACE, c('c'), c('a'), c('t')}, merging.encode(" cat", false));
        // both decode to the same text
        assertEquals(" hello", tok.decode(new int[] {SPACE, 267, 262, c('o')}));
        assertEquals(" hello", tok.decode(new int[] {274}));
    }

    @Test
    void bothMergeFormatsLoadTheSame(@TempDir Path dir) throws Exception {
        Spec strings = llamaLike();
        Spec pairs = llamaLike();
        pairs.mergesAsPairs = true;
        Tokenizer a = Tokenizer.load(strings.write(Files.createDirectories(dir.resolve("strings"))));
        Tokenizer b = Tokenizer.load(pairs.write(Files.createDirectories(dir.resolve("pairs"))));
        for (String s : List.of("Hello world!", "yell the the 12345", "naïve café 東京 😀")) {
            assertArrayEquals(a.encode(s, false), b.encode(s, false), s);
        }
        assertArrayEquals(new int[] {264, 260, 0}, b.encode("Hello world!", false));
    }

    @Test
    void specialTokensOnlyWhenAllowed() {
        String text = "<|begin_of_text|>Hello<|eot_id|>";
        assertArrayEquals(new int[] {BOS, 264, EOT}, tok.encode(text, true));
        int[] plain = tok.encode(text, false);
        for (int id : plain) assertTrue(id < VOCAB, "special id " + id + " without allowSpecial");
        assertEquals(text, tok.decode(plain));
        // "<|" is one pre-token of punctuation, "begin" letters, "_of" ... all byte symbols here
        assertEquals(c('<'), plain[0]);
        // adjacent specials and text around them
        assertArrayEquals(new int[] {START_HEADER, c('u'), c('s'), c('e'), c('r'), END_HEADER, 270},
                tok.encode("<|start_header_id|>user<|end_header_id|>\n\n", true));
        assertArrayEquals(new int[] {EOT, EOT}, tok.encode("<|eot_id|><|eot_id|>", true));
        // a broken special is text
        assertEquals("<|eot_id|", tok.decode(tok.encode("<|eot_id|", true)));
        for (int id : tok.encode("<|eot_id|", true)) assertTrue(id < VOCAB);
    }

    @Test
    void longestAddedTokenWins() {
        Spec spec = llamaLike();
        spec.added(VOCAB + 10, "<x>", true).added(VOCAB + 11, "<x><y>", true).added(VOCAB + 12, "<y>", true);
        Tokenizer t = Tokenizer.fromJson(spec.toJson(), "longest.json");
        assertArrayEquals(new int[] {VOCAB + 11, VOCAB + 10}, t.encode("<x><y><x>", true));
        assertArrayEquals(new int[] {VOCAB + 10, c('a'), VOCAB + 12}, t.encode("<x>a<y>", true));
    }

    @Test
    void nonSpecialAddedTokensAreAlwaysRecognised() {
        Spec spec = llamaLike();
        spec.added(VOCAB + 10, "[MASKED]", false);
        Tokenizer t = Tokenizer.fromJson(spec.toJson(), "nonspecial.json");
        assertArrayEquals(new int[] {c('a'), VOCAB + 10, SPACE, c('b')}, t.encode("a[MASKED] b", false));
        assertEquals("a[MASKED] b", t.decode(new int[] {c('a'), VOCAB + 10, SPACE, c('b')}, true));
        assertFalse(t.isSpecial(VOCAB + 10));
    }

    @Test
    void lstripAndRstripSwallowNeighbouringWhitespace() {
        for (String flag : new String[] {"lstrip", "rstrip"}) {
            var root = llamaLike().added(VOCAB + 10, "<mask>", true).toJson();
            ((com.fasterxml.jackson.databind.node.ObjectNode) root.get("added_tokens").get(SPECIALS.length)).put(flag, true);
            Tokenizer t = Tokenizer.fromJson(root, flag + ".json");
            int[] expected = flag.equals("lstrip")
                    ? new int[] {c('a'), VOCAB + 10, SPACE, c('b')}   // "a" <mask> " b"
                    : new int[] {c('a'), SPACE, VOCAB + 10, c('b')};  // "a " <mask> "b"
            assertArrayEquals(expected, t.encode("a <mask> b", true), flag);
        }
    }

    @Test
    void decodeSkipsSpecialOnRequest() {
        int[] ids = tok.encode("<|begin_of_text|>Hello world!<|eot_id|>", true);
        assertEquals("<|begin_of_text|>Hello world!<|eot_id|>", tok.decode(ids));
        assertEquals("Hello world!", tok.decode(ids, true));
        assertEquals("Hello world!", tok.decode(List.of(BOS, 264, 260, 0, EOT), true));
    }

    @Test
    void lookupsReadFromTheFile() {
        assertEquals(BOS, tok.bosId());
        assertEquals(EOS, tok.eosId());
        assertEquals(EOT, tok.eotId());
        assertEquals(START_HEADER, tok.tokenId("<|start_header_id|>"));
        assertEquals(END_HEADER, tok.tokenId("<|end_header_id|>"));
        assertEquals(264, tok.tokenId("Hello"));
        assertEquals("Ġworld", tok.token(260));
        assertTrue(tok.isSpecial(EOT));
        assertFalse(tok.isSpecial(264));
        assertEquals(VOCAB + SPECIALS.length, tok.vocabSize());
        assertTrue(tok.findTokenId("<|nope|>").isEmpty());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tok.tokenId("<|nope|>"));
        assertTrue(e.getMessage().contains("tiny-tokenizer.json"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {tok.vocabSize()}));
        assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {-1}));
    }

    @Test
    void roundTripsUnicodeHeavyText() {
        List<String> texts = List.of(
                "",
                "Hello world!",
                "naïve café, Crème brûlée; Ångström — “quotes” …",
                "東京都の天気は晴れです。中文没有空格也可以。",
                "emoji 😀👍🏽👨‍👩‍👧‍👦 🇫🇷 flags\u200d",
                "mixed\r\nnewlines\n\n\ttabs\t\t and  spaces   \u00a0nbsp\u3000ideographic",
                "RTL: שלום עולם, مرحبا بالعالم ١٢٣٤٥",
                "Ελληνικά Русский 한국어 ไทย हिन्दी",
                "code: if (x != 0) { return y << 2; } // 'quoted' \"double\"",
                "numbers 3.14159 1,000,000 ½ ² Ⅻ",
                "I'm, you're, they'LL, WE'VE, it's, he'd",
                "control \u0000\u0001\u007f\u0085 end",
                "<|eot_id|> looks special but is text here",
                "   leading and trailing   ");
        for (String s : texts) {
            assertEquals(s, tok.decode(tok.encode(s, false)), s);
            assertEquals(s, tok.decode(tok.encode(s, true)), s);
        }
    }

    @Test
    void repeatedEncodingIsStable() {
        // The second pass comes from the pre-token cache; it must agree with the first.
        String s = "Hello world! the the yell 12345 naïve 東京";
        int[] first = tok.encode(s, false);
        assertArrayEquals(first, tok.encode(s, false));
        tok.setCacheEnabled(false);
        assertArrayEquals(first, tok.encode(s, false));
        tok.setCacheEnabled(true);
    }

    @Test
    void sharedBetweenThreads() throws Exception {
        List<String> texts = List.of("Hello world! the the yell", "naïve café 東京 😀", "12345 x\n\ny  z", "I'm ok");
        List<int[]> expected = texts.stream().map(s -> tiny().encode(s, true)).toList();
        Tokenizer shared = tiny();
        var pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            List<java.util.concurrent.Future<Boolean>> results = new java.util.ArrayList<>();
            for (int t = 0; t < 8; t++) {
                results.add(pool.submit(() -> {
                    for (int i = 0; i < 500; i++) {
                        int k = i % texts.size();
                        if (!java.util.Arrays.equals(expected.get(k), shared.encode(texts.get(k), true))) return false;
                    }
                    return true;
                }));
            }
            for (var f : results) assertTrue(f.get());
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void invalidUtf8DecodesToReplacementCharacters() {
        assertEquals("\uFFFD", decodeBytes(0xE2, 0x82));                  // truncated 3-byte sequence
        assertEquals("\uFFFDA", decodeBytes(0xE2, 0x82, 'A'));            // broken by an ASCII byte
        assertEquals("\uFFFDA", decodeBytes(0xFF, 'A'));                  // byte that never starts a sequence
        assertEquals("\uFFFD\uFFFD", decodeBytes(0xC0, 0x80));            // overlong NUL
        assertEquals("\uFFFD\uFFFD\uFFFD", decodeBytes(0xED, 0xA0, 0x80)); // encoded surrogate
        assertEquals("\uFFFD\uFFFD\uFFFD\uFFFD", decodeBytes(0xF4, 0x90, 0x80, 0x80)); // above U+10FFFF
        assertEquals("\uFFFDx", decodeBytes(0xF0, 0x9F, 0x98, 'x'));       // emoji cut short
        assertEquals("\uFFFD", decodeBytes(0x80));                        // lone continuation byte
        assertEquals("😀", decodeBytes(0xF0, 0x9F, 0x98, 0x80));
        // half an emoji's tokens
        int[] emoji = tok.encode("😀", false);
        assertEquals(4, emoji.length);
        assertEquals("\uFFFD", tok.decode(new int[] {emoji[0], emoji[1]}));
    }

    @Test
    void lossyDecoderAgreesWithJdkOnValidText() {
        java.util.Random r = new java.util.Random(7);
        for (int t = 0; t < 200; t++) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < 20; i++) {
                int cp = switch (r.nextInt(4)) {
                    case 0 -> r.nextInt(0x80);
                    case 1 -> 0x80 + r.nextInt(0x800 - 0x80);
                    case 2 -> { int x = 0x800 + r.nextInt(0x10000 - 0x800); yield x >= 0xD800 && x <= 0xDFFF ? 0xE000 : x; }
                    default -> 0x10000 + r.nextInt(0x110000 - 0x10000);
                };
                sb.appendCodePoint(cp);
            }
            byte[] b = sb.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            assertEquals(sb.toString(), ByteLevel.decodeUtf8Lossy(b, 0, b.length));
        }
    }

    private String decodeBytes(int... bytes) {
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) ids[i] = byteId(bytes[i]);
        return tok.decode(ids);
    }
}
