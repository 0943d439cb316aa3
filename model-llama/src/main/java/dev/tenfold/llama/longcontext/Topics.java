package dev.tenfold.llama.longcontext;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * LongChat's topic retrieval (Li et al., 2023): a record of a conversation over N topics, each
 * opened by "USER: I would like to discuss the topic of TOPIC" and followed by some talk; the model
 * is asked for the first topic. Correct when the answer contains it, case and spacing ignored.
 * The prompt grows with the topic count, not to a token target.
 */
public final class Topics {
    public static final String QUESTION = "What is the first topic we discussed? Only give me the topic name. Do not summarize yourself.";
    /** Raw (base-model) prompts end here, so the continuation is the topic. */
    public static final String ANSWER_PREFIX = "ASSISTANT: The first topic we discussed is";

    public record Trial(List<String> topics, int promptTokens, String answer, boolean correct) {
        public String first() { return topics.get(0); }
    }

    public record CountResult(int count, List<Trial> trials) {
        public double accuracy() {
            return trials.isEmpty() ? 0 : trials.stream().filter(Trial::correct).count() / (double) trials.size();
        }

        public double meanPromptTokens() {
            return trials.stream().mapToInt(Trial::promptTokens).average().orElse(0);
        }
    }

    public record Result(List<CountResult> counts, int sentences, long seed, boolean chat, String topicsFile) {
        /** The result as one JSON object (the CLI's report.json). */
        public String toJson() {
            return tree().toString();
        }

        private ObjectNode tree() {
            ObjectNode root = new ObjectMapper().createObjectNode();
            root.put("eval", "topics").put("topics_file", topicsFile).put("sentences_per_topic", sentences).put("seed", seed).put("chat", chat);
            ArrayNode cs = root.putArray("counts");
            for (CountResult c : counts) {
                ObjectNode o = cs.addObject().put("count", c.count()).put("accuracy", c.accuracy()).put("trials", c.trials().size())
                        .put("mean_prompt_tokens", c.meanPromptTokens());
                ArrayNode ts = o.putArray("samples");
                for (Trial t : c.trials()) {
                    ObjectNode s = ts.addObject().put("first", t.first());
                    ArrayNode topics = s.putArray("topics");
                    t.topics().forEach(topics::add);
                    s.put("prompt_tokens", t.promptTokens()).put("answer", t.answer()).put("correct", t.correct());
                }
            }
            return root;
        }
    }

    private Topics() {}

    /**
     * The topics of a file's text: one per line, trimmed, blank lines skipped, repeats dropped (a
     * repeated topic would make "the first" ambiguous). Fails when fewer than {@code needed} remain.
     */
    public static List<String> parse(String text, String name, int needed) {
        LinkedHashSet<String> seen = new LinkedHashSet<>();
        for (String line : text.split("\\R")) {
            String t = line.strip();
            if (!t.isEmpty()) seen.add(t);
        }
        if (seen.isEmpty()) throw new IllegalArgumentException(name + ": no topics (one topic per line)");
        if (seen.size() < needed) {
            throw new IllegalArgumentException(name + ": " + seen.size() + " distinct topics, but a conversation of " + needed + " topics needs as many");
        }
        return List.copyOf(seen);
    }

    /** Whether the answer names the topic, case and runs of spaces ignored. */
    public static boolean matches(String answer, String topic) {
        return normalize(answer).contains(normalize(topic));
    }

    private static String normalize(String s) {
        return s.toLowerCase(Locale.ROOT).replaceAll("\\s+", " ").strip();
    }

    /** The conversation record and question as text (LongChat's wording); each topic is followed by {@code sentences} filler sentences. */
    public static String text(List<String> topics, List<String> filler, int sentences) {
        StringBuilder sb = new StringBuilder("Below is a record of our previous conversation on " + topics.size()
                + " different topics. You are the ASSISTANT, and I am the USER. At the beginning of each topic, the USER will say "
                + "'I would like to discuss the topic of <TOPIC>'. Memorize each <TOPIC>. At the end of the record, I will ask you "
                + "to retrieve the first topic. Now the record start.");
        int next = 0;
        for (String topic : topics) {
            sb.append("\n\nUSER: I would like to discuss the topic of ").append(topic).append(".\nASSISTANT:");
            // the filler continues where the last topic's left off, so the talk differs from topic to topic
            for (int i = 0; i < sentences; i++) sb.append(' ').append(filler.get(next++ % filler.size()));
        }
        return sb.append("\n\nNow the record ends. ").append(QUESTION).toString();
    }

    /** The prompt ids: one chat user turn plus the assistant header, or raw text after BOS ending in {@link #ANSWER_PREFIX}. */
    public static int[] prompt(Tokenizer tok, boolean chat, String text) {
        if (chat) return new ChatTemplate(tok).render(List.of(ChatTemplate.Message.user(text)), true).ids();
        return Haystack.concat(new int[] {tok.bosId()}, tok.encode(text + "\n" + ANSWER_PREFIX, false));
    }

    /** The filler's sentences (split after . ! or ?), what each topic's talk is drawn from. */
    public static List<String> sentences(String filler) {
        List<String> out = new ArrayList<>();
        for (String s : filler.strip().split("(?<=[.!?])\\s+")) if (!s.isBlank()) out.add(s.strip());
        if (out.isEmpty()) throw new IllegalArgumentException("the filler text is empty");
        return out;
    }

    /**
     * Runs {@code trials} conversations per topic count: each a seeded random choice of distinct
     * topics in a random order. {@code answer} maps prompt ids to the model's continuation text.
     */
    public static Result run(Tokenizer tok, boolean chat, List<String> topics, String topicsName, int[] counts, int sentences, int trials,
                             long seed, Function<int[], String> answer, Consumer<String> progress) {
        if (trials < 1) throw new IllegalArgumentException("trials must be at least 1, got " + trials);
        if (sentences < 0) throw new IllegalArgumentException("sentences per topic must be at least 0, got " + sentences);
        for (int c : counts) {
            if (c < 1) throw new IllegalArgumentException("a topic count must be at least 1, got " + c);
            if (c > topics.size()) throw new IllegalArgumentException(topicsName + ": " + topics.size() + " topics, fewer than the count " + c);
        }
        List<String> filler = sentences(NeedleInHaystack.BUILTIN_HAYSTACK);
        SplittableRandom rng = new SplittableRandom(seed);
        List<CountResult> out = new ArrayList<>();
        for (int count : counts) {
            List<Trial> ts = new ArrayList<>();
            for (int i = 0; i < trials; i++) {
                // a partial Fisher-Yates shuffle: the first `count` of a random order of all topics
                List<String> pool = new ArrayList<>(topics);
                for (int j = 0; j < count; j++) java.util.Collections.swap(pool, j, j + rng.nextInt(pool.size() - j));
                List<String> chosen = List.copyOf(pool.subList(0, count));
                int[] ids = prompt(tok, chat, text(chosen, filler, sentences));
                String a = answer.apply(ids);
                ts.add(new Trial(chosen, ids.length, a, matches(a, chosen.get(0))));
            }
            CountResult r = new CountResult(count, List.copyOf(ts));
            if (progress != null) progress.accept(String.format("topics %d: %.0f%% (%.0f tokens)", count, 100 * r.accuracy(), r.meanPromptTokens()));
            out.add(r);
        }
        return new Result(List.copyOf(out), sentences, seed, chat, topicsName);
    }
}
