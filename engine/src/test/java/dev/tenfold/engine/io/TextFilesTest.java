package dev.tenfold.engine.io;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextFilesTest {
    @TempDir Path dir;

    static byte[] bytes(Object... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Object p : parts) {
            if (p instanceof String s) out.writeBytes(s.getBytes(StandardCharsets.UTF_8));
            else out.write((Integer) p);
        }
        return out.toByteArray();
    }

    @Test
    void invalidUtf8NamesTheFileTheByteAndTheLine() throws Exception {
        Path f = Files.write(dir.resolve("latin1.txt"), bytes("one\ntwo caf", 0xE9, " au lait\n"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TextFiles.readUtf8(f));
        assertEquals(f + ": not valid UTF-8 at byte 11 (line 2, byte 0xe9); save the file as UTF-8", e.getMessage());
    }

    @Test
    void theFirstBadByteIsFoundWhereverItIs() {
        assertEquals(-1, TextFiles.firstInvalidUtf8(bytes("héllo wörld ✓"), 0, bytes("héllo wörld ✓").length));
        assertEquals(0, TextFiles.firstInvalidUtf8(bytes(0x80, "abc"), 0, 4));
        byte[] cut = bytes("ab", 0xE2, 0x9C); // a 3-byte character cut off at the end
        assertEquals(2, TextFiles.firstInvalidUtf8(cut, 0, cut.length));
        byte[] overlong = bytes("x", 0xC0, 0xAF); // an overlong "/"
        assertEquals(1, TextFiles.firstInvalidUtf8(overlong, 0, overlong.length));
        byte[] far = new byte[100_000];
        java.util.Arrays.fill(far, (byte) 'a');
        far[77_777] = (byte) 0xFF;
        assertEquals(77_777, TextFiles.firstInvalidUtf8(far, 0, far.length));
        assertEquals(77_777, TextFiles.firstInvalidUtf8(far, 10, far.length), "an offset in the whole array");
        assertEquals(-1, TextFiles.firstInvalidUtf8(far, 0, 77_777));
    }

    @Test
    void validTextIsReadWithoutItsByteOrderMark() throws Exception {
        Path f = Files.write(dir.resolve("bom.txt"), bytes(0xEF, 0xBB, 0xBF, "héllo\n"));
        assertEquals("héllo\n", TextFiles.readUtf8(f));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TextFiles.readUtf8(dir.resolve("none.txt")));
        assertEquals(dir.resolve("none.txt") + ": no such file", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TextFiles.decodeUtf8(bytes("a", 0xFF), "standard input"));
        assertTrue(e.getMessage().startsWith("standard input: not valid UTF-8 at byte 1 (line 1"), e.getMessage());
    }
}
