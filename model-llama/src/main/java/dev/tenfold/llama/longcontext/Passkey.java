package dev.tenfold.llama.longcontext;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The pass-key retrieval test (Mohtashami and Jaggi; LongLoRA): a 5-digit key hidden at a random
 * depth in repeated filler, asked for at the end; a trial passes when the first number in the
 * greedy continuation is the key.
 */
public final class Passkey {
    public static final String INSTRUCTION = "There is an important info hidden inside a lot of irrelevant text. "
            + "Find it and memorize it. I will quiz you about the important information there.";
    public static final String FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
    public static final String QUESTION = "What is the pass key?";
    public static final String ANSWER_PREFIX = "The pass key is";

    private static final Pattern NUMBER = Pattern.compile("\\d+");

    public record Trial(int key, double depth, int promptTokens, String answer, boolean correct) {}

    public record LengthResult(int length, List<Trial> trials) {
        public double accuracy() {
            return trials.isEmpty() ? 0 : trials.stream().filter(Trial::correct).count() / (double) trials.size();
        }
    }

    public record Result(List<LengthResult> lengths, long seed, boolean chat) {
        /** The result as one JSON object (the CLI's report.json). */
        public String toJson() {
            return tree().toString();
        }

        private ObjectNode tree() {
            ObjectNode root = new ObjectMapper().createObjectNode();
            root.put("eval", "passkey").put("seed", seed).put("chat", chat);
            ArrayNode ls = root.putArray("lengths");
            for (LengthResult l : lengths) {
                ObjectNode o = ls.addObject().put("length", l.length()).put("accuracy", l.accuracy()).put("trials", l.trials().size());
                ArrayNode ts = o.putArray("samples");
                for (Trial t : l.trials()) {
                    ts.addObject().put("key", t.key()).put("depth", t.depth()).put("prompt_tokens", t.promptTokens())
                            .put("answer", t.answer()).put("correct", t.correct());
                }
            }
            return root;
        }
    }

    private Passkey() {}

    /** The line hidden in the haystack. */
    public static String needle(int key) {
        return "The pass key is " + key + ". Remember it. " + key + " is the pass key.";
    }

    /** The whole answer to the question, as a chat model gives it: "The pass key is N.". */
    public static String answer(int key) {
        return ANSWER_PREFIX + " " + key + ".";
    }

    /** Whether the first number in {@code answer} is exactly {@code key} ("12345." and " 12345 is" pass; "1234" and "123456" fail). */
    public static boolean matches(String answer, int key) {
        Matcher m = NUMBER.matcher(answer);
        return m.find() && m.group().equals(Integer.toString(key));
    }

    /** The prompt of one trial. */
    public static Haystack.Built prompt(Haystack builder, int key, double depth, int length) {
        return builder.build(INSTRUCTION, needle(key), depth, QUESTION, ANSWER_PREFIX, length);
    }

    /**
     * Runs {@code trials} trials at each length: random 5-digit keys and uniform random depths from
     * {@code seed}. {@code answer} maps prompt ids to the model's continuation text.
     */
    public static Result run(Tokenizer tok, boolean chat, int[] lengths, int trials, long seed,
                             Function<int[], String> answer, java.util.function.Consumer<String> progress) {
        if (trials < 1) throw new IllegalArgumentException("trials must be at least 1, got " + trials);
        Haystack builder = new Haystack(tok, chat, FILLER);
        // fail on a length too short for the question before spending any time generating
        for (int length : lengths) prompt(builder, 99999, 0.5, length);
        SplittableRandom rng = new SplittableRandom(seed);
        List<LengthResult> out = new ArrayList<>();
        for (int length : lengths) {
            List<Trial> ts = new ArrayList<>();
            for (int i = 0; i < trials; i++) {
                int key = 10000 + rng.nextInt(90000);
                double depth = rng.nextDouble();
                Haystack.Built p = prompt(builder, key, depth, length);
                String a = answer.apply(p.ids());
                ts.add(new Trial(key, p.depth(), p.length(), a, matches(a, key)));
            }
            LengthResult r = new LengthResult(length, List.copyOf(ts));
            if (progress != null) progress.accept(String.format("passkey length %d: %.0f%%", length, 100 * r.accuracy()));
            out.add(r);
        }
        return new Result(List.copyOf(out), seed, chat);
    }
}
