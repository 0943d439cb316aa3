package dev.tenfold.llama.longcontext;

import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Pass-key training documents in the exact format of the pass-key evaluation (raw text, no chat
 * template; the same {@link Haystack} and {@link Passkey} texts): the instruction, filler with the
 * pass-key line at a random depth, the question, and the answer " N." followed by end-of-text. The
 * demo trains on every token, so the model learns the text and, from the repeated key, to copy.
 */
public final class PasskeyDocs {
    /**
     * A document: its tokens and the RoPE position of each token but the last (null: 0, 1, 2, ...),
     * for next-token training.
     */
    public record Doc(int[] tokens, int[] positions) {
        public Doc {
            if (tokens.length < 2 || (positions != null && positions.length != tokens.length - 1)) {
                throw new IllegalArgumentException("a document needs two tokens or more, and a position for each but the last");
            }
        }
    }

    private static final String[] SENTENCES = Passkey.FILLER.split("(?<=\\.) ");

    private final Tokenizer tok;
    private final Haystack prompts;
    private final int minLength;

    public PasskeyDocs(Tokenizer tok) {
        this.tok = tok;
        this.prompts = new Haystack(tok, false, Passkey.FILLER);
        Haystack.Built b = Passkey.prompt(prompts, 99999, 0.5, 1000);
        this.minLength = b.length() - b.haystackTokens() + answer(99999).length + 1;
    }

    /** Tokens of the fixed parts (instruction, key line, question, answer): the shortest document. */
    public int minLength() { return minLength; }

    /** One pass-key document of about {@code length} tokens. */
    public Doc passkey(SplittableRandom rng, int length) {
        int key = 10000 + rng.nextInt(90000);
        int[] prompt = Passkey.prompt(prompts, key, rng.nextDouble(), length - answer(key).length - 1).ids();
        return new Doc(Haystack.concat(prompt, answer(key), new int[] {tok.eosId()}), null);
    }

    /**
     * Many key lines with a little filler between them: dense practice at copying a key, which
     * makes the copying circuit (an "induction head") form in hundreds of steps instead of thousands.
     */
    public Doc denseKeys(SplittableRandom rng, int length) {
        List<Integer> seq = new ArrayList<>();
        seq.add(tok.bosId());
        while (seq.size() < length) {
            StringBuilder sb = new StringBuilder();
            for (int j = rng.nextInt(3); j > 0; j--) sb.append(' ').append(SENTENCES[rng.nextInt(SENTENCES.length)]);
            sb.append(' ').append(Passkey.needle(10000 + rng.nextInt(90000)));
            for (int id : tok.encode(seq.size() == 1 ? sb.toString().strip() : sb.toString(), false)) seq.add(id);
        }
        seq.add(tok.eosId());
        return new Doc(seq.stream().mapToInt(Integer::intValue).toArray(), null);
    }

    /**
     * A pass-key document of {@code length} tokens whose position ids span up to {@code span}
     * (PoSE, positional skip-wise training): the document is cut in two at a random point and the
     * second part's positions jump ahead by a random gap, so the model sees distances up to
     * {@code span} while computing only {@code length} tokens.
     */
    public Doc passkeySkipped(SplittableRandom rng, int length, int span) {
        Doc d = passkey(rng, length);
        int n = d.tokens().length - 1;
        int[] pos = new int[n];
        int cut = 1 + rng.nextInt(n - 1);
        int gap = span <= n ? 0 : rng.nextInt(span - n + 1);
        for (int i = 0; i < n; i++) pos[i] = i < cut ? i : i + gap;
        return new Doc(d.tokens(), pos);
    }

    private int[] answer(int key) { return tok.encode(" " + key + ".", false); }
}
