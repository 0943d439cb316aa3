package dev.tenfold.qlora.data;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The byte line reader: lines longer than its buffer, "\r\n" split across reads, a last line without "\n". */
class Utf8LineReaderDataTest {

    private static List<String> readAll(InputStream in) throws IOException {
        List<String> out = new ArrayList<>();
        try (Utf8LineReader r = new Utf8LineReader(in)) {
            byte[] line;
            while ((line = r.next()) != null) {
                out.add(new String(line, StandardCharsets.UTF_8));
                assertEquals(out.size(), r.lineNumber());
            }
        }
        return out;
    }

    @Test
    void longLinesAndLineEnds() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        String a = "a".repeat(65535); // its "\r" is the buffer's last byte, the "\n" comes with the next read
        String big = "b".repeat(200_000);
        b.writeBytes((a + "\r\n" + big + "\n\n\r\n" + "é c").getBytes(StandardCharsets.UTF_8));
        assertEquals(List.of(a, big, "", "", "é c"), readAll(new ByteArrayInputStream(b.toByteArray())));
    }

    @Test
    void shortReadsGiveTheSameLines() throws IOException {
        byte[] bytes = "one\ntwo\r\n\nthree\n".getBytes(StandardCharsets.UTF_8);
        // A stream that hands out one byte per read.
        InputStream trickle = new ByteArrayInputStream(bytes) {
            @Override
            public synchronized int read(byte[] buf, int off, int len) {
                return super.read(buf, off, Math.min(len, 1));
            }
        };
        assertEquals(List.of("one", "two", "", "three"), readAll(trickle));
        assertEquals(List.of(), readAll(new ByteArrayInputStream(new byte[0])));
        assertEquals(List.of(""), readAll(new ByteArrayInputStream("\n".getBytes(StandardCharsets.UTF_8))));
    }
}
