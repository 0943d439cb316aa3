package dev.tenfold.tools;

import dev.tenfold.engine.Numerics;
import dev.tenfold.engine.io.AtomicFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file, version 3, as ggml's gguf.md specifies it (little-endian throughout):
 *
 * <pre>
 * "GGUF" | version u32 | tensor count u64 | metadata count u64
 * metadata: key (string) | value type u32 | value        (string = length u64 + UTF-8 bytes;
 *                                                         array = element type u32 + count u64 + elements)
 * tensor infos: name | dims u32 | ne[dims] u64 (ne[0], the contiguous one, first) | ggml type u32 |
 *               offset u64 (from the start of the data, a multiple of the alignment)
 * zero padding to the alignment | tensor data, each tensor padded to the alignment
 * </pre>
 *
 * Metadata is added with {@link #put}, tensors with {@link #tensor}, whose bytes are produced only
 * when {@link #write} streams the file, so a model's tensors never need to be in memory together.
 */
final class GgufWriter {
    static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
    static final int VERSION = 3;
    static final int ALIGNMENT = 32; // the default; written as general.alignment too

    /** The metadata value types and their codes. */
    enum ValueType {
        UINT8(0), INT8(1), UINT16(2), INT16(3), UINT32(4), INT32(5), FLOAT32(6), BOOL(7), STRING(8), ARRAY(9), UINT64(10),
        INT64(11), FLOAT64(12);

        final int code;

        ValueType(int code) { this.code = code; }
    }

    /** The ggml tensor types tenfold writes: the code, the elements per block and the bytes per block. */
    enum TensorType {
        F32(0, 1, 4), F16(1, 1, 2), Q8_0(8, 32, 34), BF16(30, 1, 2);

        final int code, blockSize, blockBytes;

        TensorType(int code, int blockSize, int blockBytes) {
            this.code = code;
            this.blockSize = blockSize;
            this.blockBytes = blockBytes;
        }

        /** Bytes of a row of {@code n} elements ({@code n} a multiple of the block size). */
        long rowBytes(long n) { return n / blockSize * blockBytes; }
    }

    /** One metadata value: a scalar of {@code type}, or for ARRAY a list of {@code elementType} values. */
    record Value(ValueType type, ValueType elementType, Object value) {}

    /** Produces a tensor's bytes, exactly {@link TensorType#rowBytes} x rows of them. */
    @FunctionalInterface
    interface Data {
        void writeTo(Out out) throws IOException;
    }

    /** One tensor: ne as GGUF orders it (ne[0] contiguous: [in, out] for a [out, in] weight). */
    record TensorEntry(String name, long[] ne, TensorType type, Data data) {
        long byteSize() {
            long rows = 1;
            for (int i = 1; i < ne.length; i++) rows *= ne[i];
            return type.rowBytes(ne[0]) * rows;
        }
    }

    private final Map<String, Value> metadata = new LinkedHashMap<>();
    private final List<TensorEntry> tensors = new ArrayList<>();

    GgufWriter put(String key, ValueType type, Object value) {
        if (type == ValueType.ARRAY) throw new IllegalArgumentException(key + ": use putArray");
        metadata.put(key, new Value(type, null, value));
        return this;
    }

    GgufWriter putString(String key, String value) { return put(key, ValueType.STRING, value); }

    GgufWriter putUint32(String key, long value) { return put(key, ValueType.UINT32, value); }

    GgufWriter putFloat32(String key, double value) { return put(key, ValueType.FLOAT32, (float) value); }

    GgufWriter putBool(String key, boolean value) { return put(key, ValueType.BOOL, value); }

    /** An array of scalars or strings, each element as {@link #put} takes it. */
    GgufWriter putArray(String key, ValueType elementType, List<?> values) {
        if (elementType == ValueType.ARRAY) throw new IllegalArgumentException(key + ": arrays of arrays are not written");
        metadata.put(key, new Value(ValueType.ARRAY, elementType, List.copyOf(values)));
        return this;
    }

    GgufWriter tensor(String name, long[] ne, TensorType type, Data data) {
        if (ne[0] % type.blockSize != 0) {
            throw new IllegalArgumentException(name + ": " + ne[0] + " elements per row is not a multiple of " + type + "'s block of "
                    + type.blockSize);
        }
        tensors.add(new TensorEntry(name, ne.clone(), type, data));
        return this;
    }

    Map<String, Value> metadata() { return metadata; }

    List<TensorEntry> tensors() { return tensors; }

    /** Writes the file atomically (a temporary file renamed into place). */
    void write(Path file) {
        AtomicFiles.write(file, ch -> {
            Out out = new Out(ch);
            out.u32(MAGIC);
            out.u32(VERSION);
            out.u64(tensors.size());
            out.u64(metadata.size());
            for (Map.Entry<String, Value> e : metadata.entrySet()) {
                out.string(e.getKey());
                Value v = e.getValue();
                out.u32(v.type().code);
                if (v.type() == ValueType.ARRAY) {
                    List<?> items = (List<?>) v.value();
                    out.u32(v.elementType().code);
                    out.u64(items.size());
                    for (Object item : items) scalar(out, e.getKey(), v.elementType(), item);
                } else {
                    scalar(out, e.getKey(), v.type(), v.value());
                }
            }
            long offset = 0;
            for (TensorEntry t : tensors) {
                out.string(t.name());
                out.u32(t.ne().length);
                for (long n : t.ne()) out.u64(n);
                out.u32(t.type().code);
                out.u64(offset);
                offset = align(offset + t.byteSize());
            }
            out.pad();
            long dataStart = out.position();
            for (TensorEntry t : tensors) {
                long start = out.position();
                t.data().writeTo(out);
                long written = out.position() - start;
                if (written != t.byteSize()) {
                    throw new IllegalStateException(t.name() + ": wrote " + written + " bytes, its info says " + t.byteSize());
                }
                out.pad();
            }
            if (out.position() - dataStart != offset) throw new IllegalStateException("data section size differs from the offsets");
            out.flush();
        });
    }

    static long align(long n) { return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT; }

    private static void scalar(Out out, String key, ValueType type, Object v) throws IOException {
        try {
            switch (type) {
                case UINT8, INT8 -> out.u8(((Number) v).intValue());
                case UINT16, INT16 -> out.u16(((Number) v).intValue());
                case UINT32, INT32 -> out.u32(((Number) v).intValue());
                case UINT64, INT64 -> out.u64(((Number) v).longValue());
                case FLOAT32 -> out.f32(((Number) v).floatValue());
                case FLOAT64 -> out.f64(((Number) v).doubleValue());
                case BOOL -> out.u8((Boolean) v ? 1 : 0);
                case STRING -> out.string((String) v);
                case ARRAY -> throw new IllegalStateException("nested array");
            }
        } catch (ClassCastException e) {
            throw new IllegalArgumentException(key + ": " + v + " is not a " + type, e);
        }
    }

    /** Little-endian output through a buffer, counting the bytes written. */
    static final class Out {
        private final FileChannel ch;
        private final ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        private long flushed;

        Out(FileChannel ch) { this.ch = ch; }

        long position() { return flushed + buf.position(); }

        private void room(int n) throws IOException {
            if (buf.remaining() < n) flush();
        }

        void flush() throws IOException {
            buf.flip();
            while (buf.hasRemaining()) flushed += ch.write(buf);
            buf.clear();
        }

        void u8(int v) throws IOException { room(1); buf.put((byte) v); }

        void u16(int v) throws IOException { room(2); buf.putShort((short) v); }

        void u32(int v) throws IOException { room(4); buf.putInt(v); }

        void u64(long v) throws IOException { room(8); buf.putLong(v); }

        void f32(float v) throws IOException { room(4); buf.putFloat(v); }

        void f64(double v) throws IOException { room(8); buf.putDouble(v); }

        void bytes(byte[] b) throws IOException {
            for (int i = 0; i < b.length; ) {
                room(1);
                int n = Math.min(buf.remaining(), b.length - i);
                buf.put(b, i, n);
                i += n;
            }
        }

        void string(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            bytes(b);
        }

        /** Zeros up to the next multiple of the alignment. */
        void pad() throws IOException {
            while (position() % ALIGNMENT != 0) u8(0);
        }

        /** One row of floats in {@code type}: Q8_0 in blocks of 32 (an f16 scale, then 32 int8). */
        void row(float[] x, TensorType type) throws IOException {
            switch (type) {
                case F32 -> { for (float v : x) f32(v); }
                case F16 -> { for (float v : x) u16(Numerics.floatToF16(v)); }
                case BF16 -> { for (float v : x) u16(Numerics.floatToBf16(v)); }
                case Q8_0 -> {
                    for (int b = 0; b < x.length; b += 32) {
                        float amax = 0;
                        for (int i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b + i]));
                        float d = amax / 127;
                        float inv = d == 0 ? 0 : 1 / d;
                        u16(Numerics.floatToF16(d));
                        // the quants use the F32 scale, as ggml's reference quantizer does (its dequantizer then uses the F16 one)
                        for (int i = 0; i < 32; i++) u8(roundHalfAway(x[b + i] * inv));
                    }
                }
            }
        }

        /** C's roundf: halves away from zero (Math.round takes -0.5 to 0). */
        private static int roundHalfAway(float v) {
            int r = (int) Math.floor(Math.abs(v) + 0.5f);
            return v < 0 ? -r : r;
        }
    }
}
