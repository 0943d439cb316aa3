package dev.tenfold.engine.io;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Round trips, hand-built files with known bytes, and the writer's atomicity. */
class SafeTensorsTest {
    @TempDir Path dir;

    /** 8-byte little-endian length, the header bytes as given (no padding), then the data. */
    static byte[] build(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
        out.writeBytes(h);
        out.writeBytes(data);
        return out.toByteArray();
    }

    static Tensor randomBytes(SplittableRandom rng, DType dtype, long... shape) {
        Tensor t = Tensor.allocate(dtype, shape);
        MemorySegment d = t.data();
        for (long i = 0; i < d.byteSize(); i++) d.set(ValueLayout.JAVA_BYTE, i, (byte) rng.nextInt(256));
        return t;
    }

    @Test
    void roundTripEveryDtypeWithScalarsEmptiesAndMetadata() {
        SplittableRandom rng = new SplittableRandom(42);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (DType d : DType.values()) {
            if (d == DType.NF4) continue;
            tensors.put(d + ".matrix", randomBytes(rng, d, 3, 5));
            tensors.put(d + ".scalar", randomBytes(rng, d)); // shape []
            tensors.put(d + ".empty", randomBytes(rng, d, 0));
            tensors.put(d + ".empty3d", randomBytes(rng, d, 2, 0, 3));
        }
        assertEquals(15 * 4, tensors.size());
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("note", "ünïcödé ✓ \"quoted\" \\ back\nslash");
        meta.put("empty", "");
        Path file = dir.resolve("all.safetensors");
        SafeTensorsWriter.write(file, tensors, meta);

        try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
            assertEquals(List.copyOf(tensors.keySet()), f.names());
            assertEquals(meta, f.metadata());
            assertEquals(List.copyOf(meta.keySet()), List.copyOf(f.metadata().keySet()));
            assertEquals(0, f.dataStart() % 8, "header padded to a multiple of 8");
            for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                Tensor want = e.getValue();
                TensorInfo info = f.info(e.getKey());
                assertEquals(want.dtype(), info.dtype(), e.getKey());
                assertArrayEquals(want.shape(), info.shape(), e.getKey());
                assertEquals(want.byteSize(), info.byteSize(), e.getKey());
                Tensor got = f.tensor(e.getKey());
                assertEquals(want.dtype(), got.dtype());
                assertArrayEquals(want.shape(), got.shape());
                assertEquals(-1, want.data().mismatch(got.data()), e.getKey() + " bytes differ");
            }
            assertEquals(1, f.tensor("F32.scalar").numel());
            assertEquals(0, f.tensor("U8.empty").numel());
        }
        tensors.values().forEach(Tensor::close);
    }

    @Test
    void emptyFileAndNoMetadata() {
        Path file = dir.resolve("empty.safetensors");
        SafeTensorsWriter.write(file, Map.of(), null);
        try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
            assertEquals(List.of(), f.names());
            assertEquals(Map.of(), f.metadata());
        }
    }

    @Test
    void handBuiltFileReadsKnownValuesAtUnalignedOffsets() throws Exception {
        // Header order (a, b) differs from data order (b's bytes first); the odd-length header
        // puts both tensors at odd absolute addresses and "a" at a relative offset of 6.
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[6,22]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                + "\"__metadata__\":{\"k\":\"v\"}}";
        if (header.length() % 2 == 0) header += " ";
        ByteBuffer data = ByteBuffer.allocate(22).order(ByteOrder.LITTLE_ENDIAN);
        data.putShort((short) 0x3F80).putShort((short) 0xC000).putShort((short) 0x3F00); // 1, -2, 0.5
        data.putFloat(1.5f).putFloat(-2.25f).putFloat(3e-5f).putFloat(Float.MAX_VALUE);
        Path file = dir.resolve("hand.safetensors");
        Files.write(file, build(header, data.array()));

        try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
            assertEquals(List.of("a", "b"), f.names());
            assertEquals(Map.of("k", "v"), f.metadata());
            assertEquals(1, f.dataStart() % 2);
            TensorInfo a = f.info("a");
            assertEquals(new TensorInfo("a", DType.F32, new long[] {2, 2}, 6, 22, f.dataStart() + 6), a);
            Tensor ta = f.tensor("a");
            assertArrayEquals(new long[] {2, 2}, ta.shape());
            assertArrayEquals(new float[] {1.5f, -2.25f, 3e-5f, Float.MAX_VALUE}, ta.toFloatArray());
            assertArrayEquals(new float[] {1f, -2f, 0.5f}, f.tensor("b").toFloatArray());
        }
    }

    @Test
    void unknownNameNamesTensorAndFile() {
        Path file = dir.resolve("one.safetensors");
        try (Tensor t = Tensor.of(new float[] {1, 2})) {
            SafeTensorsWriter.write(file, Map.of("w", t), Map.of());
        }
        try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.tensor("nope"));
            assertTrue(e.getMessage().contains("nope") && e.getMessage().contains(file.toString()), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> f.info("nope"));
            assertFalse(f.has("nope"));
            assertTrue(f.has("w"));
        }
    }

    @Test
    void viewsAreReadOnlyAndDieWithTheFile() {
        Path file = dir.resolve("one.safetensors");
        try (Tensor t = Tensor.of(new float[] {1, 2, 3})) {
            SafeTensorsWriter.write(file, Map.of("w", t), Map.of());
        }
        SafeTensorsFile f = SafeTensorsFile.open(file);
        Tensor view = f.tensor("w");
        assertEquals(2f, view.getFloat(1));
        assertThrows(RuntimeException.class, () -> view.setFloat(0, 9f), "mapping is read-only");
        try (Tensor copy = view.copy()) {
            copy.setFloat(0, 9f); // a copy is writable
            assertEquals(9f, copy.getFloat(0));
        }
        f.close();
        f.close(); // harmless
        assertThrows(IllegalStateException.class, () -> view.getFloat(1));
        assertThrows(IllegalStateException.class, () -> f.tensor("w"));
    }

    @Test
    void writerRejectsNf4AndBadNames() {
        Path file = dir.resolve("x.safetensors");
        try (Tensor nf4 = Tensor.allocate(DType.NF4, 4, 64); Tensor ok = Tensor.of(new float[] {1})) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SafeTensorsWriter.write(file, Map.of("q.weight", nf4), null));
            assertTrue(e.getMessage().contains("NF4") && e.getMessage().contains("U8")
                    && e.getMessage().contains("q.weight"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> SafeTensorsWriter.write(file, Map.of("__metadata__", ok), null));
            assertThrows(IllegalArgumentException.class,
                    () -> SafeTensorsWriter.write(file, Map.of("bad\uD800", ok), null));
        }
        assertFalse(Files.exists(file));
    }

    @Test
    void unicodeNamesRoundTrip() {
        Path file = dir.resolve("u.safetensors");
        try (Tensor t = Tensor.of(new float[] {7})) {
            Map<String, Tensor> m = new LinkedHashMap<>();
            m.put("层.0.权重 \"q\"", t);
            m.put("", t); // the format allows any string, even empty
            SafeTensorsWriter.write(file, m, null);
            try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
                assertEquals(List.copyOf(m.keySet()), f.names());
                assertEquals(7f, f.tensor("层.0.权重 \"q\"").getFloat(0));
            }
        }
    }

    // ---------------------------------------------------------------- atomic writes

    private List<Path> listing() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return new ArrayList<>(s.toList());
        }
    }

    private Path existingFile() throws Exception {
        Path file = dir.resolve("model.safetensors");
        try (Tensor t = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2)) {
            SafeTensorsWriter.write(file, Map.of("old", t), Map.of("v", "1"));
        }
        return file;
    }

    @Test
    void closedTensorIsRejectedBeforeTouchingTheDisk() throws Exception {
        Path file = existingFile();
        byte[] before = Files.readAllBytes(file);
        Tensor a = Tensor.of(new float[] {1}), closed = Tensor.of(new float[] {2}), c = Tensor.of(new float[] {3});
        closed.close();
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("a", a);
        m.put("closed", closed);
        m.put("c", c);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SafeTensorsWriter.write(file, m, null));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(file));
        assertEquals(List.of(file), listing());
        a.close();
        c.close();
    }

    @Test
    void failureMidWriteLeavesOldFileAndNoTempFile() throws Exception {
        Path file = existingFile();
        byte[] before = Files.readAllBytes(file);
        // A view whose memory is freed after the checks pass: the header and the first tensor are
        // written, then copying the second tensor's bytes throws.
        Arena gone = Arena.ofShared();
        Tensor dangling = Tensor.wrap(gone.allocate(4L << 20), DType.F32, 1 << 20);
        gone.close();
        try (Tensor big = Tensor.allocate(DType.F32, 3 << 20)) {
            Map<String, Tensor> m = new LinkedHashMap<>();
            m.put("big", big);
            m.put("dangling", dangling);
            assertThrows(IllegalStateException.class, () -> SafeTensorsWriter.write(file, m, null));
        }
        assertArrayEquals(before, Files.readAllBytes(file));
        assertEquals(List.of(file), listing());
        try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
            assertEquals(List.of("old"), f.names());
        }
    }

    @Test
    void overwriteReplacesWhileOldMappingStaysReadable() throws Exception {
        assumeFalse(System.getProperty("os.name").toLowerCase().contains("win"), "POSIX rename semantics");
        Path file = existingFile();
        try (SafeTensorsFile old = SafeTensorsFile.open(file)) {
            Tensor oldView = old.tensor("old");
            try (Tensor t = Tensor.of(new float[] {5, 6})) {
                SafeTensorsWriter.write(file, Map.of("new", t), null);
            }
            assertArrayEquals(new float[] {1, 2, 3, 4}, oldView.toFloatArray()); // the old inode is still mapped
            try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
                assertEquals(List.of("new"), f.names());
                assertArrayEquals(new float[] {5, 6}, f.tensor("new").toFloatArray());
                assertEquals(Map.of(), f.metadata());
            }
        }
        assertEquals(List.of(file), listing());
    }

    @Test
    void writeIntoMissingFolderFailsCleanly() {
        Path file = dir.resolve("no/such/dir/x.safetensors");
        try (Tensor t = Tensor.of(new float[] {1})) {
            assertThrows(java.io.UncheckedIOException.class, () -> SafeTensorsWriter.write(file, Map.of("t", t), null));
        }
    }
}
