package dev.tenfold.qlora.data;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;

/**
 * Reads a file line by line as raw bytes (the line without its "\n" or "\r\n").
 *
 * <p>Why not a BufferedReader: a reader decodes ahead of the line being read, so invalid UTF-8
 * would fail on no particular line, and it would end the whole file. Reading bytes and decoding
 * each line on its own (see {@link JsonlDataset}) makes bad UTF-8 one bad line, named by number,
 * that skipBadLines can skip like any other; and the decoding then runs on the worker threads.
 */
final class Utf8LineReader implements Closeable {
    private final InputStream in;
    private final byte[] buf = new byte[1 << 16];
    private int pos;
    private int end;
    private boolean eof;
    private int lineNumber;

    Utf8LineReader(InputStream in) {
        this.in = in;
    }

    /** The next line's bytes, or null at the end of the file. A last line without "\n" counts. */
    byte[] next() throws IOException {
        byte[] line = null; // grows only for lines longer than what the buffer holds at once
        int len = 0;
        boolean any = false;
        while (true) {
            if (pos == end) {
                if (eof || !fill()) break;
            }
            any = true;
            int i = pos;
            while (i < end && buf[i] != '\n') i++;
            int n = i - pos;
            if (line == null) line = new byte[Math.max(n, 256)];
            if (len + n > line.length) line = Arrays.copyOf(line, Math.max(len + n, line.length * 2));
            System.arraycopy(buf, pos, line, len, n);
            len += n;
            if (i < end) {
                pos = i + 1; // past the '\n'
                return finish(line, len);
            }
            pos = end;
        }
        return any ? finish(line, len) : null;
    }

    /** The number of the line {@link #next()} returned last, from 1. */
    int lineNumber() {
        return lineNumber;
    }

    private byte[] finish(byte[] line, int len) {
        lineNumber++;
        if (len > 0 && line[len - 1] == '\r') len--;
        return Arrays.copyOf(line, len);
    }

    private boolean fill() throws IOException {
        int n = in.read(buf, 0, buf.length);
        if (n <= 0) {
            eof = true;
            pos = end = 0;
            return false;
        }
        pos = 0;
        end = n;
        return true;
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
