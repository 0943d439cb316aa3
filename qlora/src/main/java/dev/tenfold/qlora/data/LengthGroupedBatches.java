package dev.tenfold.qlora.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Epoch plans: which records go into which batch, in which order. A plan is a pure function of
 * (lengths, batch size, seed, epoch, options), computed with its own random generator (SplitMix64),
 * so it is the same on every JVM and a resumed run can skip to the step it stopped at.
 *
 * <p>{@link Mode#GROUP_BY_LENGTH} does what Hugging Face's group_by_length sampler does: shuffle the
 * indices, cut them into mega-batches of {@code batchSize * megaBatchMultiplier}, sort each
 * mega-batch by length, longest first, and cut it into batches. Sequences of a batch then have
 * similar lengths (balanced work across data-parallel ranks) while the order stays random at the
 * scale of mega-batches. The multiplier is Hugging Face's default, min(n / (4 * batchSize), 50) and
 * at least 1, unless set: 50 for any dataset of 200 batches or more, smaller for small datasets so
 * that they still get some shuffling. {@link Mode#SHUFFLE} is a plain shuffle.
 *
 * <p>In both modes the batch holding the longest sequence is moved to the front (the others keep
 * their order), so a run that would run out of memory does so at step 1, not hours in. (Hugging
 * Face swaps the single longest sequence into the first mega-batch instead; moving the whole batch
 * keeps every batch's length grouping intact.)
 *
 * <p>The last batch may be partial; it is kept unless {@link #withDropLast(boolean) dropLast}.
 */
public final class LengthGroupedBatches {
    public enum Mode { GROUP_BY_LENGTH, SHUFFLE }

    private static final int HF_MEGA_BATCH_MULT = 50;

    private final int[] lengths;
    private final int batchSize;
    private final long seed;
    private final Mode mode;
    private final boolean dropLast;
    private final int megaBatchMultiplier;

    private LengthGroupedBatches(int[] lengths, int batchSize, long seed, Mode mode, boolean dropLast, int megaBatchMultiplier) {
        if (batchSize < 1) throw new IllegalArgumentException("batchSize " + batchSize + " < 1");
        if (megaBatchMultiplier < 1) throw new IllegalArgumentException("megaBatchMultiplier " + megaBatchMultiplier + " < 1");
        for (int i = 0; i < lengths.length; i++) {
            if (lengths[i] < 0) throw new IllegalArgumentException("length " + lengths[i] + " of record " + i + " < 0");
        }
        this.lengths = lengths;
        this.batchSize = batchSize;
        this.seed = seed;
        this.mode = mode;
        this.dropLast = dropLast;
        this.megaBatchMultiplier = megaBatchMultiplier;
    }

    /** Hugging Face group_by_length batches over records of these lengths (tokens). */
    public static LengthGroupedBatches grouped(int[] lengths, int batchSize, long seed) {
        return new LengthGroupedBatches(lengths.clone(), batchSize, seed, Mode.GROUP_BY_LENGTH, false,
                defaultMultiplier(lengths.length, batchSize));
    }

    /** Plainly shuffled batches (lengths are used only to put the longest sequence's batch first). */
    public static LengthGroupedBatches shuffled(int[] lengths, int batchSize, long seed) {
        return new LengthGroupedBatches(lengths.clone(), batchSize, seed, Mode.SHUFFLE, false,
                defaultMultiplier(lengths.length, batchSize));
    }

    /** The same plan with the last partial batch dropped ({@code true}) or kept ({@code false}, the default). */
    public LengthGroupedBatches withDropLast(boolean drop) {
        return new LengthGroupedBatches(lengths, batchSize, seed, mode, drop, megaBatchMultiplier);
    }

    /** The same plan with mega-batches of {@code batchSize * multiplier} records. */
    public LengthGroupedBatches withMegaBatchMultiplier(int multiplier) {
        return new LengthGroupedBatches(lengths, batchSize, seed, mode, dropLast, multiplier);
    }

    static int defaultMultiplier(int n, int batchSize) {
        if (batchSize < 1) throw new IllegalArgumentException("batchSize " + batchSize + " < 1");
        return Math.max(1, Math.min(n / (4 * batchSize), HF_MEGA_BATCH_MULT));
    }

    public int stepsPerEpoch() {
        int n = lengths.length;
        return dropLast ? n / batchSize : (n + batchSize - 1) / batchSize;
    }

    public int batchSize() {
        return batchSize;
    }

    public Mode mode() {
        return mode;
    }

    public int megaBatchMultiplier() {
        return megaBatchMultiplier;
    }

    /**
     * The batches of one epoch, in training order: each the indices of its records (in the order
     * the grouping left them: longest first when grouped). Every index appears exactly once per
     * epoch, unless dropLast leaves a partial batch out.
     */
    public List<int[]> plan(int epoch) {
        int[] order = order(epoch);
        List<int[]> batches = new ArrayList<>(stepsPerEpoch());
        for (int start = 0; start < order.length; start += batchSize) {
            int end = Math.min(start + batchSize, order.length);
            if (end - start < batchSize && dropLast) break;
            batches.add(Arrays.copyOfRange(order, start, end));
        }
        // The longest sequence's batch first (the earliest such batch if several tie).
        int longest = -1;
        int longestBatch = -1;
        for (int b = 0; b < batches.size(); b++) {
            for (int i : batches.get(b)) {
                if (lengths[i] > longest) {
                    longest = lengths[i];
                    longestBatch = b;
                }
            }
        }
        if (longestBatch > 0) batches.addFirst(batches.remove(longestBatch));
        return batches;
    }

    /** The epoch's order before batching and before the longest batch moves to the front. */
    int[] order(int epoch) {
        if (epoch < 0) throw new IllegalArgumentException("epoch " + epoch + " < 0");
        int n = lengths.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        // Fisher-Yates, seeded by (seed, epoch): a new order every epoch, the same one on every run.
        SplitMix64 rng = new SplitMix64(SplitMix64.mix(SplitMix64.mix(seed) + epoch));
        for (int i = n - 1; i > 0; i--) {
            int j = rng.below(i + 1);
            Integer t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        if (mode == Mode.GROUP_BY_LENGTH) {
            int mega = (int) Math.min((long) batchSize * megaBatchMultiplier, Integer.MAX_VALUE);
            // Stable sort: equal lengths keep their shuffled order, so ties stay random but reproducible.
            Comparator<Integer> longestFirst = (a, b) -> Integer.compare(lengths[b], lengths[a]);
            for (int start = 0; start < n; start += mega) {
                Arrays.sort(order, start, Math.min(start + mega, n), longestFirst);
            }
        }
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = order[i];
        return out;
    }

    /**
     * Splits one batch into micro-batches of at most {@code maxTokens} tokens each, in the batch's
     * order, for gradient accumulation; a sequence longer than the budget is a micro-batch alone.
     */
    public static List<int[]> microBatches(int[] batch, int[] lengths, long maxTokens) {
        if (maxTokens < 1) throw new IllegalArgumentException("maxTokens " + maxTokens + " < 1");
        List<int[]> out = new ArrayList<>();
        int start = 0;
        long tokens = 0;
        for (int k = 0; k < batch.length; k++) {
            int len = lengths[batch[k]];
            if (k > start && tokens + len > maxTokens) {
                out.add(Arrays.copyOfRange(batch, start, k));
                start = k;
                tokens = 0;
            }
            tokens += len;
        }
        if (start < batch.length) out.add(Arrays.copyOfRange(batch, start, batch.length));
        return out;
    }

    /** SplitMix64 (Steele, Lea, Flood 2014): tiny, well mixed, and fixed here, unlike java.util's generators. */
    private static final class SplitMix64 {
        private long state;

        SplitMix64(long state) {
            this.state = state;
        }

        static long mix(long z) {
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            return z ^ (z >>> 31);
        }

        long next() {
            return mix(state += 0x9E3779B97F4A7C15L);
        }

        /** Uniform in [0, bound): rejects the last incomplete block of the 63-bit range (no modulo bias). */
        int below(int bound) {
            while (true) {
                long r = next() >>> 1;
                long v = r % bound;
                if (r - v + (bound - 1) >= 0) return (int) v; // overflow means r fell in the incomplete block
            }
        }
    }
}
