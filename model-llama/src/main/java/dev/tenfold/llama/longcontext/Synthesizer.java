package dev.tenfold.llama.longcontext;

import dev.tenfold.llama.tokenizer.ChatTemplate.Message;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.UUID;

/**
 * Synthetic long-context training records (passkey, needle in a haystack, key-value retrieval,
 * multi-detail QA over a corpus) at a target length in tokens, without any language model. Each
 * record is a conversation that, rendered with the Llama-3 chat template, is at most the target and
 * at least target * (1 - tolerance) tokens, and a pure function of (task, target length, seed,
 * corpus, tokenizer).
 *
 * <p>The prose tasks (passkey, niah, multi-detail) are built by the evaluations' own
 * {@link Haystack} in chat form, with the evaluations' texts: a passkey record is exactly the chat
 * prompt of {@code tenfold eval passkey} followed by its answer. The facts are planted at sentence
 * boundaries near random depths, and the first question closes the first user turn; further
 * questions follow as turns of their own. The key-value task's context is a JSON object, no prose
 * haystack: its entries are counted out to the length, the last one cut short when needed.
 *
 * <p>Answers are the planted text itself (the fact sentence, or the value of a key), so each answer
 * is found verbatim in the context: exactly derivable from it, never from outside knowledge.
 */
public final class Synthesizer {
    /** How far below the target a record may end up, as a fraction of the target. */
    public static final double DEFAULT_TOLERANCE = 0.02;

    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final Corpus corpus;
    private final double tolerance;

    /** With the default tolerance; corpus may be null (then niah uses the NIAH evaluation's built-in haystack and multi-detail fails). */
    public Synthesizer(Tokenizer tokenizer, Corpus corpus) {
        this(tokenizer, corpus, DEFAULT_TOLERANCE);
    }

    public Synthesizer(Tokenizer tokenizer, Corpus corpus, double tolerance) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.template = new ChatTemplate(tokenizer);
        this.corpus = corpus;
        if (!(tolerance > 0 && tolerance < 0.5)) throw new IllegalArgumentException("tolerance " + tolerance + " not in (0, 0.5)");
        this.tolerance = tolerance;
    }

    /** The lowest length a record for this target may have. */
    public int minTokens(int targetTokens) {
        return targetTokens - Math.max(1, (int) Math.floor(tolerance * targetTokens));
    }

    /**
     * A seed for record {@code index} at target length {@code targetTokens} of a run seeded
     * {@code seed}: distinct records per (length, index), and adding lengths or records to a run does
     * not change the others.
     */
    public static long recordSeed(long seed, int targetTokens, int index) {
        long h = seed * 0x9E3779B97F4A7C15L + targetTokens;
        h = (h ^ (h >>> 31)) * 0xBF58476D1CE4E5B9L + index;
        return (h ^ (h >>> 29)) * 0x94D049BB133111EBL;
    }

    /**
     * One record. Fails with an {@link IllegalArgumentException} if the task needs a corpus and has
     * none, or if the target is shorter than the record's fixed parts (instructions, questions,
     * answers and planted facts).
     */
    public SynthRecord generate(SynthTask task, int targetTokens, long seed) {
        Objects.requireNonNull(task, "task");
        if (targetTokens < 1) throw new IllegalArgumentException("target length " + targetTokens + " < 1");
        if (task.needsCorpus() && corpus == null) {
            throw new IllegalArgumentException("task " + task + " builds its contexts from a text corpus: give the Synthesizer one");
        }
        SplittableRandom rng = new SplittableRandom(seed);
        if (task == SynthTask.KV) {
            Plan plan = kv(rng, seed);
            Fit fit = fit(plan, task, targetTokens);
            return new SynthRecord(task, targetTokens, fit.tokens, plan.conversation(fit.units, fit.partial), plan.answers());
        }
        Planted planted = switch (task) {
            case PASSKEY -> passkey(rng);
            case NIAH -> niah(rng);
            case MULTI_DETAIL -> multiDetail(rng);
            case KV -> throw new IllegalStateException();
        };
        return inHaystack(task, planted, targetTokens);
    }

    // ---------------------------------------------------------------------------------- tasks

    /** The pass-key evaluation's record: its instruction, filler, key line and question; the answer "The pass key is N.". */
    private Planted passkey(SplittableRandom rng) {
        int key = 10_000 + rng.nextInt(90_000);
        return new Planted(Passkey.INSTRUCTION, Passkey.FILLER, List.of(Passkey.needle(key)), new double[] {rng.nextDouble()},
                List.of(new QA(Passkey.QUESTION, Passkey.answer(key))));
    }

    private static final String[] NIAH_WORDS = {
        "amber", "lighthouse", "tangerine", "glacier", "violin", "harbor", "meadow", "compass", "lantern", "orchid",
        "granite", "falcon", "saffron", "canyon", "velvet", "thistle", "cobalt", "juniper", "marble", "quill",
    };
    private static final String[] PLACES = {
        "old oak tree", "stone bridge", "red barn", "blue door", "garden shed", "clock tower", "wine cellar",
        "attic", "kitchen drawer", "piano bench", "green cabinet", "library shelf",
    };

    /** One fact in a corpus or the built-in filler: RULER's magic number, a password, or a hiding place. */
    private Planted niah(SplittableRandom rng) {
        String word = pick(rng, NIAH_WORDS);
        String needle;
        String question;
        switch (rng.nextInt(3)) {
            case 0 -> {
                needle = RulerNiah.needle(word, 1_000_000 + rng.nextInt(9_000_000));
                question = RulerNiah.question(RulerNiah.Variant.MULTIKEY, List.of(word));
            }
            case 1 -> {
                needle = "The secret password of " + word + " is " + pick(rng, NIAH_WORDS) + "-" + (1000 + rng.nextInt(9000)) + ".";
                question = "What is the secret password of " + word + "?";
            }
            default -> {
                needle = "The hidden treasure of " + word + " lies under the " + pick(rng, PLACES) + ".";
                question = "Where does the hidden treasure of " + word + " lie?";
            }
        }
        String haystack = corpus == null ? NeedleInHaystack.BUILTIN_HAYSTACK : corpusText(rng.nextInt(corpus.size()));
        return new Planted("A special fact is hidden somewhere in the text below. Read it carefully and answer the question after it.",
                haystack, List.of(needle), new double[] {rng.nextDouble()}, List.of(new QA(question, needle)));
    }

    private Plan kv(SplittableRandom rng, long seed) {
        int asked = 1 + rng.nextInt(3);
        List<String> planted = new ArrayList<>();
        List<QA> qa = new ArrayList<>();
        double[] depths = new double[asked];
        for (int j = 0; j < asked; j++) {
            String key = uuid(rng), value = uuid(rng);
            planted.add(entry(key, value));
            depths[j] = rng.nextDouble();
            qa.add(new QA("What is the value associated with the key \"" + key + "\"?", value));
        }
        // The filler entries come from their own stream (seeded per index), so entry i is the same
        // whatever the number of entries the length search tries.
        long fillerSeed = rng.nextLong() ^ seed;
        Filler entries = new Filler() {
            private String[] pair(int i) {
                SplittableRandom r = new SplittableRandom(recordSeed(fillerSeed, 0, i));
                return new String[] {uuid(r), uuid(r)};
            }

            @Override public String unit(int i) {
                String[] p = pair(i);
                return entry(p[0], p[1]);
            }

            @Override public String separatorAfter(int i) {
                return ",\n";
            }

            @Override public int parts(int i) {
                return 36; // the length of a UUID
            }

            @Override public String partial(int i, int k) {
                // A shorter but well-formed entry: both strings cut to k characters.
                String[] p = pair(i);
                return entry(p[0].substring(0, k), p[1].substring(0, k));
            }
        };
        return new Plan("Extract the value corresponding to each specified key from the JSON object below.",
                "JSON data:\n{", "}", ",\n", entries, planted, depths, qa);
    }

    private static String entry(String key, String value) {
        return "\"" + key + "\": \"" + value + "\"";
    }

    private static final String[] FIRST = {
        "Orla", "Tobias", "Ines", "Kofi", "Marguerite", "Soren", "Priya", "Emeric", "Yusra", "Dashiell", "Liesl", "Anselm",
        "Noor", "Caspian", "Wilhelmina", "Ravi", "Beatrix", "Oisin", "Ximena", "Leopold",
    };
    private static final String[] LAST = {
        "Venkatesan", "Achterberg", "Okonkwo", "Fairweather", "Lindqvist", "Castellanos", "Moreau", "Halvorsen",
        "Quennell", "Abernathy", "Takahashi", "Brannigan", "Zielinski", "Oyelaran", "Pemberton", "Vasquez",
    };
    private static final String[] OBJECTS = {
        "brass key", "silver locket", "umbrella", "chess set", "telescope", "notebook", "violin", "map", "teapot",
        "pocket watch", "camera", "spare glasses",
    };
    private static final String[] COLOURS = {"crimson", "teal", "ochre", "lavender", "olive", "scarlet", "indigo", "amber"};
    private static final String[] CITIES = {
        "Lisbon", "Tromso", "Valparaiso", "Kyoto", "Marrakesh", "Tallinn", "Hobart", "Cusco", "Ljubljana", "Windhoek",
    };
    private static final String[] ANIMALS = {"cat", "goat", "parrot", "tortoise", "rabbit", "horse", "ferret", "duck"};

    private Planted multiDetail(SplittableRandom rng) {
        int k = 3 + rng.nextInt(3);
        // Every fact is about a different person, so each question has exactly one answer.
        List<String> names = new ArrayList<>();
        while (names.size() < k) {
            String n = pick(rng, FIRST) + " " + pick(rng, LAST);
            if (!names.contains(n)) names.add(n);
        }
        List<String> planted = new ArrayList<>();
        List<QA> qa = new ArrayList<>();
        double[] depths = new double[k];
        for (int j = 0; j < k; j++) {
            String n = names.get(j);
            String fact;
            String question;
            switch (rng.nextInt(6)) {
                case 0 -> {
                    String obj = pick(rng, OBJECTS);
                    fact = n + " keeps the " + obj + " in the " + pick(rng, PLACES) + ".";
                    question = "Where does " + n + " keep the " + obj + "?";
                }
                case 1 -> {
                    fact = n + " was born in " + (1900 + rng.nextInt(110)) + ".";
                    question = "In which year was " + n + " born?";
                }
                case 2 -> {
                    fact = n + "'s favourite colour is " + pick(rng, COLOURS) + ".";
                    question = "What is " + n + "'s favourite colour?";
                }
                case 3 -> {
                    fact = "The locker code of " + n + " is " + (1000 + rng.nextInt(9000)) + ".";
                    question = "What is the locker code of " + n + "?";
                }
                case 4 -> {
                    fact = n + " moved to " + pick(rng, CITIES) + " in " + (1950 + rng.nextInt(70)) + ".";
                    question = "Which city did " + n + " move to, and in which year?";
                }
                default -> {
                    String animal = pick(rng, ANIMALS);
                    fact = n + " owns " + (2 + rng.nextInt(8)) + " " + animal + "s.";
                    question = "How many " + animal + "s does " + n + " own?";
                }
            }
            planted.add(fact);
            depths[j] = rng.nextDouble();
            qa.add(new QA(question, fact));
        }
        // Asked in an order unrelated to where the facts sit.
        Collections.shuffle(qa, new java.util.Random(rng.nextLong()));
        return new Planted("Read the text below. A few details about people are mentioned in it; answer the questions about them.",
                corpusText(rng.nextInt(corpus.size())), planted, depths, qa);
    }

    private static String pick(SplittableRandom rng, String[] options) {
        return options[rng.nextInt(options.length)];
    }

    private static String uuid(SplittableRandom rng) {
        long hi = (rng.nextLong() & ~0xF000L) | 0x4000L; // version 4
        long lo = (rng.nextLong() & 0x3FFFFFFFFFFFFFFFL) | 0x8000000000000000L; // IETF variant
        return new UUID(hi, lo).toString();
    }

    // ---------------------------------------------------------------------------------- filler

    /** An endless stream of context units; unit i never depends on how many are used. */
    interface Filler {
        String unit(int i);

        /** What joins unit i to the next piece. */
        String separatorAfter(int i);

        /** How many parts unit i can be cut into ({@link #partial} takes 1 .. parts-1 of them). */
        int parts(int i);

        /** Unit i cut short to its first k parts. */
        String partial(int i, int k);
    }

    /** The corpus's sentences from a start sentence on, wrapping round at the end, paragraphs kept. */
    private String corpusText(int start) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < corpus.size(); i++) {
            int k = (start + i) % corpus.size();
            sb.append(corpus.sentence(k));
            if (i + 1 < corpus.size()) sb.append(corpus.endsParagraph(k) || k == corpus.size() - 1 ? "\n\n" : " ");
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------------------------- prose tasks

    /**
     * A prose task: its instruction, the haystack's text (repeated as needed), the facts with the
     * depths they go to, and the questions with their answers (the first question closes the
     * context's turn).
     */
    record Planted(String instruction, String filler, List<String> facts, double[] depths, List<QA> qa) {
        List<String> answers() {
            List<String> out = new ArrayList<>();
            for (QA q : qa) out.add(q.answer());
            return out;
        }

        /** The conversation with {@code document} (the haystack with the facts) as the context. */
        List<Message> conversation(String document) {
            List<Message> out = new ArrayList<>();
            for (int j = 0; j < qa.size(); j++) {
                String q = qa.get(j).question();
                out.add(Message.user(j == 0 ? instruction + "\n\n" + document + "\n\n" + q : q));
                out.add(Message.assistant(qa.get(j).answer()));
            }
            return out;
        }
    }

    /**
     * The record of a prose task, its first turn built by {@link Haystack} (chat form) to the length
     * that leaves room for the rest of the conversation. The haystack is cut on a word, and the
     * rendered conversation is measured: the length is corrected until it lies within the tolerance.
     */
    private SynthRecord inHaystack(SynthTask task, Planted p, int target) {
        int fixed = template.render(p.conversation(String.join(" ", p.facts())), false).length();
        if (fixed > target) throw tooShort(task, target, fixed);
        int min = minTokens(target);
        Haystack haystack = new Haystack(tokenizer, true, p.filler());
        // what follows the first turn's assistant header: the answers and the later turns
        String placeholder = String.join(" ", p.facts());
        int rest = template.render(p.conversation(placeholder), false).length()
                - template.render(p.conversation(placeholder).subList(0, 1), true).length();
        int inner = target - rest;
        SynthRecord best = null;
        for (int attempt = 0; attempt < 16; attempt++) {
            Haystack.BuiltMany b;
            try {
                b = haystack.buildMany(p.instruction(), p.facts(), p.depths(), p.qa().get(0).question(), "", inner);
            } catch (IllegalArgumentException e) {
                break; // the fixed parts alone fill the turn
            }
            List<Message> conversation = p.conversation(b.document());
            int tokens = template.render(conversation, false).length();
            if (tokens <= target && (best == null || tokens > best.tokens())) {
                best = new SynthRecord(task, target, tokens, conversation, p.answers());
            }
            if (tokens <= target && tokens >= min) break;
            inner += tokens > target ? target - tokens : Math.max(1, (target + min) / 2 - tokens);
        }
        if (best == null) throw tooShort(task, target, fixed);
        return best;
    }

    private static IllegalArgumentException tooShort(SynthTask task, int target, int fixed) {
        return new IllegalArgumentException("target length " + target + " tokens is shorter than the fixed parts of a " + task
                + " record (" + fixed + " tokens of instructions, questions, answers and planted facts)");
    }

    // ---------------------------------------------------------------------------------- plan

    record QA(String question, String answer) {}

    /**
     * Everything about a record but its length. The context is
     * {@code head + units and planted lines joined + tail}; planted line j goes before filler unit
     * round(depths[j] * n) when n units are used.
     */
    record Plan(String instruction, String head, String tail, String plantedSeparator, Filler filler,
                List<String> planted, double[] depths, List<QA> qa) {

        List<String> answers() {
            List<String> out = new ArrayList<>();
            for (QA q : qa) out.add(q.answer());
            return out;
        }

        /** The context from n whole filler units and, if partial > 0, the first partial parts of unit n. */
        String context(int n, int partial) {
            StringBuilder sb = new StringBuilder(head);
            String pendingSeparator = null;
            for (int i = 0; i <= n; i++) {
                for (int j = 0; j < planted.size(); j++) {
                    if ((int) Math.round(depths[j] * n) != i) continue;
                    if (pendingSeparator != null) sb.append(pendingSeparator);
                    sb.append(planted.get(j));
                    pendingSeparator = plantedSeparator;
                }
                String unit = i < n ? filler.unit(i) : partial > 0 ? filler.partial(n, partial) : null;
                if (unit == null) continue;
                if (pendingSeparator != null) sb.append(pendingSeparator);
                sb.append(unit);
                pendingSeparator = filler.separatorAfter(i);
            }
            return sb.append(tail).toString();
        }

        List<Message> conversation(int n, int partial) {
            List<Message> out = new ArrayList<>();
            for (int j = 0; j < qa.size(); j++) {
                String q = qa.get(j).question();
                out.add(Message.user(j == 0 ? instruction + "\n\n" + context(n, partial) + "\n\n" + q : q));
                out.add(Message.assistant(qa.get(j).answer()));
            }
            return out;
        }
    }

    // ---------------------------------------------------------------------------------- length

    private record Fit(int units, int partial, int tokens) {}

    private int length(Plan plan, int n, int partial) {
        return template.render(plan.conversation(n, partial), false).length();
    }

    /**
     * Finds how many filler units bring the record within [minTokens(target), target]. Unit costs
     * are estimated by tokenizing each unit alone (nearly additive: the pre-tokenizer splits at the
     * spaces between them); whole renders then correct the estimate. Keeps lo (most units known to
     * fit) and hi (fewest known not to), so the search ends even where the estimate is off.
     */
    private Fit fit(Plan plan, SynthTask task, int target) {
        int min = minTokens(target);
        int fixed = length(plan, 0, 0);
        if (fixed > target) throw tooShort(task, target, fixed);
        if (fixed >= min) return new Fit(0, 0, fixed);
        List<Integer> costs = new ArrayList<>();
        int lo = 0, loTokens = fixed;
        int hi = Integer.MAX_VALUE;
        // First guess: add estimated costs up to the target.
        int n = 0;
        for (long acc = fixed; acc + cost(plan, costs, n) <= target; n++) acc += cost(plan, costs, n);
        for (int round = 0; round < 64 && hi - lo > 1; round++) {
            if (n <= lo || n >= hi) n = hi == Integer.MAX_VALUE ? lo + 1 : lo + (hi - lo) / 2;
            int tokens = length(plan, n, 0);
            if (tokens > target) {
                hi = n;
                int next = n;
                for (long removed = 0; removed < tokens - target && next > lo + 1; ) removed += cost(plan, costs, --next);
                n = round < 8 ? next : lo + (hi - lo) / 2; // after a few rounds, plain bisection
            } else {
                lo = n;
                loTokens = tokens;
                if (tokens >= min) return new Fit(n, 0, tokens);
                int next = n;
                for (long added = 0; ; next++) {
                    added += cost(plan, costs, next);
                    if (added > target - tokens) break;
                }
                n = Math.max(next, n + 1);
                if (round >= 8 && hi != Integer.MAX_VALUE) n = lo + (hi - lo) / 2;
            }
        }
        // lo units are too few, lo + 1 too many: cut unit lo short, as long as it still fits.
        Fit best = new Fit(lo, 0, loTokens);
        int a = 1, b = plan.filler().parts(lo) - 1;
        while (a <= b) {
            int k = (a + b) >>> 1;
            int tokens = length(plan, lo, k);
            if (tokens <= target) {
                best = new Fit(lo, k, tokens);
                if (tokens >= min) break;
                a = k + 1;
            } else {
                b = k - 1;
            }
        }
        return best; // within the tolerance unless one part of a unit is longer than it
    }

    private int cost(Plan plan, List<Integer> costs, int i) {
        while (costs.size() <= i) {
            int j = costs.size();
            // A leading space, as the unit has inside the context.
            costs.add(tokenizer.encode(" " + plan.filler().unit(j) + plan.filler().separatorAfter(j).strip(), false).length);
        }
        return costs.get(i);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "Synthesizer[%s, tolerance %.3f]", corpus == null ? "no corpus" : corpus, tolerance);
    }
}
