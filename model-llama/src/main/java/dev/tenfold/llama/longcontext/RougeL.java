package dev.tenfold.llama.longcontext;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * ROUGE-L F1 as the Python {@code rouge} package reports "rouge-l" "f": the longest common
 * subsequence of lower-cased word tokens, precision = LCS / candidate words, recall = LCS /
 * reference words, F = 2PR / (P + R); 0 when either side has no words.
 */
public final class RougeL {
    private RougeL() {}

    /** Lower-cased runs of letters and digits (punctuation separates words and is dropped). */
    public static List<String> words(String text) {
        List<String> out = new ArrayList<>();
        for (String w : text.toLowerCase(Locale.ROOT).split("[^\\p{L}\\p{N}]+")) if (!w.isEmpty()) out.add(w);
        return out;
    }

    public static double f1(String candidate, String reference) {
        List<String> c = words(candidate), r = words(reference);
        if (c.isEmpty() || r.isEmpty()) return 0;
        int lcs = lcs(c, r);
        if (lcs == 0) return 0;
        double p = (double) lcs / c.size(), rec = (double) lcs / r.size();
        return 2 * p * rec / (p + rec);
    }

    /** Length of the longest common subsequence; two rolling rows, so memory is O(|b|). */
    static int lcs(List<String> a, List<String> b) {
        int[] prev = new int[b.size() + 1], cur = new int[b.size() + 1];
        for (String x : a) {
            for (int j = 1; j <= b.size(); j++) {
                cur[j] = x.equals(b.get(j - 1)) ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
            }
            int[] t = prev; prev = cur; cur = t;
        }
        return prev[b.size()];
    }
}
