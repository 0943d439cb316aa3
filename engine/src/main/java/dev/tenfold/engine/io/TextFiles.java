package dev.tenfold.engine.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Text files read strictly as UTF-8. The JDK's own readers report invalid UTF-8 as "Input length
 * = 1", naming neither the file nor the place; these name both (the byte offset and the line).
 */
public final class TextFiles {
    private TextFiles() {}

    /**
     * The whole file as text. A missing file is an IllegalArgumentException "FILE: no such file";
     * invalid UTF-8 one that gives the byte offset and line of the first bad byte. A leading
     * byte-order mark is dropped.
     */
    public static String readUtf8(Path file) throws IOException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no such file");
        }
        return decodeUtf8(bytes, file.toString());
    }

    /** As {@link #readUtf8} for bytes from elsewhere (standard input, an archive); {@code source} names them in the message. */
    public static String decodeUtf8(byte[] bytes, String source) {
        int bad = firstInvalidUtf8(bytes, 0, bytes.length);
        if (bad >= 0) {
            int line = 1;
            for (int i = 0; i < bad; i++) if (bytes[i] == '\n') line++;
            throw new IllegalArgumentException(source + ": not valid UTF-8 at byte " + bad + " (line " + line + ", byte 0x"
                    + String.format("%02x", bytes[bad] & 0xff) + "); save the file as UTF-8");
        }
        String s = new String(bytes, StandardCharsets.UTF_8);
        return s.startsWith("\uFEFF") ? s.substring(1) : s;
    }

    /** The offset (from 0, relative to the array) of the first byte of bytes[from, to) that is not valid UTF-8, or -1. */
    public static int firstInvalidUtf8(byte[] bytes, int from, int to) {
        CharsetDecoder d = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes, from, to - from);
        CharBuffer out = CharBuffer.allocate(8192);
        while (true) {
            CoderResult r = d.decode(in, out, true);
            if (r.isError()) return in.position();
            if (r.isUnderflow()) break;
            out.clear(); // overflow: the text is not kept, only checked
        }
        out.clear();
        CoderResult r = d.flush(out);
        return r.isError() ? in.position() : -1;
    }
}
