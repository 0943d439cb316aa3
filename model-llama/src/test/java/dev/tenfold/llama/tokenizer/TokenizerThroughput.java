package dev.tenfold.llama.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Tokenizer throughput on a generated 400,000-character English-like text (not a test: speed is
 * shown by benchmarks, not timed tests). The vocab is the 256 byte symbols plus merges learned from
 * the text itself by a small BPE trainer, so merging does real work.
 *
 * <pre>
 * mvn -q -pl model-llama test-compile dependency:build-classpath -Dmdep.outputFile=target/cp.txt
 * java -cp model-llama/target/classes:model-llama/target/test-classes:$(cat model-llama/target/cp.txt) \
 *     dev.tenfold.llama.tokenizer.TokenizerThroughput [chars] [merges]
 * </pre>
 */
public final class TokenizerThroughput {
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

    public static void main(String[] args) {
        int chars = args.length > 0 ? Integer.parseInt(args[0]) : 400_000;
        int mergeCount = args.length > 1 ? Integer.parseInt(args[1]) : 500;
        String text = englishLike(chars, new Random(2024));

        long t0 = System.nanoTime();
        TinyTokenizerJson.Spec spec = new TinyTokenizerJson.Spec();
        spec.ignoreMerges = true;
        for (String[] m : learnMerges(text, mergeCount)) spec.merge(m[0], m[1]);
        for (int k = 0; k < TinyTokenizerJson.SPECIALS.length; k++) {
            spec.added(spec.vocab.size() + k, TinyTokenizerJson.SPECIALS[k], true);
        }
        Tokenizer tok = Tokenizer.fromJson(spec.toJson(), "generated");
        System.out.printf("text %,d chars; vocab %,d ids, %,d merges (learned in %.1f s)%n",
                text.length(), tok.vocabSize(), spec.merges.size(), (System.nanoTime() - t0) / 1e9);

        if (!tok.decode(tok.encode(text, false)).equals(text)) throw new AssertionError("round trip failed");

        measure("pre-tokenize only (regex)", text, () -> tok.preTokenize(text).size());
        tok.setCacheEnabled(true);
        measure("encode, pre-token cache on", text, () -> tok.encode(text, true).length);
        tok.setCacheEnabled(false);
        measure("encode, cache off (every pre-token merged)", text, () -> tok.encode(text, true).length);
        int[] ids = tok.encode(text, false);
        measure("decode", text, () -> tok.decode(ids).length());
        System.out.printf("%,d tokens (%.2f chars/token)%n", ids.length, text.length() / (double) ids.length);
    }

    private static void measure(String what, String text, java.util.function.IntSupplier run) {
        int sink = 0;
        for (int i = 0; i < 20; i++) sink += run.getAsInt(); // warm-up: JIT and, if on, the cache
        int reps = 20;
        long best = Long.MAX_VALUE;
        for (int i = 0; i < reps; i++) {
            long t = System.nanoTime();
            sink += run.getAsInt();
            best = Math.min(best, System.nanoTime() - t);
        }
        System.out.printf("%-45s best %7.1f ms  %,12.0f chars/s  (%d)%n", what, best / 1e6,
                text.length() / (best / 1e9), sink % 10);
    }

    /** Sentences of common words (Zipf-like), capitals, punctuation, numbers, made-up rare words, paragraphs. */
    static String englishLike(int chars, Random r) {
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
