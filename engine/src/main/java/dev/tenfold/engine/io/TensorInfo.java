package dev.tenfold.engine.io;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.util.Arrays;

/**
 * Where one tensor lives in a safetensors file: its dtype, shape and byte range
 * {@code [begin, end)} relative to the start of the data buffer (as the header's
 * {@code data_offsets} give it). {@code fileOffset} is the absolute position of {@code begin}.
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end, long fileOffset) {
    public TensorInfo {
        shape = shape.clone(); // records expose their components: keep the shape immutable
    }

    @Override
    public long[] shape() { return shape.clone(); }

    public int rank() { return shape.length; }

    public long numel() { return Tensor.numelOf(shape); }

    public long byteSize() { return end - begin; }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && begin == t.begin && end == t.end && fileOffset == t.fileOffset;
    }

    @Override
    public int hashCode() { return name.hashCode() * 31 + Arrays.hashCode(shape); }

    @Override
    public String toString() {
        return name + ": " + dtype + Arrays.toString(shape) + " @[" + begin + ", " + end + ")";
    }
}
