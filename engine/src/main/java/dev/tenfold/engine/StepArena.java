package dev.tenfold.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * The buffers of a repeated computation (a training step), kept from one run to the next: the n-th
 * tensor asked for after {@link #begin} is a view of the n-th buffer when that buffer is big enough,
 * so a step at fixed shapes (or a shorter one) allocates nothing after the first. A buffer too small
 * for its request is freed and replaced. Buffers live where the backend computes ({@link
 * Backend#allocate}); host buffers for copies to and from the device ({@link #host}) are
 * {@link Backend#allocateHost} memory, kept the same way. Tensors handed out are views: valid until
 * the next {@link #begin} or {@link #close}, and never closed by their users.
 *
 * <p>Contents are whatever the last step left (zeros when new): every user writes before it reads.
 */
public final class StepArena implements AutoCloseable {
    private final Backend backend;
    private final List<Tensor> device = new ArrayList<>(), host = new ArrayList<>();
    private int nextDevice, nextHost;

    public StepArena(Backend backend) { this.backend = backend; }

    public Backend backend() { return backend; }

    /** Starts a run: buffers are handed out again from the first. */
    public void begin() {
        nextDevice = 0;
        nextHost = 0;
    }

    /** A tensor on the backend's device. */
    public Tensor tensor(DType dtype, long... shape) { return take(device, nextDevice++, false, dtype, shape); }

    /** A host tensor for copies to and from the device (pinned on a GPU). */
    public Tensor host(DType dtype, long... shape) { return take(host, nextHost++, true, dtype, shape); }

    /** An I32 [values.length] tensor on the device holding {@code values}. */
    public Tensor ints(int[] values) {
        Tensor t = tensor(DType.I32, values.length);
        try (Tensor h = Tensor.ofInts(values, values.length)) {
            backend.copy(h, t);
        }
        return t;
    }

    /** An F32 [values.length] tensor on the device holding {@code values}. */
    public Tensor floats(float[] values) {
        Tensor t = tensor(DType.F32, values.length);
        try (Tensor h = Tensor.of(values, values.length)) {
            backend.copy(h, t);
        }
        return t;
    }

    /** Bytes of the buffers held on the device. */
    public long deviceBytes() { return device.stream().mapToLong(Tensor::byteSize).sum(); }

    /** Bytes of the host buffers held. */
    public long hostBytes() { return host.stream().mapToLong(Tensor::byteSize).sum(); }

    private Tensor take(List<Tensor> buffers, int index, boolean onHost, DType dtype, long[] shape) {
        long bytes = dtype.byteSize(Tensor.numelOf(shape));
        if (index < buffers.size() && buffers.get(index).byteSize() < bytes) {
            buffers.get(index).close();
            buffers.set(index, null);
        }
        if (index >= buffers.size() || buffers.get(index) == null) {
            Tensor b = onHost ? backend.allocateHost(DType.U8, bytes) : backend.allocate(DType.U8, bytes);
            if (index < buffers.size()) buffers.set(index, b);
            else buffers.add(b);
        }
        Tensor b = buffers.get(index);
        return Tensor.wrap(b.data().asSlice(0, bytes), b.device(), dtype, shape);
    }

    /** Frees every buffer, once the work queued on them (copies on a second stream included) is done. */
    @Override
    public void close() {
        if (!device.isEmpty() || !host.isEmpty()) backend.synchronize();
        for (List<Tensor> list : List.of(device, host)) {
            for (int i = list.size() - 1; i >= 0; i--) if (list.get(i) != null) list.get(i).close();
            list.clear();
        }
        begin();
    }
}
