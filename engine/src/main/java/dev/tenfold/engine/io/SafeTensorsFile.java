package dev.tenfold.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.Locale;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One safetensors file, memory-mapped read-only and fully validated on open.
 *
 * <p>Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object, maybe
 * padded with spaces), then the data buffer. Every entry's byte range is checked against its
 * dtype and shape, and the ranges must tile the data buffer exactly (no holes, no overlaps), so
 * that a tensor view can never reach outside its own bytes.
 *
 * <p>{@link #tensor} returns views straight into the mapping: no copy, read-only (writing throws;
 * {@link Tensor#copy()} one to modify it), valid until this file is closed. The mapping lives in
 * a shared arena so that any thread may read the views; {@link #close()} unmaps it.
 */
public final class SafeTensorsFile implements AutoCloseable {
    /** Reference readers refuse headers larger than this; so do we. */
    public static final long MAX_HEADER_BYTES = StrictJson.MAX_BYTES;

    private static final ValueLayout.OfLong U64_LE =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final String METADATA_KEY = "__metadata__";

    private final Path path;
    private final Arena arena;
    private final MemorySegment mapped;
    private final long dataStart;
    private final Map<String, TensorInfo> infos; // file (header) order
    private final Map<String, String> metadata;
    private volatile boolean closed;

    private SafeTensorsFile(Path path, Arena arena, MemorySegment mapped, long dataStart,
                            Map<String, TensorInfo> infos, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.mapped = mapped;
        this.dataStart = dataStart;
        this.infos = infos;
        this.metadata = metadata;
    }

    /** Maps and validates {@code file}; any problem is a {@link SafeTensorsException} naming it. */
    public static SafeTensorsFile open(Path file) {
        if (file == null) throw new IllegalArgumentException("safetensors path is null");
        // A FIFO or device would block or never end; only a regular file has a size we can trust.
        if (!Files.isRegularFile(file)) {
            throw new SafeTensorsException(file + ": " + (Files.exists(file) ? "not a regular file" : "no such file"));
        }
        Arena arena = Arena.ofShared();
        try {
            MemorySegment seg;
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                long size = ch.size();
                if (size < 8) {
                    throw new SafeTensorsException(file + ": file is " + size
                            + " bytes, shorter than the 8-byte header length; truncated or not a safetensors file");
                }
                seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            }
            return parse(file, arena, seg);
        } catch (IOException e) {
            arena.close();
            throw new SafeTensorsException(file + ": cannot read: " + e, e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    private static SafeTensorsFile parse(Path file, Arena arena, MemorySegment seg) {
        long size = seg.byteSize();
        long n = seg.get(U64_LE, 0);
        // n is an unsigned 64-bit value: a negative long means >= 2^63, caught by the first test.
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new SafeTensorsException(file + ": header length " + Long.toUnsignedString(n)
                    + " exceeds the " + MAX_HEADER_BYTES + "-byte limit; corrupt or not a safetensors file");
        }
        if (n == 0) throw new SafeTensorsException(file + ": header length is 0; a header needs at least '{}'");
        if (n > size - 8) {
            throw new SafeTensorsException(file + ": header length " + n + " is larger than the " + (size - 8)
                    + " bytes after the length field; the file is truncated");
        }
        // n <= 100,000,000 and within the file: allocating it is bounded and backed by real bytes.
        byte[] header = seg.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
        if (header[0] != '{') {
            throw new SafeTensorsException(file + ": header must be a JSON object starting with '{' but starts with byte 0x"
                    + String.format("%02x", header[0] & 0xff));
        }
        JsonNode root = StrictJson.parse(header, header.length, file + ": header");
        if (!root.isObject()) throw new SafeTensorsException(file + ": header is not a JSON object");

        long dataStart = 8 + n;
        long dataLen = size - dataStart;
        Map<String, TensorInfo> infos = new LinkedHashMap<>();
        Map<String, String> metadata = Map.of();
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            String name = e.getKey();
            if (name.equals(METADATA_KEY)) {
                metadata = parseMetadata(file, e.getValue());
                continue;
            }
            // The parser rejects duplicate keys (a tree would silently keep the last); this is a guard.
            if (infos.put(name, parseEntry(file, name, e.getValue(), dataLen, dataStart)) != null) {
                throw new SafeTensorsException(file + ": duplicate tensor name " + StrictJson.quote(name));
            }
        }
        checkTiling(file, infos.values(), dataLen);
        return new SafeTensorsFile(file, arena, seg, dataStart, Collections.unmodifiableMap(infos), metadata);
    }

    private static Map<String, String> parseMetadata(Path file, JsonNode node) {
        if (!node.isObject()) throw new SafeTensorsException(file + ": __metadata__ is not a JSON object of strings");
        Map<String, String> m = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw new SafeTensorsException(file + ": __metadata__ value of " + StrictJson.quote(e.getKey())
                        + " is not a string (got " + e.getValue().getNodeType().name().toLowerCase(Locale.ROOT) + ")");
            }
            m.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(m);
    }

    private static TensorInfo parseEntry(Path file, String name, JsonNode node, long dataLen, long dataStart) {
        String where = file + ": tensor " + StrictJson.quote(name);
        if (!node.isObject()) throw new SafeTensorsException(where + ": entry is not a JSON object");
        // Unknown extra keys are ignored, as the reference reader does, so newer writers stay readable.
        JsonNode dt = node.get("dtype"), sh = node.get("shape"), off = node.get("data_offsets");
        if (dt == null || sh == null || off == null) {
            throw new SafeTensorsException(where + ": entry lacks " + (dt == null ? "dtype" : sh == null ? "shape" : "data_offsets"));
        }
        if (!dt.isTextual()) throw new SafeTensorsException(where + ": dtype is not a string");
        DType dtype;
        try {
            dtype = DType.fromSafetensors(dt.textValue());
        } catch (IllegalArgumentException e) {
            throw new SafeTensorsException(where + ": unknown dtype " + StrictJson.quote(dt.textValue()));
        }
        if (!sh.isArray()) throw new SafeTensorsException(where + ": shape is not a list");
        long[] shape = new long[sh.size()]; // bounded by the header's size, which was checked
        for (int i = 0; i < shape.length; i++) shape[i] = nonNegativeLong(sh.get(i), where + ": shape[" + i + "]");
        long numel, bytes;
        try {
            numel = Tensor.numelOf(shape);
            bytes = dtype.byteSize(numel);
        } catch (ArithmeticException e) {
            throw new SafeTensorsException(where + ": shape " + Arrays.toString(shape) + " overflows a 64-bit element count");
        }
        if (!off.isArray() || off.size() != 2) {
            throw new SafeTensorsException(where + ": data_offsets is not a list of two integers");
        }
        long begin = nonNegativeLong(off.get(0), where + ": data_offsets[0]");
        long end = nonNegativeLong(off.get(1), where + ": data_offsets[1]");
        if (begin > end) {
            throw new SafeTensorsException(where + ": data_offsets [" + begin + ", " + end + "] has begin > end");
        }
        if (end > dataLen) {
            throw new SafeTensorsException(where + ": data_offsets [" + begin + ", " + end
                    + "] reach past the end of the " + dataLen + "-byte data buffer; truncated file?");
        }
        if (end - begin != bytes) {
            throw new SafeTensorsException(where + ": byte length " + (end - begin) + " does not match " + dtype
                    + Arrays.toString(shape) + ", which needs " + bytes + " bytes");
        }
        return new TensorInfo(name, dtype, shape, begin, end, dataStart + begin);
    }

    private static long nonNegativeLong(JsonNode v, String what) {
        if (v == null || !v.isIntegralNumber()) throw new SafeTensorsException(what + " is not an integer (got " + v + ")");
        if (!v.canConvertToLong()) throw new SafeTensorsException(what + " = " + v + " is too large (overflows 64 bits)");
        long x = v.longValue();
        if (x < 0) throw new SafeTensorsException(what + " = " + x + " is negative");
        return x;
    }

    /** The byte ranges, sorted by begin, must follow one another from 0 to the end of the buffer. */
    private static void checkTiling(Path file, Collection<TensorInfo> all, long dataLen) {
        List<TensorInfo> sorted = new ArrayList<>(all);
        // Ties on begin put empty tensors first, so [0,0) then [0,4) is a valid tiling.
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long at = 0;
        TensorInfo prev = null;
        for (TensorInfo t : sorted) {
            if (t.begin() < at) {
                throw new SafeTensorsException(file + ": tensor " + StrictJson.quote(t.name()) + " [" + t.begin() + ", " + t.end()
                        + ") overlaps tensor " + StrictJson.quote(prev.name()) + " [" + prev.begin() + ", " + prev.end() + ")");
            }
            if (t.begin() > at) {
                throw new SafeTensorsException(file + ": hole in the data buffer: bytes [" + at + ", " + t.begin()
                        + ") before tensor " + StrictJson.quote(t.name()) + " belong to no tensor");
            }
            at = t.end();
            prev = t;
        }
        if (at != dataLen) {
            throw new SafeTensorsException(file + ": hole in the data buffer: tensors cover " + at
                    + " bytes but it holds " + dataLen + " (trailing bytes belong to no tensor)");
        }
    }

    // ---------------------------------------------------------------- access

    public Path path() { return path; }

    /** Tensor names in header order ({@code __metadata__} excluded). */
    public List<String> names() { return List.copyOf(infos.keySet()); }

    public boolean has(String name) { return infos.containsKey(name); }

    public int size() { return infos.size(); }

    /** The tensor's dtype, shape and byte range; unknown names throw {@link IllegalArgumentException}. */
    public TensorInfo info(String name) {
        TensorInfo t = infos.get(name);
        if (t == null) throw new IllegalArgumentException("no tensor '" + name + "' in " + path);
        return t;
    }

    /** The {@code __metadata__} map (string to string, header order); empty when absent. */
    public Map<String, String> metadata() { return metadata; }

    /** Offset of the data buffer in the file (8 + header length). */
    public long dataStart() { return dataStart; }

    /**
     * A read-only view of the tensor's bytes in the mapping (no copy). It is valid until this file
     * is closed; afterwards any access throws {@link IllegalStateException}. Closing the view
     * itself frees nothing.
     */
    public Tensor tensor(String name) {
        TensorInfo t = info(name);
        if (closed) throw new IllegalStateException(path + " is closed; cannot read tensor '" + name + "'");
        return Tensor.wrap(mapped.asSlice(t.fileOffset(), t.byteSize()), t.dtype(), t.shape());
    }

    public boolean isClosed() { return closed; }

    /** Unmaps the file; every view from {@link #tensor} becomes unusable. Closing twice is harmless. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        arena.close();
    }

    @Override
    public String toString() { return "SafeTensorsFile " + path + " (" + infos.size() + " tensors)"; }
}
