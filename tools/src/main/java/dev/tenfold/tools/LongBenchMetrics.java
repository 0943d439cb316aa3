package dev.tenfold.tools;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * LongBench's metrics (its metrics.py), written to give the same numbers as the Python that
 * produced the published tables: the same normalisation, the same tokenisation (Python's
 * str.split, Unicode \d and \b), and the same quirks where a quirk changes a score (noted where it
 * does). Each metric takes one prediction and one reference answer and returns a score in [0, 1].
 */
final class LongBenchMetrics {
    private LongBenchMetrics() {}

    private static final Pattern DIGITS = Pattern.compile("\\d+", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern ARTICLES = Pattern.compile("\\b(a|an|the)\\b", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern PARAGRAPH_EN = Pattern.compile("Paragraph (\\d+)", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern PARAGRAPH_ZH = Pattern.compile("段落(\\d+)", Pattern.UNICODE_CHARACTER_CLASS);
    private static final String ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"; // Python's string.punctuation

    // ---------------------------------------------------------------------------------------------
    // QA F1

    /** SQuAD-style answer normalisation: lower case, ASCII punctuation removed, then the articles a/an/the, then runs of whitespace. */
    static String normalizeAnswer(String s) {
        String lower = s.toLowerCase(java.util.Locale.ROOT);
        StringBuilder noPunct = new StringBuilder(lower.length());
        lower.codePoints().filter(c -> c >= 128 || ASCII_PUNCTUATION.indexOf(c) < 0).forEach(noPunct::appendCodePoint);
        String noArticles = ARTICLES.matcher(noPunct).replaceAll(" ");
        return String.join(" ", pythonSplit(noArticles));
    }

    /** Token-level F1 of the normalised prediction against the normalised answer (multiset overlap). */
    static double qaF1(String prediction, String answer) {
        return f1(pythonSplit(normalizeAnswer(prediction)), pythonSplit(normalizeAnswer(answer)));
    }

    /** F1 of two token lists, counting each token as often as both lists have it (Python's Counter &). */
    static double f1(List<String> prediction, List<String> answer) {
        Map<String, Integer> counts = new HashMap<>();
        for (String t : answer) counts.merge(t, 1, Integer::sum);
        int same = 0;
        for (String t : prediction) {
            Integer c = counts.get(t);
            if (c != null && c > 0) {
                same++;
                counts.put(t, c - 1);
            }
        }
        if (same == 0) return 0;
        double precision = (double) same / prediction.size();
        double recall = (double) same / answer.size();
        return 2 * precision * recall / (precision + recall);
    }

    // ---------------------------------------------------------------------------------------------
    // Counting and retrieval

    /** passage_count: the share of the numbers in the prediction that equal the answer (as strings: "07" is not "7"). */
    static double count(String prediction, String answer) {
        return shareEqualTo(prediction, answer);
    }

    /** passage_retrieval_en: the answer is "Paragraph N"; the share of the numbers in the prediction that are N. */
    static double retrievalEn(String prediction, String answer) {
        return shareEqualTo(prediction, paragraphNumber(PARAGRAPH_EN, answer, "Paragraph N"));
    }

    /** passage_retrieval_zh: the same with answers "段落N". */
    static double retrievalZh(String prediction, String answer) {
        return shareEqualTo(prediction, paragraphNumber(PARAGRAPH_ZH, answer, "段落N"));
    }

    private static String paragraphNumber(Pattern p, String answer, String form) {
        Matcher m = p.matcher(answer);
        if (!m.find()) throw new IllegalArgumentException("the answer \"" + answer + "\" is not of the form \"" + form + "\"");
        return m.group(1);
    }

    private static double shareEqualTo(String prediction, String number) {
        Matcher m = DIGITS.matcher(prediction);
        int numbers = 0, right = 0;
        while (m.find()) {
            numbers++;
            if (m.group().equals(number)) right++;
        }
        return numbers == 0 ? 0 : (double) right / numbers;
    }

    // ---------------------------------------------------------------------------------------------
    // Classification

    /**
     * trec and lsht: the classes named in the prediction (as substrings); a class that is part of the
     * answer's name but not the answer is dropped; 1/(classes left) if the answer is among them, else 0.
     * LongBench drops them while iterating over the same Python list, which skips the element after
     * each one dropped; that is kept, since it changes scores (e.g. "Other" and "Other location" both named).
     */
    static double classification(String prediction, String answer, List<String> allClasses) {
        List<String> named = new ArrayList<>();
        for (String c : allClasses) if (prediction.contains(c)) named.add(c);
        // a Python for loop over a list: an index that advances by one whatever was removed
        for (int i = 0; i < named.size(); i++) {
            String term = named.get(i);
            if (answer.contains(term) && !term.equals(answer)) named.remove(term);
        }
        return named.contains(answer) ? 1.0 / named.size() : 0;
    }

    // ---------------------------------------------------------------------------------------------
    // ROUGE-L

    /**
     * ROUGE-L F as the Python package rouge (1.0.x) computes it, which LongBench calls: the texts are
     * cut into sentences at every '.', words are split at single spaces after runs of whitespace are
     * collapsed, and the overlap is the number of distinct words in the union of the longest common
     * subsequences of every (reference sentence, predicted sentence) pair; precision and recall divide
     * it by the numbers of distinct words. A prediction or answer with no sentence (empty, or only
     * dots) is an error there, which LongBench scores 0.
     *
     * <p>One difference: the package finds each subsequence by recursion, so a sentence pair of about
     * a thousand words meets Python's recursion limit and LongBench scores the whole answer 0; here
     * it is scored.
     */
    static double rougeL(String prediction, String answer) {
        List<String> hyp = sentences(prediction), ref = sentences(answer);
        if (hyp.isEmpty() || ref.isEmpty()) return 0;
        int m = new HashSet<>(words(ref)).size();
        int n = new HashSet<>(words(hyp)).size();
        Set<String> union = new HashSet<>();
        for (String r : ref) {
            String[] rw = r.split(" ", -1);
            for (String h : hyp) union.addAll(lcsWords(rw, h.split(" ", -1)));
        }
        double recall = (double) union.size() / m, precision = (double) union.size() / n;
        return 2.0 * (precision * recall / (precision + recall + 1e-8));
    }

    /** The text cut at '.', pieces that were empty before collapsing whitespace left out (a piece of spaces stays, as ""). */
    static List<String> sentences(String text) {
        List<String> out = new ArrayList<>();
        for (String piece : text.split("\\.", -1)) {
            if (piece.isEmpty()) continue;
            out.add(String.join(" ", pythonSplit(piece)));
        }
        return out;
    }

    private static List<String> words(List<String> sentences) {
        List<String> out = new ArrayList<>();
        for (String s : sentences) for (String w : s.split(" ", -1)) out.add(w);
        return out;
    }

    /**
     * The words of one longest common subsequence of x (reference) and y (prediction), traced back
     * from the end as the package does: on a match take it, else go to the larger neighbour,
     * preferring j-1 on a tie (which subsequence is found changes the union).
     */
    static List<String> lcsWords(String[] x, String[] y) {
        int[][] t = new int[x.length + 1][y.length + 1];
        for (int i = 1; i <= x.length; i++) {
            for (int j = 1; j <= y.length; j++) {
                t[i][j] = x[i - 1].equals(y[j - 1]) ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
            }
        }
        List<String> out = new ArrayList<>();
        int i = x.length, j = y.length;
        while (i > 0 && j > 0) {
            if (x[i - 1].equals(y[j - 1])) {
                out.add(x[i - 1]);
                i--;
                j--;
            } else if (t[i - 1][j] > t[i][j - 1]) {
                i--;
            } else {
                j--;
            }
        }
        java.util.Collections.reverse(out);
        return out;
    }

    // ---------------------------------------------------------------------------------------------
    // Code similarity

    /**
     * lcc and repobench-p: the first line of the prediction (after leading newlines) that has no '`',
     * '#' or '//' (none: ""), compared with the answer by fuzzywuzzy's ratio.
     */
    static double codeSim(String prediction, String answer) {
        String line = "";
        for (String l : stripLeading(prediction, '\n').split("\n", -1)) {
            if (!l.contains("`") && !l.contains("#") && !l.contains("//")) {
                line = l;
                break;
            }
        }
        return fuzzRatio(line, answer) / 100.0;
    }

    /**
     * fuzzywuzzy's fuzz.ratio as LongBench installs it (fuzzywuzzy without python-Levenshtein, so
     * difflib): 100 for equal strings, 0 if either is empty, else round(100 x SequenceMatcher ratio)
     * with Python's round half to even.
     */
    static int fuzzRatio(String a, String b) {
        if (a.equals(b)) return 100;
        if (a.isEmpty() || b.isEmpty()) return 0;
        return (int) Math.rint(100 * sequenceMatcherRatio(a.codePoints().toArray(), b.codePoints().toArray()));
    }

    /**
     * difflib.SequenceMatcher(None, a, b).ratio(): 2M/T, where M counts the characters in the
     * matching blocks found by taking the longest matching block and recursing on each side of it.
     * As difflib, with its automatic junk heuristic: when b has 200 or more characters, a character
     * occurring in b more than len(b)/100 + 1 times is "popular" and cannot start a match, though a
     * match may still be extended over it.
     */
    static double sequenceMatcherRatio(int[] a, int[] b) {
        Map<Integer, int[]> b2j = indexOf(b);
        int matches = 0;
        List<int[]> queue = new ArrayList<>();
        queue.add(new int[] {0, a.length, 0, b.length});
        while (!queue.isEmpty()) {
            int[] r = queue.remove(queue.size() - 1);
            int[] m = longestMatch(a, b, b2j, r[0], r[1], r[2], r[3]);
            int i = m[0], j = m[1], k = m[2];
            if (k == 0) continue;
            matches += k;
            if (r[0] < i && r[2] < j) queue.add(new int[] {r[0], i, r[2], j});
            if (i + k < r[1] && j + k < r[3]) queue.add(new int[] {i + k, r[1], j + k, r[3]});
        }
        return 2.0 * matches / (a.length + b.length);
    }

    /** For each character of b its positions in b, ascending; popular characters left out (difflib's autojunk). */
    private static Map<Integer, int[]> indexOf(int[] b) {
        Map<Integer, List<Integer>> positions = new HashMap<>();
        for (int j = 0; j < b.length; j++) positions.computeIfAbsent(b[j], c -> new ArrayList<>()).add(j);
        int popularAbove = b.length >= 200 ? b.length / 100 + 1 : Integer.MAX_VALUE;
        Map<Integer, int[]> out = new HashMap<>();
        positions.forEach((c, js) -> {
            if (js.size() > popularAbove) return;
            out.put(c, js.stream().mapToInt(Integer::intValue).toArray());
        });
        return out;
    }

    /**
     * The longest block a[i, i+k) == b[j, j+k) inside the ranges, the earliest in a and then in b
     * among the longest (difflib's find_longest_match), then extended over equal neighbours (which can
     * only be popular characters).
     */
    private static int[] longestMatch(int[] a, int[] b, Map<Integer, int[]> b2j, int alo, int ahi, int blo, int bhi) {
        int besti = alo, bestj = blo, bestSize = 0;
        Map<Integer, Integer> lengthEndingAt = new HashMap<>(); // j -> length of the match ending at a[i-1], b[j]
        for (int i = alo; i < ahi; i++) {
            Map<Integer, Integer> next = new HashMap<>();
            int[] js = b2j.get(a[i]);
            if (js != null) {
                for (int j : js) {
                    if (j < blo) continue;
                    if (j >= bhi) break;
                    int k = lengthEndingAt.getOrDefault(j - 1, 0) + 1;
                    next.put(j, k);
                    if (k > bestSize) {
                        besti = i - k + 1;
                        bestj = j - k + 1;
                        bestSize = k;
                    }
                }
            }
            lengthEndingAt = next;
        }
        while (besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1]) {
            besti--;
            bestj--;
            bestSize++;
        }
        while (besti + bestSize < ahi && bestj + bestSize < bhi && a[besti + bestSize] == b[bestj + bestSize]) bestSize++;
        return new int[] {besti, bestj, bestSize};
    }

    // ---------------------------------------------------------------------------------------------
    // Python's string helpers

    /** Python's str.split(): runs of whitespace (str.isspace) separate, none at either end. */
    static List<String> pythonSplit(CharSequence s) {
        List<String> out = new ArrayList<>();
        int start = -1;
        for (int i = 0; i < s.length(); ) {
            int c = Character.codePointAt(s, i);
            int w = Character.charCount(c);
            if (isPythonSpace(c)) {
                if (start >= 0) {
                    out.add(s.subSequence(start, i).toString());
                    start = -1;
                }
            } else if (start < 0) {
                start = i;
            }
            i += w;
        }
        if (start >= 0) out.add(s.subSequence(start, s.length()).toString());
        return out;
    }

    /** Python's str.isspace() for one character: bidirectional class WS, B or S, or category Zs. */
    static boolean isPythonSpace(int c) {
        byte dir = Character.getDirectionality(c);
        return dir == Character.DIRECTIONALITY_WHITESPACE || dir == Character.DIRECTIONALITY_PARAGRAPH_SEPARATOR
                || dir == Character.DIRECTIONALITY_SEGMENT_SEPARATOR || Character.getType(c) == Character.SPACE_SEPARATOR;
    }

    /** Python's s.lstrip(c) for one character. */
    static String stripLeading(String s, char c) {
        int i = 0;
        while (i < s.length() && s.charAt(i) == c) i++;
        return s.substring(i);
    }
}
