package dev.tenfold.tools;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Where commands write, checked before they load a model or compute anything: a mistyped path
 * costs nothing, and nothing a user keeps there is replaced. Every refusal is one line that starts
 * with the flag and says what is wrong.
 */
final class Outputs {
    private Outputs() {}

    /** checkpoint-N: a folder a training run can be resumed from. */
    static final Pattern CHECKPOINT = Pattern.compile("checkpoint-\\d+");

    /**
     * A folder the command will create or write into: it is a folder (or does not exist yet) and
     * can be written, or the nearest folder above it that exists can.
     */
    static void checkWritableFolder(String flag, Path dir) {
        if (Files.exists(dir)) {
            if (!Files.isDirectory(dir)) throw new IllegalArgumentException(flag + " " + dir + " is a file, not a folder");
            if (!Files.isWritable(dir)) throw new IllegalArgumentException(flag + " " + dir + ": the folder is not writable");
            return;
        }
        checkCreatable(flag, dir);
    }

    /** A file the command will write: not a folder, and its folder exists and is writable or can be made. */
    static void checkWritableFile(String flag, Path file) {
        if (Files.isDirectory(file)) throw new IllegalArgumentException(flag + " " + file + " is a folder; give a file name");
        if (Files.exists(file) && !Files.isWritable(file)) throw new IllegalArgumentException(flag + " " + file + ": the file is not writable");
        Path parent = file.toAbsolutePath().getParent();
        if (Files.isDirectory(parent)) {
            if (!Files.isWritable(parent)) throw new IllegalArgumentException(flag + " " + file + ": its folder " + parent + " is not writable");
        } else {
            checkCreatable(flag, parent);
        }
    }

    /** A path that does not exist yet: the first part of it that exists must be a writable folder. */
    private static void checkCreatable(String flag, Path missing) {
        Path p = missing.toAbsolutePath().normalize();
        while (p != null && !Files.exists(p)) p = p.getParent();
        if (p == null) throw new IllegalArgumentException(flag + " " + missing + ": no part of the path exists");
        if (!Files.isDirectory(p)) throw new IllegalArgumentException(flag + " " + missing + ": " + p + " is a file, not a folder");
        if (!Files.isWritable(p)) throw new IllegalArgumentException(flag + " " + missing + ": cannot create it, " + p + " is not writable");
    }

    /** A folder that must be new or empty (a model folder the command writes from scratch). */
    static void checkNewFolder(String flag, Path dir) {
        checkNewFolder(flag, dir, "");
    }

    /** As {@link #checkNewFolder(String, Path)}; {@code orElse} ends the refusal with another way out (", or use --force ..."). */
    static void checkNewFolder(String flag, Path dir, String orElse) {
        checkWritableFolder(flag, dir);
        List<String> names = names(dir);
        if (!names.isEmpty()) {
            throw new IllegalArgumentException(flag + " " + dir + " is not empty (it holds " + sample(names)
                    + "); choose a new or empty folder" + orElse);
        }
    }

    /**
     * A folder that may already hold what this command writes there (e.g. an earlier run's report,
     * which is replaced) but nothing else.
     */
    static void checkOwnFolder(String flag, Path dir, Predicate<String> ours) {
        checkWritableFolder(flag, dir);
        List<String> others = names(dir).stream().filter(n -> !ours.test(n) && !isTemporaryOf(n, ours)).toList();
        if (!others.isEmpty()) {
            throw new IllegalArgumentException(flag + " " + dir + " holds files tenfold did not write (" + sample(others)
                    + "); choose a new or empty folder");
        }
    }

    /** An output file that is none of the inputs: writing it must not destroy what the command reads. */
    static void checkNotAnInput(String flag, Path output, Map<String, Path> inputs) {
        for (Map.Entry<String, Path> in : inputs.entrySet()) {
            if (in.getValue() != null && sameFile(output, in.getValue())) {
                throw new IllegalArgumentException(flag + " " + output + " is the " + in.getKey() + " file; write the output elsewhere");
            }
        }
    }

    /** Whether two paths name the same file (the same inode where both exist, else the same normalized path). */
    static boolean sameFile(Path a, Path b) {
        try {
            if (Files.exists(a) && Files.exists(b)) return Files.isSameFile(a, b);
        } catch (IOException e) {
            // fall back to comparing the paths
        }
        return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize());
    }

    /** The checkpoint-N folders in dir. */
    static List<String> checkpoints(Path dir) {
        return names(dir).stream().filter(n -> CHECKPOINT.matcher(n).matches() && Files.isDirectory(dir.resolve(n))).toList();
    }

    /** Whether name is what an interrupted atomic write of a file {@code ours} accepts leaves: ".NAME.tmp" or ".NAME.RANDOM.tmp". */
    private static boolean isTemporaryOf(String name, Predicate<String> ours) {
        if (!name.startsWith(".") || !name.endsWith(".tmp") || name.length() < 6) return false;
        String inner = name.substring(1, name.length() - 4);
        int dot = inner.lastIndexOf('.');
        return ours.test(inner) || (dot > 0 && ours.test(inner.substring(0, dot)));
    }

    /** The names in dir, sorted; none when it does not exist. */
    static List<String> names(Path dir) {
        if (!Files.isDirectory(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot list the folder", e);
        }
    }

    /** "a, b, c and 4 more". */
    static String sample(List<String> names) {
        List<String> shown = new ArrayList<>(names.subList(0, Math.min(3, names.size())));
        String s = String.join(", ", shown);
        return names.size() > shown.size() ? s + " and " + (names.size() - shown.size()) + " more" : s;
    }
}
