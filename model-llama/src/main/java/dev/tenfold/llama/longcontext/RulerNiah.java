package dev.tenfold.llama.longcontext;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * RULER's multi-needle NIAH tasks (Hsieh et al., 2024): needles "One of the special magic numbers
 * for KEY is: NUMBER." with 7-digit numbers at random depths in the filler.
 * <ul>
 *   <li>multikey: needles with different keys; one key is asked, the others are distractors.</li>
 *   <li>multivalue: needles with the same key and different numbers; all of them are asked.</li>
 *   <li>multiquery: needles with different keys; several keys are asked at once.</li>
 * </ul>
 * A trial scores the fraction of the expected numbers that appear in the answer (RULER's
 * string_match_all), so multikey scores 0 or 1 and the others also take the values in between.
 */
public final class RulerNiah {
    public enum Variant {
        MULTIKEY, MULTIVALUE, MULTIQUERY;

        public String id() { return name().toLowerCase(Locale.ROOT); }

        public static Variant parse(String s) {
            for (Variant v : values()) if (v.id().equals(s.toLowerCase(Locale.ROOT))) return v;
            throw new IllegalArgumentException("unknown variant '" + s + "': choose multikey, multivalue or multiquery");
        }
    }

    /** RULER's instruction for its NIAH tasks. */
    public static final String INSTRUCTION = "Some special magic numbers are hidden within the following text. "
            + "Make sure to memorize it. I will quiz you about the numbers afterwards.";

    /**
     * Where keys come from: plain nouns (RULER draws words too), fixed so that a seed means the same
     * keys in every build. Longer than any needle count a run would use, so keys can be distinct.
     */
    public static final List<String> WORDS = List.of(
            "apple", "anchor", "badger", "balloon", "basket", "beacon", "blanket", "bottle", "bracelet", "bridge",
            "bucket", "butterfly", "cabinet", "camera", "candle", "canyon", "carpet", "castle", "cathedral", "cellar",
            "chimney", "circus", "compass", "copper", "cottage", "crayon", "cricket", "crystal", "curtain", "cushion",
            "dolphin", "dragon", "drum", "eagle", "elephant", "emerald", "engine", "falcon", "feather", "fountain",
            "garden", "giraffe", "glacier", "goblet", "granite", "guitar", "hammer", "harbor", "helmet", "honey",
            "horizon", "island", "jacket", "jungle", "kettle", "kitten", "ladder", "lantern", "lemon", "lighthouse",
            "lizard", "magnet", "marble", "meadow", "mirror", "monkey", "mountain", "needle", "notebook", "orchard",
            "otter", "oyster", "paddle", "palace", "parrot", "pebble", "pencil", "pepper", "piano", "pillow",
            "pirate", "planet", "pocket", "pumpkin", "puzzle", "rabbit", "rainbow", "ribbon", "river", "rocket",
            "saddle", "sandal", "scarf", "shadow", "shovel", "spider", "squirrel", "statue", "tiger", "tornado",
            "trumpet", "tunnel", "turtle", "umbrella", "valley", "velvet", "violin", "volcano", "wagon", "walrus",
            "whistle", "window", "wizard", "zebra");

    /** One needle as placed: its key, number and the depth (0..1 of the haystack) it actually got. */
    public record Needle(String key, int number, double depth) {}

    public record Trial(List<Needle> needles, List<String> asked, List<Integer> expected, int promptTokens, String answer, double score) {}

    public record LengthResult(int length, List<Trial> trials) {
        public double score() {
            return trials.isEmpty() ? 0 : trials.stream().mapToDouble(Trial::score).average().orElse(0);
        }
    }

    public record Result(Variant variant, int needles, int queries, List<LengthResult> lengths, long seed, boolean chat, String haystack) {
        /** The result as one JSON object (the CLI's report.json). */
        public String toJson() {
            return tree().toString();
        }

        private ObjectNode tree() {
            ObjectNode root = new ObjectMapper().createObjectNode();
            root.put("eval", "ruler-niah").put("variant", variant.id()).put("needles", needles).put("queries", queries)
                    .put("seed", seed).put("chat", chat).put("haystack", haystack);
            ArrayNode ls = root.putArray("lengths");
            for (LengthResult l : lengths) {
                ObjectNode o = ls.addObject().put("length", l.length()).put("score", l.score()).put("trials", l.trials().size());
                ArrayNode ts = o.putArray("samples");
                for (Trial t : l.trials()) {
                    ObjectNode s = ts.addObject();
                    ArrayNode ns = s.putArray("needles");
                    for (Needle n : t.needles()) ns.addObject().put("key", n.key()).put("number", n.number()).put("depth", n.depth());
                    ArrayNode asked = s.putArray("asked");
                    t.asked().forEach(asked::add);
                    ArrayNode expected = s.putArray("expected");
                    t.expected().forEach(expected::add);
                    s.put("prompt_tokens", t.promptTokens()).put("answer", t.answer()).put("score", t.score());
                }
            }
            return root;
        }
    }

    /**
     * What one trial asks: the needles (key, number) in the order drawn with the depths drawn for
     * them, the keys asked and the numbers a full answer holds.
     */
    public record Spec(List<String> keys, List<Integer> numbers, double[] depths, List<String> asked, List<Integer> expected) {}

    private RulerNiah() {}

    public static String needle(String key, int number) {
        return "One of the special magic numbers for " + key + " is: " + number + ".";
    }

    /** The question, RULER's wording: singular for one number, plural otherwise; several keys joined "a, b, and c". */
    public static String question(Variant v, List<String> asked) {
        if (v == Variant.MULTIKEY) return "What is the special magic number for " + asked.get(0) + " mentioned in the provided text?";
        return "What are all the special magic numbers for " + join(asked) + " mentioned in the provided text?";
    }

    /** What a raw prompt ends with, so that the continuation is the numbers. */
    public static String answerPrefix(Variant v, List<String> asked) {
        if (v == Variant.MULTIKEY) return "The special magic number for " + asked.get(0) + " mentioned in the provided text is";
        return "The special magic numbers for " + join(asked) + " mentioned in the provided text are";
    }

    private static String join(List<String> keys) {
        if (keys.size() == 1) return keys.get(0);
        if (keys.size() == 2) return keys.get(0) + " and " + keys.get(1);
        return String.join(", ", keys.subList(0, keys.size() - 1)) + ", and " + keys.get(keys.size() - 1);
    }

    /** The fraction of {@code expected} numbers that occur in the answer as text (RULER's string_match_all). */
    public static double score(String answer, List<Integer> expected) {
        if (expected.isEmpty()) throw new IllegalArgumentException("nothing expected");
        long hit = expected.stream().filter(n -> answer.contains(Integer.toString(n))).count();
        return hit / (double) expected.size();
    }

    /**
     * Draws one trial: {@code needles} needles and, for multiquery, {@code queries} of their keys to
     * ask. Numbers are distinct 7-digit values, so a partial answer is scored without ambiguity;
     * keys are distinct except in multivalue, where every needle has the one key.
     */
    public static Spec draw(Variant v, int needles, int queries, SplittableRandom rng) {
        check(v, needles, queries);
        List<String> keys = new ArrayList<>();
        Set<String> usedKeys = new HashSet<>();
        List<Integer> numbers = new ArrayList<>();
        Set<Integer> usedNumbers = new HashSet<>();
        String shared = WORDS.get(rng.nextInt(WORDS.size()));
        double[] depths = new double[needles];
        for (int i = 0; i < needles; i++) {
            String key = shared;
            if (v != Variant.MULTIVALUE) {
                do key = WORDS.get(rng.nextInt(WORDS.size())); while (!usedKeys.add(key));
            }
            keys.add(key);
            int number;
            do number = 1_000_000 + rng.nextInt(9_000_000); while (!usedNumbers.add(number));
            numbers.add(number);
            depths[i] = rng.nextDouble();
        }
        List<String> asked;
        List<Integer> expected;
        switch (v) {
            case MULTIKEY -> {
                int i = rng.nextInt(needles);
                asked = List.of(keys.get(i));
                expected = List.of(numbers.get(i));
            }
            case MULTIVALUE -> {
                asked = List.of(shared);
                expected = List.copyOf(numbers);
            }
            default -> {
                // the asked keys are the first `queries` of a shuffled order: some or all of the needles
                List<Integer> idx = new ArrayList<>();
                for (int i = 0; i < needles; i++) idx.add(i);
                for (int i = needles - 1; i > 0; i--) java.util.Collections.swap(idx, i, rng.nextInt(i + 1));
                List<String> a = new ArrayList<>();
                List<Integer> e = new ArrayList<>();
                for (int j = 0; j < queries; j++) {
                    a.add(keys.get(idx.get(j)));
                    e.add(numbers.get(idx.get(j)));
                }
                asked = List.copyOf(a);
                expected = List.copyOf(e);
            }
        }
        return new Spec(List.copyOf(keys), List.copyOf(numbers), depths, asked, expected);
    }

    private static void check(Variant v, int needles, int queries) {
        if (needles < 1) throw new IllegalArgumentException("needles must be at least 1, got " + needles);
        if (needles > WORDS.size()) throw new IllegalArgumentException("at most " + WORDS.size() + " needles, got " + needles);
        if (v == Variant.MULTIQUERY && (queries < 1 || queries > needles)) {
            throw new IllegalArgumentException("queries must be between 1 and the needle count " + needles + ", got " + queries);
        }
    }

    /** The prompt of one trial. */
    public static Haystack.BuiltMany prompt(Haystack builder, Variant v, Spec s, int length) {
        List<String> ns = new ArrayList<>();
        for (int i = 0; i < s.keys().size(); i++) ns.add(needle(s.keys().get(i), s.numbers().get(i)));
        return builder.buildMany(INSTRUCTION, ns, s.depths(), question(v, s.asked()), answerPrefix(v, s.asked()), length);
    }

    /**
     * Runs {@code trials} trials at each length, all drawn from {@code seed}. {@code queries} is
     * used by multiquery only (multikey asks one key, multivalue the one shared key).
     * {@code answer} maps prompt ids to the model's continuation; {@code haystackName} labels the report.
     */
    public static Result run(Tokenizer tok, boolean chat, String haystackText, String haystackName, Variant v, int needles, int queries,
                             int[] lengths, int trials, long seed, Function<int[], String> answer, Consumer<String> progress) {
        if (trials < 1) throw new IllegalArgumentException("trials must be at least 1, got " + trials);
        int q = v == Variant.MULTIQUERY ? queries : v == Variant.MULTIKEY ? 1 : needles;
        Haystack builder = new Haystack(tok, chat, haystackText);
        // every prompt is built before any generation, so a length too short for one fails at once
        SplittableRandom rng = new SplittableRandom(seed);
        Spec[][] specs = new Spec[lengths.length][trials];
        Haystack.BuiltMany[][] prompts = new Haystack.BuiltMany[lengths.length][trials];
        for (int l = 0; l < lengths.length; l++) {
            for (int i = 0; i < trials; i++) {
                specs[l][i] = draw(v, needles, queries, rng);
                prompts[l][i] = prompt(builder, v, specs[l][i], lengths[l]);
            }
        }
        List<LengthResult> out = new ArrayList<>();
        for (int l = 0; l < lengths.length; l++) {
            List<Trial> ts = new ArrayList<>();
            for (int i = 0; i < trials; i++) {
                Spec s = specs[l][i];
                Haystack.BuiltMany p = prompts[l][i];
                prompts[l][i] = null; // a long prompt's ids are not kept once answered
                String a = answer.apply(p.ids());
                List<Needle> placed = new ArrayList<>();
                for (int j = 0; j < needles; j++) placed.add(new Needle(s.keys().get(j), s.numbers().get(j), p.depths()[j]));
                ts.add(new Trial(List.copyOf(placed), s.asked(), s.expected(), p.length(), a, score(a, s.expected())));
            }
            LengthResult r = new LengthResult(lengths[l], List.copyOf(ts));
            if (progress != null) progress.accept(String.format("ruler-niah %s length %d: %.0f%%", v.id(), lengths[l], 100 * r.score()));
            out.add(r);
        }
        return new Result(v, needles, q, List.copyOf(out), seed, chat, haystackName);
    }
}
