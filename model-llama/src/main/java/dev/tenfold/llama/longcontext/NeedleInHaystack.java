package dev.tenfold.llama.longcontext;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Needle in a haystack as the ten-fold recipe runs it: the San Francisco needle at each depth of
 * each context length, greedy answers scored by ROUGE-L F1 against the needle and by whether they
 * contain the needle's key fact.
 */
public final class NeedleInHaystack {
    public static final String NEEDLE =
            "The best thing to do in San Francisco is sitting in Dolores Park and eating a hamburg on a sunny day.";
    public static final String QUESTION = "What is the best thing to do in San Francisco?";
    /** What a correct answer must contain (case and spacing ignored). */
    public static final String KEY_FACT = "Dolores Park";
    public static final String INSTRUCTION =
            "You are a helpful AI bot that answers questions for a user. Keep your response short and direct. "
            + "Read the document below and answer the question at its end.";
    /** Raw (base-model) prompts end here, so the continuation is the answer. */
    public static final String ANSWER_PREFIX = "Answer: The best thing to do in San Francisco is";
    /**
     * What a raw prompt's continuation is scored against: the needle after the words the answer
     * prefix already restates, so a model gets no credit for the prefix it was given.
     */
    public static final String NEEDLE_ANSWER = "sitting in Dolores Park and eating a hamburg on a sunny day.";

    /** A built-in haystack for offline runs: plain original prose with many sentence boundaries. */
    public static final String BUILTIN_HAYSTACK = """
            Most of the work that matters happens slowly, and most of it looks like nothing from the outside. \
            A gardener spends a season on soil before anything grows. A carpenter spends a morning sharpening tools. \
            People who build things learn to enjoy the long middle of a project, when the plan is set and the result is far away. \
            The early days are exciting because everything is possible. The late days are exciting because the end is near. \
            The middle is where the real effort goes, and it rewards patience more than talent. \
            Good habits help because they remove decisions. If you always write in the morning, you never have to decide to write. \
            If you always walk after lunch, the walk stops being a chore and becomes part of the day. \
            Cities have habits too. Markets open at the same hour, trains leave on time, and bakeries fill the street with bread before dawn. \
            A visitor notices the buildings first, but a resident notices the rhythm. \
            Rivers shape valleys over thousands of years, one grain of sand at a time. \
            Mountains look permanent, yet they are rising and wearing away at once. \
            Libraries keep the memory of a place. Old maps show roads that no longer exist and coastlines that have moved. \
            Reading them is a reminder that every map is a guess about a world that keeps changing. \
            Teachers say that the best questions are the simple ones. Why is the sky blue? Why do leaves fall? \
            Simple questions have deep answers, and the people who keep asking them tend to learn the most. \
            Engineers know that a system is only as strong as its weakest part. \
            A bridge with one bad bolt is a bad bridge, however fine the rest may be. \
            So they test every part, and then they test the parts together, and then they test them again after a year of use. \
            Weather changes plans more often than people admit. A picnic becomes a museum visit, and a long drive becomes a day of reading. \
            The trick is to hold plans loosely and goals firmly. \
            Friendships grow in small moments: a shared meal, a long call, a favour done without being asked. \
            Over years those moments add up to something that no single day could explain.""";

    public record Cell(int length, double depth, double actualDepth, int promptTokens, String answer, double rouge, boolean contains) {}

    public record Result(int[] lengths, double[] depths, Cell[][] cells, boolean chat, String haystack) {
        /** ROUGE-L per [length][depth]. */
        public double[][] rougeGrid() {
            double[][] g = new double[lengths.length][depths.length];
            for (int i = 0; i < lengths.length; i++) for (int j = 0; j < depths.length; j++) g[i][j] = cells[i][j].rouge();
            return g;
        }

        public double meanRouge() {
            double s = 0;
            for (Cell[] row : cells) for (Cell c : row) s += c.rouge();
            return s / (lengths.length * depths.length);
        }

        public double containsRate() {
            int n = 0;
            for (Cell[] row : cells) for (Cell c : row) if (c.contains()) n++;
            return n / (double) (lengths.length * depths.length);
        }

        /** The result as one JSON object (the CLI's report.json). */
        public String toJson() {
            return tree().toString();
        }

        private ObjectNode tree() {
            ObjectNode root = new ObjectMapper().createObjectNode();
            root.put("eval", "niah").put("chat", chat).put("haystack", haystack).put("needle", NEEDLE).put("question", QUESTION)
                    .put("reference", chat ? NEEDLE : NEEDLE_ANSWER);
            ArrayNode l = root.putArray("lengths");
            for (int x : lengths) l.add(x);
            ArrayNode d = root.putArray("depths");
            for (double x : depths) d.add(x * 100);
            root.put("mean_rouge_l", meanRouge()).put("contains_rate", containsRate());
            ArrayNode grid = root.putArray("rouge_l");
            for (double[] row : rougeGrid()) {
                ArrayNode r = grid.addArray();
                for (double v : row) r.add(v);
            }
            ArrayNode samples = root.putArray("samples");
            for (Cell[] row : cells) for (Cell c : row) {
                samples.addObject().put("length", c.length()).put("depth", c.depth() * 100).put("actual_depth", c.actualDepth() * 100)
                        .put("prompt_tokens", c.promptTokens()).put("answer", c.answer()).put("rouge_l", c.rouge())
                        .put("contains", c.contains());
            }
            return root;
        }
    }

    private NeedleInHaystack() {}

    /** Whether the answer states the key fact, case and runs of spaces ignored. */
    public static boolean containsKeyFact(String answer) {
        return normalize(answer).contains(normalize(KEY_FACT));
    }

    private static String normalize(String s) {
        return s.toLowerCase(Locale.ROOT).replaceAll("\\s+", " ");
    }

    /** The prompt of one cell. */
    public static Haystack.Built prompt(Haystack builder, double depth, int length) {
        return builder.build(INSTRUCTION, NEEDLE, depth, QUESTION, ANSWER_PREFIX, length);
    }

    /**
     * Runs the grid. {@code depths} are fractions 0..1. A chat answer is scored against the whole
     * needle; a raw continuation (after "... San Francisco is") against {@link #NEEDLE_ANSWER}.
     * {@code haystackName} only labels the report.
     */
    public static Result run(Tokenizer tok, boolean chat, String haystackText, String haystackName, int[] lengths, double[] depths,
                             Function<int[], String> answer, Consumer<String> progress) {
        Haystack builder = new Haystack(tok, chat, haystackText);
        for (int length : lengths) prompt(builder, 0.5, length); // a too-short length fails before any generation
        Cell[][] cells = new Cell[lengths.length][depths.length];
        for (int i = 0; i < lengths.length; i++) {
            for (int j = 0; j < depths.length; j++) {
                Haystack.Built p = prompt(builder, depths[j], lengths[i]);
                String generated = answer.apply(p.ids());
                cells[i][j] = new Cell(lengths[i], depths[j], p.depth(), p.length(), generated,
                        RougeL.f1(generated, chat ? NEEDLE : NEEDLE_ANSWER), containsKeyFact(generated));
                if (progress != null) {
                    progress.accept(String.format("niah length %d depth %.0f%%: rouge-l %.2f", lengths[i], depths[j] * 100, cells[i][j].rouge()));
                }
            }
        }
        return new Result(lengths.clone(), depths.clone(), cells, chat, haystackName);
    }
}
