package dev.tenfold.llama.tokenizer;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The fast BPE (heap + linked list + cache) against an obviously-correct one: repeatedly find the
 * adjacent pair of lowest rank, leftmost among equals, and join it.
 */
class TokenizerBpeOracleTest {

    /** The oracle: byte symbols, then the plain O(n^2) merge loop, on one pre-token. */
    static List<Integer> naiveBpe(String piece, Map<String, Integer> ranks, Map<String, Integer> vocab) {
        List<String> syms = new ArrayList<>();
        for (byte b : piece.getBytes(StandardCharsets.UTF_8)) syms.add(TinyTokenizerJson.byteSymbol(b & 0xFF));
        while (true) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < syms.size(); i++) {
                Integer r = ranks.get(syms.get(i) + " " + syms.get(i + 1));
                if (r != null && r < bestRank) {
                    bestRank = r;
                    best = i;
                }
            }
            if (best < 0) break;
            syms.set(best, syms.get(best) + syms.remove(best + 1));
        }
        List<Integer> ids = new ArrayList<>();
        for (String s : syms) ids.add(vocab.get(s));
        return ids;
    }

    /** Merges that fire often on text over a small alphabet, including runs of one letter. */
    static TinyTokenizerJson.Spec richSpec() {
        TinyTokenizerJson.Spec s = new TinyTokenizerJson.Spec();
        s.ignoreMerges = false;
        String[][] m = {
            {"a", "a"}, {"b", "a"}, {"aa", "a"}, {"aa", "aa"}, {"a", "b"}, {"ab", "a"}, {"Ġ", "a"}, {"b", "b"},
            {"ba", "ba"}, {"Ġa", "b"}, {"aaaa", "aaaa"}, {"bb", "a"}, {"a", "ba"}, {"Ã", "©"}, {"Ġ", "Ã©"},
            {"c", "a"}, {"ca", "b"}, {"Ġa", "aa"}, {"ab", "ab"}, {"bba", "a"},
        };
        for (String[] p : m) s.merge(p[0], p[1]);
        return s;
    }

    @Test
    void matchesNaiveBpeOnRandomText() {
        TinyTokenizerJson.Spec spec = richSpec();
        Tokenizer tok = Tokenizer.fromJson(spec.toJson(), "rich.json");
        tok.setCacheEnabled(false);
        Map<String, Integer> ranks = new HashMap<>();
        for (int i = 0; i < spec.merges.size(); i++) {
            ranks.putIfAbsent(spec.merges.get(i)[0] + " " + spec.merges.get(i)[1], i);
        }
        Random r = new Random(42);
        String alphabet = "aaaabbbc é";
        for (int t = 0; t < 1000; t++) {
            StringBuilder sb = new StringBuilder();
            int len = 1 + r.nextInt(30);
            for (int i = 0; i < len; i++) sb.append(alphabet.charAt(r.nextInt(alphabet.length())));
            String text = sb.toString();
            List<Integer> expected = new ArrayList<>();
            for (String piece : tok.preTokenize(text)) expected.addAll(naiveBpe(piece, ranks, spec.vocab));
            assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), tok.encode(text, false), text);
        }
    }

    @Test
    void longPreTokensMatchToo() {
        // One pre-token over a thousand bytes long (a language written without spaces is like this).
        TinyTokenizerJson.Spec spec = richSpec();
        Tokenizer tok = Tokenizer.fromJson(spec.toJson(), "rich.json");
        Map<String, Integer> ranks = new HashMap<>();
        for (int i = 0; i < spec.merges.size(); i++) ranks.put(spec.merges.get(i)[0] + " " + spec.merges.get(i)[1], i);
        Random r = new Random(1);
        for (String text : new String[] {"a".repeat(1001), randomWord(r, 1200), "ab".repeat(500) + "c"}) {
            List<String> pieces = tok.preTokenize(text);
            List<Integer> expected = new ArrayList<>();
            for (String piece : pieces) expected.addAll(naiveBpe(piece, ranks, spec.vocab));
            assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), tok.encode(text, false));
        }
    }

    private static String randomWord(Random r, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) sb.append("aabbcé".charAt(r.nextInt(6)));
        return sb.toString();
    }
}
