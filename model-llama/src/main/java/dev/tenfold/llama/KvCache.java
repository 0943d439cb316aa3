package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;

/**
 * Keys and values of every layer for the positions processed so far, so that each new token
 * attends to the past without recomputing it. F32, [capacity, kvHeads, headDim] per layer, on the
 * device of the backend it was made for (the model's: {@link #KvCache(LlamaModel, int)}).
 */
public final class KvCache implements AutoCloseable {
    final Tensor[] keys;
    final Tensor[] values;
    private final int capacity;
    private final Device device;
    private int length;

    /** A cache on the host (for a model on a host backend). */
    public KvCache(LlamaConfig c, int capacity) { this(c, capacity, dev.tenfold.engine.cpu.CpuBackend.fast()); }

    /** A cache where the model computes. */
    public KvCache(LlamaModel model, int capacity) { this(model.config(), capacity, model.backend()); }

    /** A cache on {@code backend}'s device. */
    public KvCache(LlamaConfig c, int capacity, Backend backend) {
        if (capacity <= 0) throw new IllegalArgumentException("KV cache capacity must be positive, got " + capacity);
        this.capacity = capacity;
        this.device = backend.device();
        keys = new Tensor[c.numLayers()];
        values = new Tensor[c.numLayers()];
        try {
            for (int l = 0; l < c.numLayers(); l++) {
                keys[l] = backend.allocate(DType.F32, capacity, c.numKvHeads(), c.headDim());
                values[l] = backend.allocate(DType.F32, capacity, c.numKvHeads(), c.headDim());
            }
        } catch (RuntimeException | OutOfMemoryError e) {
            close();
            throw e;
        }
    }

    public int capacity() { return capacity; }

    /** Where the keys and values live. */
    public Device device() { return device; }

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
