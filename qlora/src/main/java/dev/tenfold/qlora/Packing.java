package dev.tenfold.qlora;

import dev.tenfold.llama.TrainingStep;
import java.util.ArrayList;
import java.util.List;

/**
 * Packing: the records of a batch laid back to back in sequences of up to a token budget, so that
 * short records share a forward pass instead of each running alone. Each record keeps its own targets
 * and its own positions (restarting at its first token), and attention stays inside it (the training
 * step runs attention record by record), so a packed sequence's summed loss is the sum of its records'
 * losses: the step is the unpacked batch's.
 *
 * <p>Records are taken in the batch's order, each into the first sequence with room (first fit), so the
 * packing is a function of the batch alone; a record longer than the budget makes a sequence of its own.
 */
public final class Packing {
    private Packing() {}

    /** The batch packed into sequences of at most {@code maxTokens} tokens (records longer run alone). */
    public static List<Trainer.Example> pack(List<Trainer.Example> batch, int maxTokens) {
        if (maxTokens < 1) throw new IllegalArgumentException("packing: the budget must be >= 1 token, got " + maxTokens);
        List<List<Trainer.Example>> bins = new ArrayList<>();
        List<Integer> used = new ArrayList<>();
        for (Trainer.Example e : batch) {
            if (e.recordStarts() != null && e.recordStarts().length > 1) {
                throw new IllegalArgumentException("packing: an example is already packed");
            }
            int n = e.ids().length, into = -1;
            for (int i = 0; i < bins.size() && into < 0; i++) if (used.get(i) + n <= maxTokens) into = i;
            if (into < 0) {
                bins.add(new ArrayList<>());
                used.add(0);
                into = bins.size() - 1;
            }
            bins.get(into).add(e);
            used.set(into, used.get(into) + n);
        }
        List<Trainer.Example> out = new ArrayList<>(bins.size());
        for (List<Trainer.Example> bin : bins) out.add(bin.size() == 1 ? bin.getFirst() : concatenate(bin));
        return out;
    }

    /** Records back to back: ids, targets and positions concatenated, each record's start noted. */
    static Trainer.Example concatenate(List<Trainer.Example> records) {
        int total = 0;
        for (Trainer.Example e : records) total += e.ids().length;
        int[] ids = new int[total], targets = new int[total], positions = new int[total], starts = new int[records.size()];
        int at = 0;
        for (int r = 0; r < records.size(); r++) {
            Trainer.Example e = records.get(r);
            int n = e.ids().length;
            starts[r] = at;
            System.arraycopy(e.ids(), 0, ids, at, n);
            System.arraycopy(e.targets(), 0, targets, at, n);
            System.arraycopy(e.positions() != null ? e.positions() : TrainingStep.consecutive(n), 0, positions, at, n);
            at += n;
        }
        return new Trainer.Example(ids, targets, positions, starts);
    }
}
