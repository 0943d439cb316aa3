package dev.tenfold.engine.testing;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A backend for a device that is not the host ({@code cuda:0} by default), simulated on the host,
 * so that the device paths of the model and the trainer can be tested without a GPU.
 *
 * <p>Its tensors are host memory marked as device tensors ({@link Tensor#onDevice} over an owned
 * arena segment): any host access to them (getFloat, toFloatArray, fill, copy...) throws, as it
 * would for CUDA memory. Even raw access through {@link Tensor#data()} fails: the segment a device
 * tensor carries has the address of its memory but the scope of an arena that is already closed,
 * so reading or writing it throws {@code IllegalStateException: Already closed} (where a CUDA
 * pointer would crash the JVM); only this backend maps it back to the live memory. Every op first checks that each tensor argument lives on this
 * backend's device (a host tensor passed to an op fails, naming the op and the argument), then
 * runs {@link CpuBackend#fast()} on host views of the same memory: the numbers are bit for bit
 * those of the CPU backend. {@link #copy} moves data between the host and the "device".
 *
 * <p>It counts what a test may want to pin: allocations, tensors and bytes live (and the peak),
 * host-to-device and device-to-host transfers, device-to-device copies and ops; see
 * {@link #counts()}.
 */
public class SimulatedDeviceBackend implements Backend {
    private final Device device;
    private final Backend cpu = CpuBackend.fast();
    private final AtomicLong allocations = new AtomicLong(), live = new AtomicLong(), liveBytes = new AtomicLong(),
            peakBytes = new AtomicLong(), uploads = new AtomicLong(), uploadBytes = new AtomicLong(),
            downloads = new AtomicLong(), downloadBytes = new AtomicLong(), deviceCopies = new AtomicLong(),
            ops = new AtomicLong(), syncs = new AtomicLong();
    /** The live blocks' host memory by address (what a device tensor's unreadable segment points at). */
    private final ConcurrentSkipListMap<Long, MemorySegment> blocks = new ConcurrentSkipListMap<>();

    public SimulatedDeviceBackend() { this(Device.cuda(0)); }

    public SimulatedDeviceBackend(Device device) {
        if (device.isCpu()) throw new IllegalArgumentException("a simulated device backend needs a device other than the cpu");
        this.device = device;
    }

    /** What the backend has done so far; {@link Counts#minus} gives what happened in between. */
    public record Counts(long allocations, long live, long liveBytes, long peakBytes, long uploads, long uploadBytes,
                         long downloads, long downloadBytes, long deviceCopies, long ops, long synchronizes) {
        /** The change from {@code before} (live and peak figures are kept as they are now). */
        public Counts minus(Counts before) {
            return new Counts(allocations - before.allocations, live, liveBytes, peakBytes, uploads - before.uploads,
                    uploadBytes - before.uploadBytes, downloads - before.downloads, downloadBytes - before.downloadBytes,
                    deviceCopies - before.deviceCopies, ops - before.ops, synchronizes - before.synchronizes);
        }

        /** Host-device transfers in either direction. */
        public long transfers() { return uploads + downloads; }
    }

    public Counts counts() {
        return new Counts(allocations.get(), live.get(), liveBytes.get(), peakBytes.get(), uploads.get(), uploadBytes.get(),
                downloads.get(), downloadBytes.get(), deviceCopies.get(), ops.get(), syncs.get());
    }

    @Override public String name() { return "simulated-" + device; }

    private final AtomicLong warmUps = new AtomicLong();

    /** Counts the calls and says a warm-up of a quarter second ran (a device has nothing to warm up; tests see the calls). */
    @Override public double warmUp() {
        warmUps.incrementAndGet();
        return 0.25;
    }

    /** How many times {@link #warmUp} was called. */
    public long warmUps() { return warmUps.get(); }

    @Override public Device device() { return device; }

    // ------------------------------------------------------------------ memory

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        long bytes = dtype.byteSize(Tensor.numelOf(shape));
        Arena arena = Arena.ofShared();
        MemorySegment real = arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes);
        MemorySegment handle; // same address and size, in a closed scope: the host cannot touch it
        try (Arena gone = Arena.ofConfined()) {
            handle = MemorySegment.ofAddress(real.address()).reinterpret(bytes, gone, null);
        }
        Tensor t;
        try {
            t = Tensor.onDevice(handle, device, dtype, () -> {
                blocks.remove(real.address());
                arena.close();
                live.decrementAndGet();
                liveBytes.addAndGet(-bytes);
            }, shape);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        blocks.put(real.address(), real);
        allocations.incrementAndGet();
        live.incrementAndGet();
        peakBytes.accumulateAndGet(liveBytes.addAndGet(bytes), Math::max);
        return t;
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        Check.notNull("copy", "src", src);
        Check.notNull("copy", "dst", dst);
        for (Tensor t : new Tensor[] {src, dst}) {
            if (!t.device().isCpu() && !t.device().equals(device)) {
                throw new IllegalArgumentException("copy: " + name() + " copies between the host and " + device + ", got "
                        + src.describe() + " into " + dst.describe());
            }
        }
        dev.tenfold.engine.OpChecks.copy(src, dst);
        boolean fromDevice = !src.device().isCpu(), toDevice = !dst.device().isCpu();
        if (fromDevice && toDevice) {
            deviceCopies.incrementAndGet();
        } else if (toDevice) {
            uploads.incrementAndGet();
            uploadBytes.addAndGet(src.byteSize());
        } else if (fromDevice) {
            downloads.incrementAndGet();
            downloadBytes.addAndGet(src.byteSize());
        }
        MemorySegment.copy(memory("copy", "src", src), 0, memory("copy", "dst", dst), 0, src.byteSize());
    }

    /** Within the host or within this "device" (counted as a device-to-device copy), as CUDA's. */
    @Override
    public void copy2d(Tensor src, long srcOffsetBytes, long srcPitchBytes, Tensor dst, long dstOffsetBytes, long dstPitchBytes,
                       long widthBytes, long rows) {
        dev.tenfold.engine.OpChecks.copy2d(src, srcOffsetBytes, srcPitchBytes, dst, dstOffsetBytes, dstPitchBytes, widthBytes, rows);
        boolean bothHost = src.device().isCpu() && dst.device().isCpu();
        if (!bothHost && !(src.device().equals(device) && dst.device().equals(device))) {
            throw new IllegalArgumentException("copy2d: " + name() + " copies within the host or within " + device + ", got "
                    + src.describe() + " into " + dst.describe());
        }
        if (!bothHost) deviceCopies.incrementAndGet();
        dev.tenfold.engine.OpChecks.copy2dOnHost(memory("copy2d", "src", src), srcOffsetBytes, srcPitchBytes, memory("copy2d", "dst", dst),
                dstOffsetBytes, dstPitchBytes, widthBytes, rows);
    }

    /**
     * The host memory behind a tensor of this "device" (or a host tensor itself), as a host tensor of the same dtype and
     * shape: for test doubles that stand for a library working on device memory (a communicator like NCCL's).
     */
    public Tensor hostView(Tensor t) {
        return Tensor.wrap(memory("hostView", "t", t), Device.CPU, t.dtype(), t.shape());
    }

    /** The memory behind a tensor: its own segment on the host, the live block it points into on this device. */
    private MemorySegment memory(String op, String name, Tensor t) {
        MemorySegment d = t.data();
        if (t.device().isCpu()) return d;
        Map.Entry<Long, MemorySegment> e = blocks.floorEntry(d.address());
        if (e == null || d.address() + d.byteSize() > e.getKey() + e.getValue().byteSize()) {
            throw new IllegalStateException(op + ": " + name + " (" + t.describe() + ") points to freed device memory");
        }
        return e.getValue().asSlice(d.address() - e.getKey(), d.byteSize());
    }

    @Override public void synchronize() { syncs.incrementAndGet(); }

    @Override
    public void fill(Tensor t, float value) {
        op("fill", "t", t);
        cpu.fill(host(t), value);
    }

    // ------------------------------------------------------------------ the ops: check, then the CPU backend on host views

    /** Counts an op and checks that each named tensor (name, tensor, name, tensor...) is on this device or null. */
    private void op(String op, Object... namesAndTensors) {
        ops.incrementAndGet();
        for (int i = 0; i < namesAndTensors.length; i += 2) {
            Tensor t = (Tensor) namesAndTensors[i + 1];
            if (t == null) continue;
            if (t.isClosed()) throw new IllegalStateException(op + ": " + namesAndTensors[i] + " is a closed tensor (" + t + ")");
            if (!t.device().equals(device)) {
                throw new IllegalArgumentException(op + ": " + namesAndTensors[i] + " is " + t.describe() + " on "
                        + t.device() + ", but " + name() + " computes on " + device + " (upload it first)");
            }
        }
    }

    /** The same memory seen as a host tensor (null stays null). */
    private Tensor host(Tensor t) {
        return t == null ? null : Tensor.wrap(memory("op", "argument", t), Device.CPU, t.dtype(), t.shape());
    }

    @Override
    public void dequantizeNf4(Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode, float offset, Tensor out) {
        op("dequantizeNf4", "packed", packed, "absmax", absmax, "nestedAbsmax", nestedAbsmax, "nestedCode", nestedCode, "out", out);
        cpu.dequantizeNf4(host(packed), host(absmax), host(nestedAbsmax), host(nestedCode), offset, host(out));
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        op("matmul", "a", a, "b", b, "out", out);
        cpu.matmul(host(a), transA, host(b), transB, host(out), accumulate);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        op("add", "a", a, "b", b, "out", out);
        cpu.add(host(a), host(b), host(out));
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        op("mul", "a", a, "b", b, "out", out);
        cpu.mul(host(a), host(b), host(out));
    }

    @Override
    public void scale(Tensor a, float s, Tensor out) {
        op("scale", "a", a, "out", out);
        cpu.scale(host(a), s, host(out));
    }

    @Override
    public void cast(Tensor src, Tensor dst) {
        op("cast", "src", src, "dst", dst);
        cpu.cast(host(src), host(dst));
    }

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        op("embedding", "table", table, "ids", ids, "out", out);
        cpu.embedding(host(table), host(ids), host(out));
    }

    @Override
    public void embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable) {
        op("embeddingBackward", "dOut", dOut, "ids", ids, "dTable", dTable);
        cpu.embeddingBackward(host(dOut), host(ids), host(dTable));
    }

    @Override
    public void rmsnorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        op("rmsnorm", "x", x, "weight", weight, "out", out, "rstd", rstd);
        cpu.rmsnorm(host(x), host(weight), eps, host(out), host(rstd));
    }

    @Override
    public void rmsnormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        op("rmsnormBackward", "dOut", dOut, "x", x, "weight", weight, "rstd", rstd, "dx", dx, "dWeight", dWeight);
        cpu.rmsnormBackward(host(dOut), host(x), host(weight), host(rstd), host(dx), host(dWeight));
    }

    @Override
    public void rope(Tensor x, Tensor invFreq, Tensor positions, float attnScale, Tensor out) {
        op("rope", "x", x, "invFreq", invFreq, "positions", positions, "out", out);
        cpu.rope(host(x), host(invFreq), host(positions), attnScale, host(out));
    }

    @Override
    public void ropeBackward(Tensor dOut, Tensor invFreq, Tensor positions, float attnScale, Tensor dx) {
        op("ropeBackward", "dOut", dOut, "invFreq", invFreq, "positions", positions, "dx", dx);
        cpu.ropeBackward(host(dOut), host(invFreq), host(positions), attnScale, host(dx));
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        op("swiglu", "gate", gate, "up", up, "out", out);
        cpu.swiglu(host(gate), host(up), host(out));
    }

    @Override
    public void swigluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        op("swigluBackward", "dOut", dOut, "gate", gate, "up", up, "dGate", dGate, "dUp", dUp);
        cpu.swigluBackward(host(dOut), host(gate), host(up), host(dGate), host(dUp));
    }

    @Override
    public void softmax(Tensor x, Tensor out) {
        op("softmax", "x", x, "out", out);
        cpu.softmax(host(x), host(out));
    }

    @Override
    public void softmaxBackward(Tensor dOut, Tensor y, Tensor dx) {
        op("softmaxBackward", "dOut", dOut, "y", y, "dx", dx);
        cpu.softmaxBackward(host(dOut), host(y), host(dx));
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) {
        op("attention", "q", q, "k", k, "v", v, "out", out, "lse", lse);
        cpu.attention(host(q), host(k), host(v), scale, host(out), host(lse));
    }

    @Override
    public void attentionBackward(Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, float scale,
                                  Tensor dq, Tensor dk, Tensor dv) {
        op("attentionBackward", "dOut", dOut, "q", q, "k", k, "v", v, "out", out, "lse", lse, "dq", dq, "dk", dk, "dv", dv);
        cpu.attentionBackward(host(dOut), host(q), host(k), host(v), host(out), host(lse), scale, host(dq), host(dk), host(dv));
    }

    @Override
    public LossSum crossEntropy(Tensor hidden, Tensor weight, Tensor targets, float gradScale, Tensor dHidden, Tensor dWeight) {
        op("crossEntropy", "hidden", hidden, "weight", weight, "targets", targets, "dHidden", dHidden, "dWeight", dWeight);
        return cpu.crossEntropy(host(hidden), host(weight), host(targets), gradScale, host(dHidden), host(dWeight));
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp, long step) {
        op("adamw", "param", param, "grad", grad, "m", m, "v", v);
        cpu.adamw(host(param), host(grad), host(m), host(v), hp, step);
    }

    @Override
    public double sum(Tensor x) {
        op("sum", "x", x);
        return cpu.sum(host(x));
    }

    @Override
    public float max(Tensor x) {
        op("max", "x", x);
        return cpu.max(host(x));
    }

    @Override
    public double sumOfSquares(Tensor x) {
        op("sumOfSquares", "x", x);
        return cpu.sumOfSquares(host(x));
    }
}
