package dev.tenfold.llama.tokenizer;

/**
 * Open-addressing hash map from a pair of token ids to the merge that joins them: its rank (the
 * merge's position in the file; lower merges first) and the id of the merged token.
 *
 * <p>The pair is packed into one long key (left &lt;&lt; 32 | right): no boxing and no object per
 * entry, which matters with Llama-3's 280,147 merges and a lookup per adjacent pair while encoding.
 */
final class MergeTable {
    private static final long EMPTY = -1L; // ids are non-negative, so a real key is never -1

    private final long[] keys;
    private final int[] ranks;
    private final int[] merged;
    private final int mask;
    private final int shift;
    private int size;

    MergeTable(int expectedEntries) {
        int capacity = Integer.highestOneBit(Math.max(4, expectedEntries) * 2 - 1) << 1; // load <= 1/2
        keys = new long[capacity];
        ranks = new int[capacity];
        merged = new int[capacity];
        mask = capacity - 1;
        shift = 64 - Integer.numberOfTrailingZeros(capacity);
        java.util.Arrays.fill(keys, EMPTY);
    }

    private static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private int home(long key) {
        return (int) ((key * 0x9E3779B97F4A7C15L) >>> shift); // Fibonacci hashing: top bits of the product
    }

    /**
     * Adds a merge. A pair listed twice keeps its later rank, as Hugging Face's tokenizers does
     * (it collects the merges into a hash map in file order).
     */
    void put(int left, int right, int rank, int mergedId) {
        long k = key(left, right);
        int i = home(k);
        while (keys[i] != EMPTY && keys[i] != k) i = (i + 1) & mask;
        if (keys[i] == EMPTY) {
            if (size * 2 >= keys.length) throw new IllegalStateException("MergeTable sized for fewer entries");
            keys[i] = k;
            size++;
        }
        ranks[i] = rank;
        merged[i] = mergedId;
    }

    /** The slot holding the pair, or -1 if the pair has no merge. */
    int find(int left, int right) {
        long k = key(left, right);
        int i = home(k);
        long probe;
        while ((probe = keys[i]) != EMPTY) {
            if (probe == k) return i;
            i = (i + 1) & mask;
        }
        return -1;
    }

    int rank(int slot) {
        return ranks[slot];
    }

    int mergedId(int slot) {
        return merged[slot];
    }

    int size() {
        return size;
    }
}
