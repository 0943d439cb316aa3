package dev.tenfold.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The working tensors of one pass (a forward chunk, a training step), all freed together on
 * {@link #close()}. They live where the backend computes: on the host they come from one shared
 * arena (zero-filled, freed at once); on a device each is a {@link Backend#allocate} block. Small
 * host inputs (token ids, positions, RoPE frequencies) are uploaded by {@link #ints} and
 * {@link #floats}.
 */
public final class Scratch implements AutoCloseable {
    private final Backend backend;
    private final Arena arena;                            // host backends only
    private final List<Tensor> owned = new ArrayList<>(); // device backends only
    private long hostBytes;                               // counted in HostMemory until close

    public Scratch(Backend backend) {
        this.backend = backend;
        // shared: the fast CPU backend reads scratch from all cores
        this.arena = backend.device().isCpu() ? Arena.ofShared() : null;
    }

    public Backend backend() { return backend; }

    /** A zero-filled tensor on the backend's device, freed with this scratch. */
    public Tensor tensor(DType dtype, long... shape) {
        if (arena != null) {
            Tensor t = Tensor.allocate(arena, dtype, shape);
            hostBytes += t.byteSize();
            HostMemory.allocated(t.byteSize());
            return t;
        }
        Tensor t = backend.allocate(dtype, shape);
        owned.add(t);
        return t;
    }

    /** An I32 [values.length] tensor on the backend's device holding {@code values}. */
    public Tensor ints(int[] values) {
        Tensor t = tensor(DType.I32, values.length);
        if (arena != null) {
            MemorySegment.copy(values, 0, t.data(), Tensor.I32, 0, values.length);
        } else {
            try (Tensor host = Tensor.ofInts(values, values.length)) {
                backend.copy(host, t);
            }
        }
        return t;
    }

    /** An F32 [values.length] tensor on the backend's device holding {@code values}. */
    public Tensor floats(float[] values) {
        Tensor t = tensor(DType.F32, values.length);
        if (arena != null) {
            MemorySegment.copy(values, 0, t.data(), Tensor.F32, 0, values.length);
        } else {
            try (Tensor host = Tensor.of(values, values.length)) {
                backend.copy(host, t);
            }
        }
        return t;
    }

    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) owned.get(i).close();
        owned.clear();
        if (arena != null) {
            arena.close();
            HostMemory.freed(hostBytes);
            hostBytes = 0;
        }
    }
}
