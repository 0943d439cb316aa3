package dev.tenfold.tools.demo;

import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.eval.LongPrompt;
import dev.tenfold.qlora.eval.Passkey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The demo's training documents, in the exact format of the pass-key evaluation (raw text, no chat
 * template): the instruction, filler with the pass-key line at a random depth, the question, and
 * the answer " N." followed by end-of-text. The loss covers every token, so the model learns the
 * text and, from the repeated key, to copy.
 */
public final class PasskeyDocs {
    private static final String[] SENTENCES = Passkey.FILLER.split("(?<=\\.) ");

    private final Tokenizer tok;
    private final LongPrompt prompts;
    private final int minLength;

    public PasskeyDocs(Tokenizer tok) {
        this.tok = tok;
        this.prompts = new LongPrompt(tok, false, Passkey.FILLER);
        LongPrompt.Built b = Passkey.prompt(prompts, 99999, 0.5, 1000);
        this.minLength = b.length() - b.haystackTokens() + answer(99999).length + 1;
    }

    /** Tokens of the fixed parts (instruction, key line, question, answer): the shortest document. */
    public int minLength() { return minLength; }

    /** One pass-key document of about {@code length} tokens (ids and next-token targets), positions 0..n-1. */
    public Trainer.Example passkey(SplittableRandom rng, int length) {
        int key = 10000 + rng.nextInt(90000);
        int[] prompt = Passkey.prompt(prompts, key, rng.nextDouble(), length - answer(key).length - 1).ids();
        return example(concat(prompt, answer(key), new int[] {tok.eosId()}), null);
    }

    /**
     * Many key lines with a little filler between them: dense practice at copying a key, which
     * makes the copying circuit (an "induction head") form in hundreds of steps instead of thousands.
     */
    public Trainer.Example denseKeys(SplittableRandom rng, int length) {
        List<Integer> seq = new ArrayList<>();
        seq.add(tok.bosId());
        while (seq.size() < length) {
            StringBuilder sb = new StringBuilder();
            for (int j = rng.nextInt(3); j > 0; j--) sb.append(' ').append(SENTENCES[rng.nextInt(SENTENCES.length)]);
            sb.append(' ').append(Passkey.needle(10000 + rng.nextInt(90000)));
            for (int id : tok.encode(seq.size() == 1 ? sb.toString().strip() : sb.toString(), false)) seq.add(id);
        }
        seq.add(tok.eosId());
        return example(seq.stream().mapToInt(Integer::intValue).toArray(), null);
    }

    /**
     * A pass-key document of {@code length} tokens whose position ids span up to {@code span}
     * (PoSE, positional skip-wise training): the document is cut in two at a random point and the
     * second part's positions jump ahead by a random gap, so the model sees distances up to
     * {@code span} while computing only {@code length} tokens.
     */
    public Trainer.Example passkeySkipped(SplittableRandom rng, int length, int span) {
        Trainer.Example e = passkey(rng, length);
        int n = e.ids().length;
        int[] pos = new int[n];
        int cut = 1 + rng.nextInt(n - 1);
        int gap = span <= n ? 0 : rng.nextInt(span - n + 1);
        for (int i = 0; i < n; i++) pos[i] = i < cut ? i : i + gap;
        return new Trainer.Example(e.ids(), e.targets(), pos);
    }

    private int[] answer(int key) { return tok.encode(" " + key + ".", false); }

    private static Trainer.Example example(int[] seq, int[] positions) {
        return new Trainer.Example(Arrays.copyOf(seq, seq.length - 1), Arrays.copyOfRange(seq, 1, seq.length), positions);
    }

    private static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] out = new int[n];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
