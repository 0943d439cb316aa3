package dev.tenfold.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A tensor: a dtype, a row-major shape, a device and off-heap storage in a {@link MemorySegment}.
 * Host memory owned by tensors is counted ({@link HostMemory}).
 *
 * <p>Memory is released deterministically. A tensor made by {@link #allocate} owns its memory and
 * frees it on {@link #close()} by giving it back to a pool for the next allocate (HostPool: blocks up to 16 MiB
 * by size class, larger ones whole, up to 256 MiB of them idle): a segment or view kept from {@link #data()} past
 * the close reads and writes whatever the next owner holds, without an error; a tensor made
 * in a caller's {@link Arena} or by {@link #wrap}
 * (for example over a memory-mapped safetensors file) borrows memory that its owner frees.
 * Closing twice is harmless; using a closed tensor throws {@link IllegalStateException}.
 *
 * <p>Storage is little-endian (as safetensors and the GPU use) and accessed with unaligned
 * layouts, so a view straight into a mapped file works whatever its offset.
 */
public final class Tensor implements AutoCloseable {
    public static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    private final DType dtype;
    private final long[] shape;
    private final long numel;
    private final Device device;
    private final MemorySegment data;
    private final Runnable release; // non-null when this tensor frees its memory on close
    private volatile boolean closed;

    private Tensor(DType dtype, long[] shape, Device device, MemorySegment data, Runnable release) {
        this.dtype = dtype;
        this.shape = shape;
        this.numel = numelOf(shape);
        this.device = device;
        this.data = data;
        this.release = release;
    }

    // ---------------------------------------------------------------- creation

    /** A zero-filled host tensor that owns its memory (freed on close). */
    public static Tensor allocate(DType dtype, long... shape) {
        long[] s = checkShape(shape);
        long bytes = dtype.byteSize(numelOf(s));
        int pooled = HostPool.shift(bytes);
        if (pooled >= 0) { // up to 16 MiB: a reused block (see HostPool for why)
            MemorySegment block;
            try {
                block = HostPool.take(pooled, bytes);
            } catch (OutOfMemoryError | RuntimeException e) {
                throw cannotAllocate(bytes, dtype, s, e);
            }
            HostMemory.allocated(bytes);
            return new Tensor(dtype, s, Device.CPU, block.asSlice(0, bytes), () -> {
                HostPool.give(block);
                HostMemory.freed(bytes);
            });
        }
        HostPool.Large large; // above 16 MiB: reused too, whole (see HostPool)
        try {
            large = HostPool.takeLarge(bytes);
        } catch (OutOfMemoryError | RuntimeException e) {
            throw cannotAllocate(bytes, dtype, s, e);
        }
        HostMemory.allocated(bytes);
        return new Tensor(dtype, s, Device.CPU, large.block().asSlice(0, bytes), () -> {
            HostPool.giveLarge(large);
            HostMemory.freed(bytes);
        });
    }

    private static IllegalStateException cannotAllocate(long bytes, DType dtype, long[] shape, Throwable cause) {
        return new IllegalStateException("cannot allocate " + bytes + " bytes for a " + dtype + " tensor "
                + Arrays.toString(shape) + ": " + cause.getMessage(), cause);
    }

    /** A zero-filled host tensor whose memory belongs to {@code arena} (freed when it closes). */
    public static Tensor allocate(Arena arena, DType dtype, long... shape) {
        long[] s = checkShape(shape);
        long bytes = dtype.byteSize(numelOf(s));
        MemorySegment seg = arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes);
        return new Tensor(dtype, s, Device.CPU, seg, null);
    }

    /** A view over existing memory (not owned: closing the tensor does not free it). */
    public static Tensor wrap(MemorySegment segment, DType dtype, long... shape) {
        return wrap(segment, Device.CPU, dtype, shape);
    }

    /** A view over existing memory on the given device (a device pointer for CUDA). */
    public static Tensor wrap(MemorySegment segment, Device device, DType dtype, long... shape) {
        long[] s = checkShape(shape);
        long bytes = dtype.byteSize(numelOf(s));
        if (segment.byteSize() != bytes) {
            throw new IllegalArgumentException("a " + dtype + " tensor " + Arrays.toString(s) + " needs " + bytes
                    + " bytes but the memory holds " + segment.byteSize());
        }
        return new Tensor(dtype, s, device, segment, null);
    }

    /**
     * A tensor over device memory that owns it: {@code release} runs once, on the first
     * {@link #close()} (a device allocator returns the block to its pool there). {@code memory}
     * carries the device address and the byte size; the host never dereferences it.
     */
    public static Tensor onDevice(MemorySegment memory, Device device, DType dtype, Runnable release, long... shape) {
        if (device.isCpu()) throw new IllegalArgumentException("onDevice needs a device other than the cpu");
        Tensor view = wrap(memory, device, dtype, shape);
        return new Tensor(dtype, view.shape, device, memory, java.util.Objects.requireNonNull(release, "release"));
    }

    /**
     * A tensor over memory that it owns on any device, the host included (pinned host memory, a planning
     * backend's placeholders): {@code release} runs once, on the first {@link #close()}.
     */
    public static Tensor owning(MemorySegment memory, Device device, DType dtype, Runnable release, long... shape) {
        Tensor view = wrap(memory, device, dtype, shape);
        return new Tensor(dtype, view.shape, device, memory, java.util.Objects.requireNonNull(release, "release"));
    }

    /** An owned F32 tensor holding a copy of {@code values}. */
    public static Tensor of(float[] values, long... shape) {
        long[] s = shape.length == 0 && values.length != 1 ? new long[] {values.length} : shape;
        if (numelOf(checkShape(s)) != values.length) {
            throw new IllegalArgumentException(values.length + " values do not fill shape " + Arrays.toString(s));
        }
        Tensor t = allocate(DType.F32, s);
        MemorySegment.copy(values, 0, t.data, F32, 0, values.length);
        return t;
    }

    /** An owned I32 tensor holding a copy of {@code values}. */
    public static Tensor ofInts(int[] values, long... shape) {
        long[] s = shape.length == 0 && values.length != 1 ? new long[] {values.length} : shape;
        if (numelOf(checkShape(s)) != values.length) {
            throw new IllegalArgumentException(values.length + " values do not fill shape " + Arrays.toString(s));
        }
        Tensor t = allocate(DType.I32, s);
        MemorySegment.copy(values, 0, t.data, I32, 0, values.length);
        return t;
    }

    // ---------------------------------------------------------------- description

    public DType dtype() { return dtype; }

    public long[] shape() { return shape.clone(); }

    public int rank() { return shape.length; }

    /** Size of dimension {@code i}; negative indexes count from the end. */
    public long dim(int i) {
        int j = i < 0 ? shape.length + i : i;
        if (j < 0 || j >= shape.length) {
            throw new IllegalArgumentException("dimension " + i + " out of range for shape " + Arrays.toString(shape));
        }
        return shape[j];
    }

    public long numel() { return numel; }

    public long byteSize() { return data.byteSize(); }

    public Device device() { return device; }

    public boolean isClosed() { return closed; }

    /** The storage; throws if the tensor was closed. */
    public MemorySegment data() {
        if (closed) throw new IllegalStateException("use of a closed tensor: " + describe());
        return data;
    }

    public String describe() { return dtype + Arrays.toString(shape) + (device.isCpu() ? "" : "@" + device); }

    @Override
    public String toString() { return "Tensor " + describe() + (closed ? " (closed)" : ""); }

    // ---------------------------------------------------------------- views

    /** The same memory seen with another shape of the same element count (not owned). */
    public Tensor view(long... newShape) {
        long[] s = checkShape(newShape);
        if (numelOf(s) != numel) {
            throw new IllegalArgumentException("cannot view " + describe() + " as " + Arrays.toString(s));
        }
        return new Tensor(dtype, s, device, data(), null);
    }

    /** Rows {@code [start, end)} of the first dimension, as a view (not owned). */
    public Tensor slice(long start, long end) {
        if (shape.length == 0 || start < 0 || end > shape[0] || start > end) {
            throw new IllegalArgumentException("slice [" + start + ", " + end + ") out of range for " + describe());
        }
        long rowElems = shape[0] == 0 ? 0 : numel / shape[0];
        if (dtype.bits() < 8 && (rowElems * start) % 2 != 0) {
            throw new IllegalArgumentException("slice of packed " + describe() + " must start on a byte");
        }
        long[] s = shape.clone();
        s[0] = end - start;
        long from = dtype.byteSize(rowElems * start);
        long bytes = dtype.byteSize(rowElems * (end - start));
        return new Tensor(dtype, s, device, data().asSlice(from, bytes), null);
    }

    // ---------------------------------------------------------------- element access (host)

    /** Element {@code i} (flat index) as a float, for F32, BF16, F16, F64 and the integer types. */
    public float getFloat(long i) {
        MemorySegment d = hostData();
        return switch (dtype) {
            case F32 -> d.getAtIndex(F32, i);
            case BF16 -> Numerics.bf16ToFloat(d.getAtIndex(I16, i));
            case F16 -> Numerics.f16ToFloat(d.getAtIndex(I16, i));
            case F64 -> (float) d.getAtIndex(F64, i);
            case I32 -> d.getAtIndex(I32, i);
            case I64 -> d.getAtIndex(I64, i);
            case I16 -> d.getAtIndex(I16, i);
            case U8, BOOL -> d.get(ValueLayout.JAVA_BYTE, i) & 0xff;
            case I8 -> d.get(ValueLayout.JAVA_BYTE, i);
            default -> throw new UnsupportedOperationException("getFloat on " + describe());
        };
    }

    /** Stores {@code v} at flat index {@code i}, rounding to the tensor's float type. */
    public void setFloat(long i, float v) {
        MemorySegment d = hostData();
        switch (dtype) {
            case F32 -> d.setAtIndex(F32, i, v);
            case BF16 -> d.setAtIndex(I16, i, Numerics.floatToBf16(v));
            case F16 -> d.setAtIndex(I16, i, Numerics.floatToF16(v));
            case F64 -> d.setAtIndex(F64, i, v);
            default -> throw new UnsupportedOperationException("setFloat on " + describe());
        }
    }

    public int getInt(long i) {
        if (dtype != DType.I32) throw new UnsupportedOperationException("getInt on " + describe());
        return hostData().getAtIndex(I32, i);
    }

    public void setInt(long i, int v) {
        if (dtype != DType.I32) throw new UnsupportedOperationException("setInt on " + describe());
        hostData().setAtIndex(I32, i, v);
    }

    /** All elements as floats (a copy). */
    public float[] toFloatArray() {
        if (numel > Integer.MAX_VALUE - 8) throw new IllegalStateException(describe() + " is too large for a Java array");
        float[] out = new float[(int) numel];
        if (dtype == DType.F32) {
            MemorySegment.copy(hostData(), F32, 0, out, 0, out.length);
        } else {
            for (int i = 0; i < out.length; i++) out[i] = getFloat(i);
        }
        return out;
    }

    /** All elements of an I32 tensor (a copy). */
    public int[] toIntArray() {
        if (dtype != DType.I32) throw new UnsupportedOperationException("toIntArray on " + describe());
        int[] out = new int[Math.toIntExact(numel)];
        MemorySegment.copy(hostData(), I32, 0, out, 0, out.length);
        return out;
    }

    /** Copies {@code values} into this tensor, rounding to its float type. */
    public void copyFrom(float[] values) {
        if (values.length != numel) {
            throw new IllegalArgumentException(values.length + " values for " + describe());
        }
        if (dtype == DType.F32) {
            MemorySegment.copy(values, 0, hostData(), F32, 0, values.length);
        } else {
            for (int i = 0; i < values.length; i++) setFloat(i, values[i]);
        }
    }

    /** Sets every element to {@code v} (F32, BF16, F16). */
    public void fill(float v) {
        MemorySegment d = hostData();
        if (dtype == DType.F32 && v == 0f) {
            d.fill((byte) 0);
            return;
        }
        for (long i = 0; i < numel; i++) setFloat(i, v);
    }

    /** A new owned host tensor with the same dtype, shape and contents. */
    public Tensor copy() {
        Tensor t = allocate(dtype, shape);
        MemorySegment.copy(hostData(), 0, t.data, 0, data.byteSize());
        return t;
    }

    private MemorySegment hostData() {
        MemorySegment d = data();
        if (!device.isCpu()) throw new IllegalStateException("host access to device tensor " + describe());
        return d;
    }

    // ---------------------------------------------------------------- lifetime

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (release != null) release.run();
    }

    // ---------------------------------------------------------------- helpers

    public static long numelOf(long[] shape) {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    private static long[] checkShape(long[] shape) {
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
        }
        numelOf(shape);
        return shape.clone();
    }
}
