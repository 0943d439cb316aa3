package dev.tenfold.engine.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * Writes safetensors files (and shard indexes) atomically: the bytes go to a temporary file in
 * the target's folder, are forced to disk, and the temporary file is then renamed over the
 * target. A failure at any point deletes the temporary file and leaves an existing target as it
 * was. (Renaming also keeps an open {@link SafeTensorsFile} mapping of the old file valid.)
 *
 * <p>Errors: bad arguments (null, NF4, device tensors, closed tensors, reserved names) are
 * {@link IllegalArgumentException}s and are found before anything is written; disk failures are
 * {@link UncheckedIOException}s naming the file; a failure while copying a tensor's memory
 * propagates as thrown (after the clean-up).
 */
public final class SafeTensorsWriter {
    private SafeTensorsWriter() {}

    private static final JsonFactory JSON = new JsonFactory();
    private static final int CHUNK = 4 << 20; // staging buffer: tensors may exceed 2 GiB, ByteBuffers may not

    /**
     * Writes {@code tensors} (in the map's iteration order; use a LinkedHashMap) and optional
     * string {@code metadata} (null or empty for none) to {@code file}, replacing it atomically.
     * Every safetensors dtype is accepted; NF4 is not one, so store packed NF4 bytes as U8.
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        if (file == null) throw new IllegalArgumentException("safetensors path is null");
        if (tensors == null) throw new IllegalArgumentException(file + ": tensor map is null");
        byte[] header = header(file, tensors, metadata);
        AtomicFiles.write(file, ch -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).flip();
            writeFully(ch, len);
            writeFully(ch, ByteBuffer.wrap(header));
            try (Arena staging = Arena.ofConfined()) {
                MemorySegment buf = staging.allocate(CHUNK);
                for (Tensor t : tensors.values()) copyOut(ch, t.data(), buf);
            }
        });
    }

    /**
     * Writes a shard index ({@code {"metadata": {"total_size": N}, "weight_map": {...}}}) the way
     * Hugging Face does, atomically. {@code totalSize} is the sum of the shards' data bytes.
     */
    public static void writeIndex(Path file, Map<String, String> weightMap, long totalSize) {
        if (file == null) throw new IllegalArgumentException("index path is null");
        if (weightMap == null) throw new IllegalArgumentException(file + ": weight map is null");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = JSON.createGenerator(out)) {
            g.useDefaultPrettyPrinter();
            g.writeStartObject();
            g.writeObjectFieldStart("metadata");
            g.writeNumberField("total_size", totalSize);
            g.writeEndObject();
            g.writeObjectFieldStart("weight_map");
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                checkString(file, "tensor name", e.getKey());
                checkString(file, "shard name of '" + e.getKey() + "'", e.getValue());
                g.writeStringField(e.getKey(), e.getValue());
            }
            g.writeEndObject();
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot encode index: " + e.getMessage(), e);
        }
        out.write('\n');
        byte[] bytes = out.toByteArray();
        AtomicFiles.write(file, bytes);
    }

    // ---------------------------------------------------------------- header

    /** The header JSON, space-padded so that the data starts at a multiple of 8 bytes. */
    static byte[] header(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = JSON.createGenerator(out)) {
            g.writeStartObject();
            if (metadata != null && !metadata.isEmpty()) {
                g.writeObjectFieldStart("__metadata__");
                for (Map.Entry<String, String> e : metadata.entrySet()) {
                    checkString(file, "metadata key", e.getKey());
                    checkString(file, "metadata value of '" + e.getKey() + "'", e.getValue());
                    g.writeStringField(e.getKey(), e.getValue());
                }
                g.writeEndObject();
            }
            long offset = 0;
            for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                String name = e.getKey();
                Tensor t = e.getValue();
                checkString(file, "tensor name", name);
                if (name.equals("__metadata__")) throw new IllegalArgumentException(file + ": '__metadata__' is reserved, not a tensor name");
                if (t == null) throw new IllegalArgumentException(file + ": tensor '" + name + "' is null");
                if (t.isClosed()) throw new IllegalArgumentException(file + ": tensor '" + name + "' is closed");
                if (!t.device().isCpu()) {
                    throw new IllegalArgumentException(file + ": tensor '" + name + "' is on " + t.device() + "; copy it to the host first");
                }
                String dtype = t.dtype().safetensorsName();
                if (dtype == null) {
                    throw new IllegalArgumentException(file + ": tensor '" + name + "' is " + t.dtype()
                            + ", which safetensors has no dtype for; store packed NF4 bytes as U8");
                }
                long end = Math.addExact(offset, t.byteSize());
                g.writeObjectFieldStart(name);
                g.writeStringField("dtype", dtype);
                g.writeArrayFieldStart("shape");
                for (long d : t.shape()) g.writeNumber(d);
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                g.writeNumber(end);
                g.writeEndArray();
                g.writeEndObject();
                offset = end;
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot encode header: " + e.getMessage(), e);
        }
        int len = out.size();
        int padded = (len + 7) & ~7;
        if (padded > SafeTensorsFile.MAX_HEADER_BYTES) {
            throw new IllegalArgumentException(file + ": header would be " + padded + " bytes, over the "
                    + SafeTensorsFile.MAX_HEADER_BYTES + "-byte limit readers accept");
        }
        byte[] h = Arrays.copyOf(out.toByteArray(), padded);
        Arrays.fill(h, len, padded, (byte) ' ');
        return h;
    }

    /** Names and metadata must be well-formed Unicode so that they encode to valid UTF-8. */
    private static void checkString(Path file, String what, String s) {
        if (s == null) throw new IllegalArgumentException(file + ": " + what + " is null");
        if (!StandardCharsets.UTF_8.newEncoder().canEncode(s)) {
            throw new IllegalArgumentException(file + ": " + what + " '" + s + "' has unpaired surrogates; not valid Unicode");
        }
    }

    // ---------------------------------------------------------------- bytes

    /** Copies {@code src} through the staging buffer; reading it re-checks the memory is alive. */
    private static void copyOut(FileChannel ch, MemorySegment src, MemorySegment buf) throws IOException {
        long size = src.byteSize();
        for (long at = 0; at < size; at += buf.byteSize()) {
            long n = Math.min(buf.byteSize(), size - at);
            MemorySegment.copy(src, at, buf, 0, n);
            writeFully(ch, buf.asSlice(0, n).asByteBuffer());
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }
}
