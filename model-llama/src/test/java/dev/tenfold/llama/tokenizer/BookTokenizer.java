package dev.tenfold.llama.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A generated English-like "book" and a byte-level BPE tokenizer trained on it (the 256 byte
 * symbols plus merges learned from the text by a small BPE trainer, and Llama-3's special tokens),
 * so that merging does real work. Used by the tokenizer benchmark (benchmarks/TokenizerBench).
 */
public final class BookTokenizer {
    private BookTokenizer() {}

    private static final String[] WORDS = (
            "the of and to a in that is was he for it with as his on be at by I had not are but from or have"
            + " an they which one you were her all she there would their we him been has when who will more no"
            + " if out so said what up its about into than them can only other new some could time these two may"
            + " then do first any my now such like our over man me even most made after also did many before must"
            + " through back years where much your way well down should because each just those people how too"
            + " little state good very make world still own see men work long get here between both life being under"
            + " never day same another know while last might us great old year off come since against go came right"
            + " used take three context window model training sequence attention gradient memory tokenizer merge"
            + " rotary position embedding layer weight quantization adapter checkpoint evaluation benchmark").split(" ");

    /** Sentences of common words (Zipf-like), capitals, punctuation, numbers, made-up rare words, paragraphs. */
    public static String englishLike(int chars, Random r) {
        StringBuilder sb = new StringBuilder(chars + 100);
        boolean sentenceStart = true;
        while (sb.length() < chars) {
            String w;
            double u = r.nextDouble();
            if (u < 0.04) w = rareWord(r);
            else if (u < 0.06) w = Integer.toString(r.nextInt(r.nextBoolean() ? 100 : 100_000));
            else w = WORDS[(int) (WORDS.length * Math.pow(r.nextDouble(), 2.5))];
            if (sentenceStart) w = Character.toUpperCase(w.charAt(0)) + w.substring(1);
            if (!sentenceStart) sb.append(' ');
            sb.append(w);
            sentenceStart = false;
            double p = r.nextDouble();
            if (p < 0.06) sb.append(',');
            else if (p < 0.12) {
                sb.append(r.nextInt(10) == 0 ? "?" : ".");
                sentenceStart = true;
                if (r.nextInt(8) == 0) sb.append("\n\n");
                else sb.append(' ');
            }
        }
        return sb.substring(0, chars);
    }

    private static String rareWord(Random r) {
        StringBuilder sb = new StringBuilder();
        int n = 4 + r.nextInt(8);
        for (int i = 0; i < n; i++) sb.append("etaoinshrdlucmfwypvbgkjqxz".charAt((int) (26 * Math.pow(r.nextDouble(), 2))));
        return sb.toString();
    }

    /** A tokenizer with {@code mergeCount} merges learned from {@code text}. */
    public static Tokenizer trainedOn(String text, int mergeCount) {
        TinyTokenizerJson.Spec spec = new TinyTokenizerJson.Spec();
        spec.ignoreMerges = true;
        for (String[] m : learnMerges(text, mergeCount)) spec.merge(m[0], m[1]);
        for (int k = 0; k < TinyTokenizerJson.SPECIALS.length; k++) {
            spec.added(spec.vocab.size() + k, TinyTokenizerJson.SPECIALS[k], true);
        }
        return Tokenizer.fromJson(spec.toJson(), "trained-on-book");
    }

    /** A plain BPE trainer: count adjacent symbol pairs over the pre-token counts, join the most frequent. */
    static List<String[]> learnMerges(String text, int count) {
        Tokenizer bytesOnly = Tokenizer.fromJson(new TinyTokenizerJson.Spec().toJson(), "bytes-only");
        Map<String, Integer> freq = new HashMap<>();
        for (String piece : bytesOnly.preTokenize(text)) freq.merge(piece, 1, Integer::sum);
        List<List<String>> words = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        for (Map.Entry<String, Integer> e : freq.entrySet()) {
            List<String> syms = new ArrayList<>();
            for (byte b : e.getKey().getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
                syms.add(TinyTokenizerJson.byteSymbol(b & 0xFF));
            }
            words.add(syms);
            counts.add(e.getValue());
        }
        List<String[]> merges = new ArrayList<>();
        for (int m = 0; m < count; m++) {
            Map<String, Integer> pairs = new HashMap<>();
            for (int w = 0; w < words.size(); w++) {
                List<String> s = words.get(w);
                for (int i = 0; i + 1 < s.size(); i++) pairs.merge(s.get(i) + " " + s.get(i + 1), counts.get(w), Integer::sum);
            }
            String best = null;
            for (Map.Entry<String, Integer> e : pairs.entrySet()) {
                if (best == null || e.getValue() > pairs.get(best)
                        || (e.getValue().equals(pairs.get(best)) && e.getKey().compareTo(best) < 0)) {
                    best = e.getKey();
                }
            }
            if (best == null) break;
            String[] pair = best.split(" ");
            merges.add(pair);
            for (List<String> s : words) {
                for (int i = 0; i + 1 < s.size(); i++) {
                    if (s.get(i).equals(pair[0]) && s.get(i + 1).equals(pair[1])) {
                        s.set(i, pair[0] + pair[1]);
                        s.remove(i + 1);
                    }
                }
            }
        }
        return merges;
    }
}
