package dev.tenfold.llama;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;

/**
 * Keys and values of every layer for the positions processed so far, so that each new token
 * attends to the past without recomputing it. F32, [capacity, kvHeads, headDim] per layer.
 */
public final class KvCache implements AutoCloseable {
    final Tensor[] keys;
    final Tensor[] values;
    private final int capacity;
    private int length;

    public KvCache(LlamaConfig c, int capacity) {
        if (capacity <= 0) throw new IllegalArgumentException("KV cache capacity must be positive, got " + capacity);
        this.capacity = capacity;
        keys = new Tensor[c.numLayers()];
        values = new Tensor[c.numLayers()];
        try {
            for (int l = 0; l < c.numLayers(); l++) {
                keys[l] = Tensor.allocate(DType.F32, capacity, c.numKvHeads(), c.headDim());
                values[l] = Tensor.allocate(DType.F32, capacity, c.numKvHeads(), c.headDim());
            }
        } catch (RuntimeException | OutOfMemoryError e) {
            close();
            throw e;
        }
    }

    public int capacity() { return capacity; }

    /** Positions already in the cache (the next token goes at this position). */
    public int length() { return length; }

    void advance(int tokens) { length += tokens; }

    /** Forgets the positions from {@code newLength} on (e.g. to re-run a different continuation). */
    public void truncate(int newLength) {
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("cannot truncate a KV cache of " + length + " positions to " + newLength);
        }
        length = newLength;
    }

    /** Forgets everything (the memory is kept for reuse). */
    public void reset() { length = 0; }

    @Override
    public void close() {
        for (Tensor t : keys) if (t != null) t.close();
        for (Tensor t : values) if (t != null) t.close();
    }
}
