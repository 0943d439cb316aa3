package dev.tenfold.llama.longcontext;

import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;

/**
 * Builds a long-context prompt of a target token length: an instruction, a haystack of filler
 * cut to fit, needles inserted at sentence boundaries near their depths, and a question. Works on
 * token ids (as the needle-in-a-haystack reference does), so the length is exact up to the few
 * tokens dropped to end the haystack on a whole word. The one builder of haystacks: every
 * evaluation's prompts and the synthetic training records of the same tasks come from it.
 */
public final class Haystack {
    private final Tokenizer tok;
    private final boolean chat;
    private final String fillerText;
    private int[] haystack = new int[0];

    /** A built prompt: the ids, where the needle lies in them, the depth it actually got (0..1 of the haystack) and the haystack's size. */
    public record Built(int[] ids, int needleStart, int needleEnd, double depth, int haystackTokens) {
        public int length() { return ids.length; }
    }

    /**
     * @param chat wrap as one Llama-3 chat user turn plus the assistant header (instruct models);
     *             otherwise raw text after BOS, ending with {@code answerPrefix} for the model to continue
     * @param fillerText the haystack; repeated as often as a prompt needs
     */
    public Haystack(Tokenizer tok, boolean chat, String fillerText) {
        if (fillerText == null || fillerText.isBlank()) throw new IllegalArgumentException("the haystack text is empty");
        this.tok = tok;
        this.chat = chat;
        this.fillerText = fillerText.strip();
    }

    public boolean chat() { return chat; }

    /**
     * A prompt with several needles: where each lies (in the order given, not the order placed), the
     * depth each got, the haystack's size, and the haystack with its needles as text (what a training
     * record's turn holds between the instruction and the question).
     */
    public record BuiltMany(int[] ids, int[] needleStarts, int[] needleEnds, double[] depths, int haystackTokens, String document) {
        public int length() { return ids.length; }
    }

    /**
     * The prompt of {@code targetTokens} tokens (a few less where the haystack is cut back to a word
     * start). {@code answerPrefix} (may be empty) is only used in raw mode: a chat model answers in its own turn.
     */
    public Built build(String instruction, String needle, double depth, String question, String answerPrefix, int targetTokens) {
        BuiltMany m = buildMany(instruction, List.of(needle), new double[] {depth}, question, answerPrefix, targetTokens);
        return new Built(m.ids(), m.needleStarts()[0], m.needleEnds()[0], m.depths()[0], m.haystackTokens());
    }

    /**
     * As {@link #build} with several needles (RULER's multi-needle tasks), each at the sentence
     * boundary nearest its own depth; needles that land on the same boundary follow one another in
     * the order given.
     */
    public BuiltMany buildMany(String instruction, List<String> needles, double[] depths, String question, String answerPrefix,
                               int targetTokens) {
        if (needles.isEmpty() || needles.size() != depths.length) {
            throw new IllegalArgumentException(needles.size() + " needles but " + depths.length + " depths");
        }
        for (double depth : depths) {
            if (!(depth >= 0 && depth <= 1)) throw new IllegalArgumentException("depth must be in [0, 1], got " + depth);
        }
        int[] head, tail;
        if (chat) {
            // the user turn's content is instruction, haystack and question; render the fixed parts around it
            ChatTemplate t = new ChatTemplate(tok);
            int[] open = t.render(List.of(ChatTemplate.Message.user(instruction)), false).ids();
            head = Arrays.copyOf(open, open.length - 1); // without the <|eot_id|> that closes the turn
            int[] withHeader = t.render(List.of(ChatTemplate.Message.user("x")), true).ids();
            int[] without = t.render(List.of(ChatTemplate.Message.user("x")), false).ids();
            int[] assistantHeader = Arrays.copyOfRange(withHeader, without.length, withHeader.length);
            tail = concat(tok.encode("\n\n" + question, false), new int[] {tok.eotId()}, assistantHeader);
        } else {
            head = concat(new int[] {tok.bosId()}, tok.encode(instruction, false));
            String q = "\n\n" + question + (answerPrefix == null || answerPrefix.isEmpty() ? "" : " " + answerPrefix);
            tail = tok.encode(q, false);
        }
        head = concat(head, tok.encode("\n\n", false)); // a paragraph break between the instruction and the document
        int k = needles.size();
        int[][] needleIds = new int[k][];
        int fixed = head.length + tail.length;
        for (int i = 0; i < k; i++) {
            needleIds[i] = tok.encode(" " + needles.get(i).strip(), false);
            fixed += needleIds[i].length;
        }
        int budget = targetTokens - fixed;
        if (budget < 0) {
            throw new IllegalArgumentException("a prompt of " + targetTokens + " tokens is shorter than the instruction, "
                    + (k == 1 ? "needle" : k + " needles") + " and question alone (" + fixed + " tokens)");
        }
        int[] hay = haystack(budget);
        int n = wordCut(hay, budget);
        int[] at = new int[k];
        for (int i = 0; i < k; i++) at[i] = nearestBoundary(hay, n, (int) Math.round(depths[i] * n));
        // lay the needles out front to back; a stable sort keeps the given order on a shared boundary
        Integer[] order = new Integer[k];
        for (int i = 0; i < k; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Integer.compare(at[a], at[b]));
        int[][] parts = new int[2 * k + 3][];
        int[] starts = new int[k], ends = new int[k];
        double[] actual = new double[k];
        parts[0] = head;
        int prev = 0, pos = head.length;
        for (int j = 0; j < k; j++) {
            int i = order[j];
            parts[1 + 2 * j] = Arrays.copyOfRange(hay, prev, at[i]);
            pos += at[i] - prev;
            parts[2 + 2 * j] = needleIds[i];
            starts[i] = pos;
            pos += needleIds[i].length;
            ends[i] = pos;
            actual[i] = n == 0 ? depths[i] : (double) at[i] / n;
            prev = at[i];
        }
        parts[2 * k + 1] = Arrays.copyOfRange(hay, prev, n);
        parts[2 * k + 2] = tail;
        String document = tok.decode(concat(Arrays.copyOfRange(parts, 1, 2 * k + 2)));
        return new BuiltMany(concat(parts), starts, ends, actual, n, document);
    }

    /**
     * At least {@code tokens} haystack ids (plus slack for the word cut): the filler repeated, or
     * only as much of a long file as needed (a book need not be tokenized whole for an 8K prompt).
     * Grown by doubling and reused across prompts.
     */
    private int[] haystack(int tokens) {
        int want = tokens + 32;
        long chars = Math.max(1024L, 6L * want);
        while (haystack.length < want) {
            StringBuilder sb = new StringBuilder();
            while (sb.length() < chars) sb.append(sb.isEmpty() ? "" : " ").append(fillerText);
            haystack = tok.encode(sb.substring(0, (int) Math.min(chars, sb.length())), false);
            chars *= 2;
        }
        return haystack;
    }

    /** The largest k <= n such that hay[0, k) ends on a whole word (hay[k] starts a new one); n if none is near. */
    private int wordCut(int[] hay, int n) {
        for (int k = n; k > 0 && k > n - 16; k--) {
            if (k == hay.length) return k;
            byte[] b = tok.tokenBytes(hay[k]);
            if (b.length > 0 && Character.isWhitespace(b[0])) return k;
        }
        return n;
    }

    /**
     * The sentence boundary (a position just after a sentence's end, or 0) nearest {@code p}; earlier
     * on a tie. The haystack's end is a boundary only if a sentence ends there: it is cut on a word.
     */
    private int nearestBoundary(int[] hay, int n, int p) {
        for (int d = 0; d <= n; d++) {
            if (p - d >= 0 && isBoundary(hay, n, p - d)) return p - d;
            if (p + d <= n && isBoundary(hay, n, p + d)) return p + d;
        }
        return p;
    }

    private boolean isBoundary(int[] hay, int n, int k) {
        if (k == 0) return true;
        String s = new String(tok.tokenBytes(hay[k - 1]), java.nio.charset.StandardCharsets.ISO_8859_1).stripTrailing();
        return !s.isEmpty() && ".!?".indexOf(s.charAt(s.length() - 1)) >= 0;
    }

    static int[] concat(int[]... parts) {
        int len = 0;
        for (int[] p : parts) len += p.length;
        int[] out = new int[len];
        int o = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }
}
