package dev.tenfold.engine.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes that never leave a half-written file under the final name: every file tenfold writes
 * (weights, configs, adapters, reports) goes to a temporary name beside it, is forced to disk and
 * renamed into place; on failure the temporary file is removed and the old file is untouched.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    private static final SecureRandom RANDOM = new SecureRandom();

    /** How {@link #write} names its temporary files: ".NAME.HEX.tmp" beside NAME. */
    private static final Pattern TEMPORARY = Pattern.compile("\\.(.+)\\.[0-9a-f]{1,16}\\.tmp");

    /**
     * The name of the file that a temporary of {@link #write} called {@code fileName} was to become
     * (".model.safetensors.3f2a9c.tmp" gives "model.safetensors"), or null when the name is not of that
     * form. A write killed before its rename leaves such a file; callers that own a folder use this to
     * recognise and remove them.
     */
    public static String targetOfTemporary(String fileName) {
        Matcher m = TEMPORARY.matcher(fileName);
        return m.matches() ? m.group(1) : null;
    }

    /** Replaces {@code file} with {@code bytes} atomically. */
    public static void write(Path file, byte[] bytes) {
        write(file, ch -> {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) ch.write(b);
        });
    }

    /** Writes a file's content through a channel. */
    @FunctionalInterface
    public interface Body {
        void write(FileChannel ch) throws IOException;
    }

    /** Temp file in the same folder (so the rename stays on one filesystem), fsync, rename into place. */
    public static void write(Path file, Body body) {
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        Path tmp = null;
        try {
            FileChannel ch = null;
            // Not Files.createTempFile: it makes the file 0600, and the renamed result would keep
            // that; a plain CREATE_NEW gets the usual permissions from the umask.
            for (int attempt = 0; ch == null; attempt++) {
                tmp = dir.resolve("." + abs.getFileName() + "." + Long.toHexString(RANDOM.nextLong()) + ".tmp"); // see TEMPORARY
                try {
                    ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                } catch (FileAlreadyExistsException e) {
                    tmp = null;
                    if (attempt >= 100) throw e;
                }
            }
            try (FileChannel c = ch) {
                body.write(c);
                c.force(true); // data on disk before the rename, so a crash cannot leave a renamed empty file
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            deleteQuietly(tmp, e);
            throw new UncheckedIOException(file + ": write failed: " + e, e);
        } catch (RuntimeException | Error e) {
            deleteQuietly(tmp, e);
            throw e;
        }
    }

    private static void deleteQuietly(Path tmp, Throwable cause) {
        if (tmp == null) return;
        try {
            Files.deleteIfExists(tmp);
        } catch (IOException d) {
            cause.addSuppressed(d);
        }
    }
}
