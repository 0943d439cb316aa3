package dev.tenfold.engine.io;

import static dev.tenfold.engine.io.SafeTensorsTest.build;
import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Malformed and hostile files: every one must fail with a {@link SafeTensorsException} whose
 * message names the file and the problem, never another exception, an OOM or a hang.
 */
class SafeTensorsHostileTest {
    @TempDir Path dir;

    private static final String F32_2 = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    private SafeTensorsException assertBad(byte[] bytes, String keyword) throws Exception {
        Path file = dir.resolve("bad.safetensors");
        Files.write(file, bytes);
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsFile.open(file).close());
        String m = e.getMessage();
        assertTrue(m.contains(file.toString()), "message names the file: " + m);
        assertTrue(m.toLowerCase(Locale.ROOT).contains(keyword.toLowerCase(Locale.ROOT)),
                "message should mention '" + keyword + "': " + m);
        return e;
    }

    private SafeTensorsException assertBad(String header, int dataBytes, String keyword) throws Exception {
        return assertBad(build(header, new byte[dataBytes]), keyword);
    }

    private static byte[] withLength(long n, int rest) {
        byte[] b = new byte[8 + rest];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(n);
        b[8] = '{';
        return b;
    }

    private byte[] smallValidFile() throws Exception {
        Path file = dir.resolve("valid.safetensors");
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("w", Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        m.put("b", Tensor.allocate(DType.BF16, 3));
        m.put("i", Tensor.ofInts(new int[] {7}, 1));
        SafeTensorsWriter.write(file, m, Map.of("format", "pt"));
        m.values().forEach(Tensor::close);
        byte[] bytes = Files.readAllBytes(file);
        SafeTensorsFile.open(file).close(); // sanity: it is valid
        return bytes;
    }

    @Test
    void everyTruncationIsRejected() throws Exception {
        byte[] valid = smallValidFile();
        for (int len = 0; len < valid.length; len++) {
            SafeTensorsException e = assertBad(Arrays.copyOf(valid, len), "truncated");
            assertNotNull(e.getMessage(), "length " + len);
        }
    }

    @Test
    void headerLengthOutOfRange() throws Exception {
        assertBad(withLength(Long.MAX_VALUE, 16), "exceeds");
        assertBad(withLength(-1L, 16), "exceeds"); // 2^64-1 unsigned
        assertBad(withLength(1L << 40, 16), "exceeds");
        assertBad(withLength(100_000_001L, 16), "exceeds");
        assertBad(withLength(0, 16), "length is 0");
        assertBad(withLength(17, 16), "truncated"); // larger than the file
        assertBad(new byte[] {2, 0, 0, 0, 0, 0, 0}, "shorter than");
        assertBad(new byte[0], "shorter than");
    }

    @Test
    void headerTextProblems() throws Exception {
        byte[] badUtf8 = build("{\"a\u00e9\":1}", new byte[0]);
        badUtf8[11] = (byte) 0xff; // break the two-byte sequence of é
        assertBad(badUtf8, "UTF-8");
        byte[] overlong = build("{\"ab\":1}", new byte[0]);
        overlong[10] = (byte) 0xc1; // 0xC1 never occurs in UTF-8: it could only start an overlong form
        assertBad(overlong, "UTF-8");
        assertBad("{\"a\": }", 0, "not valid JSON");
        assertBad("{\"a\": {\"dtype\": \"F32\",}}", 0, "not valid JSON");
        assertBad("[1, 2]", 0, "starting with '{'");
        assertBad(" {}", 0, "starting with '{'");
        assertBad("\uFEFF{}", 0, "starting with '{'");
        assertBad("{} x", 0, "trailing");
        assertBad("{}{}", 0, "trailing");
        assertBad("{}\0\0\0\0", 0, "trailing"); // only spaces may pad
        assertBad("{\"a\": 1} // comment", 0, "trailing");
        assertBad("{", 0, "not valid JSON");
    }

    @Test
    @Timeout(10)
    void deeplyNestedJsonFailsFast() throws Exception {
        assertBad("{\"a\":" + "[".repeat(100_000), 0, "depth");
        assertBad("{\"a\":" + "{\"b\":".repeat(100_000), 0, "depth");
    }

    @Test
    void entryProblems() throws Exception {
        assertBad("{\"a\": 3}", 0, "not a JSON object");
        assertBad("{\"a\": {\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "lacks dtype");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "lacks shape");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[2]}}", 8, "lacks data_offsets");
        assertBad("{\"a\": {\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
        assertBad("{\"a\": {\"dtype\":\"NF4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1, "unknown dtype");
        assertBad("{\"a\": {\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
        assertBad("{\"a\": {\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "not a list");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "negative");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "not an integer");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "not an integer");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "overflow");
        assertBad("{\"a\": {\"dtype\":\"F64\",\"shape\":[1152921504606846976],\"data_offsets\":[0,8]}}", 8, "overflow");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[100000000000000000000000000],\"data_offsets\":[0,8]}}", 8, "too large");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 8, "two integers");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "negative");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "begin > end");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, "byte length");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "byte length");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past the end");
        assertBad("{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[9223372036854775800,9223372036854775807]}}", 8, "past the end");
        SafeTensorsException e = assertBad("{\"weird.name\": {\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "negative");
        assertTrue(e.getMessage().contains("weird.name"), "names the tensor: " + e.getMessage());
    }

    @Test
    void layoutProblems() throws Exception {
        assertBad("{\"a\":" + F32_2 + ",\"b\":" + F32_2.replace("[0,8]", "[4,12]") + "}", 12, "overlaps");
        assertBad("{\"a\":" + F32_2 + ",\"b\":" + F32_2 + "}", 8, "overlaps"); // same bytes twice
        assertBad("{\"a\":" + F32_2 + ",\"b\":" + F32_2.replace("[0,8]", "[12,20]") + "}", 20, "hole");
        assertBad("{\"a\":" + F32_2.replace("[0,8]", "[4,12]") + "}", 12, "hole"); // gap at the start
        assertBad("{\"a\":" + F32_2 + "}", 9, "hole"); // a trailing byte nobody owns
        assertBad("{\"a\":" + F32_2 + ",\"a\":" + F32_2.replace("[0,8]", "[8,16]") + "}", 16, "duplicate");
        // Empty tensors may sit anywhere on the tiling, including where another tensor starts.
        Path ok = dir.resolve("ok.safetensors");
        Files.write(ok, build("{\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},\"a\":" + F32_2
                + ",\"f\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}", new byte[8]));
        SafeTensorsFile.open(ok).close();
    }

    @Test
    void metadataProblems() throws Exception {
        assertBad("{\"__metadata__\": {\"k\": 1}}", 0, "not a string");
        assertBad("{\"__metadata__\": {\"k\": null}}", 0, "not a string");
        assertBad("{\"__metadata__\": {\"k\": {\"x\": \"y\"}}}", 0, "not a string");
        assertBad("{\"__metadata__\": [\"k\"]}", 0, "__metadata__");
        assertBad("{\"__metadata__\": {}, \"__metadata__\": {}}", 0, "duplicate");
    }

    @Test
    void notARegularFile() throws Exception {
        Path sub = Files.createDirectory(dir.resolve("folder.safetensors"));
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsFile.open(sub));
        assertTrue(e.getMessage().contains("not a regular file"), e.getMessage());
        e = assertThrows(SafeTensorsException.class, () -> SafeTensorsFile.open(dir.resolve("missing.safetensors")));
        assertTrue(e.getMessage().contains("no such file"), e.getMessage());
    }

    /**
     * 2,000 mutations of a valid file (random byte flips, and digit swaps that keep the JSON valid
     * but move numbers): each either opens (and then every view is readable end to end) or throws
     * SafeTensorsException.
     */
    @Test
    @Timeout(60) // a hang guard, not a benchmark: about 1.5 s on an idle 2-core machine
    void fuzzedFilesOpenOrFailCleanly() throws Exception {
        byte[] valid = smallValidFile();
        SplittableRandom rng = new SplittableRandom(20240611);
        Path file = dir.resolve("fuzz.safetensors");
        int opened = 0, rejected = 0;
        for (int iter = 0; iter < 2000; iter++) {
            byte[] b = valid.clone();
            int edits = 1 + rng.nextInt(3);
            for (int k = 0; k < edits; k++) {
                int at = rng.nextInt(b.length);
                if (rng.nextBoolean() && b[at] >= '0' && b[at] <= '9') {
                    b[at] = (byte) ('0' + rng.nextInt(10));
                } else if (rng.nextInt(4) == 0) {
                    b[at] = (byte) "{}[]\",:-0123456789 e".charAt(rng.nextInt(20));
                } else {
                    b[at] ^= (byte) (1 + rng.nextInt(255));
                }
            }
            Files.write(file, b);
            try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
                for (String n : f.names()) {
                    MemorySegment d = f.tensor(n).data();
                    long sum = 0;
                    for (long i = 0; i < d.byteSize(); i++) sum += d.get(ValueLayout.JAVA_BYTE, i);
                    assertTrue(sum > Long.MIN_VALUE);
                }
                opened++;
            } catch (SafeTensorsException e) {
                assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
                rejected++;
            } catch (Throwable t) {
                throw new AssertionError("iteration " + iter + ": expected SafeTensorsException, got " + t, t);
            }
        }
        assertTrue(rejected > 1000, "most mutations should be caught, rejected " + rejected);
        assertTrue(opened > 0, "some mutations (in data bytes) leave a valid file");
    }

    @Test
    void hugeNamesAreCutShortInMessages() throws Exception {
        String name = "n".repeat(1 << 20);
        SafeTensorsException e = assertBad("{\"" + name + "\": {\"dtype\":\"" + "D".repeat(1 << 20)
                + "\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
        assertTrue(e.getMessage().length() < 1000, "message length " + e.getMessage().length());
    }

    @Test
    void largeHeaderWithinLimitsIsAccepted() throws Exception {
        // A long metadata string is legitimate; it must not trip Jackson's default 20 MB string cap
        // only because we forgot to size the constraints (use 1 MB to keep the test quick).
        String big = "x".repeat(1 << 20);
        byte[] b = build("{\"__metadata__\":{\"k\":\"" + big + "\"}}", new byte[0]);
        Path file = dir.resolve("big.safetensors");
        Files.write(file, b);
        try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
            assertEquals(big, f.metadata().get("k"));
        }
    }
}
