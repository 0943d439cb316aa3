package dev.tenfold.tools;

import dev.tenfold.engine.io.TextFiles;
import java.io.IOException;
import java.lang.reflect.AnnotatedElement;
import java.lang.reflect.Array;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParseResult;

/** Checks of option values that every command shares: the {@link Range} of each numeric option, and the token-count cap. */
public final class Flags {
    private Flags() {}

    /**
     * The most tokens a prompt, a generation or a training sequence may have: RoPE computes
     * position x frequency in F32 (as Hugging Face does), and F32 holds every whole number only up
     * to 2^24; beyond, neighbouring positions would get the same angle.
     */
    public static final int MAX_TOKENS = 1 << 24;

    /**
     * A bad option value found while a command runs (a combination of flags, a list element): a
     * usage error like the ones picocli finds, so {@link Main} exits with 2 after one line.
     */
    static final class BadFlag extends IllegalArgumentException {
        BadFlag(String message) { super(message); }
    }

    /** Refuses the first option value of the parsed command chain that lies outside its {@link Range}. */
    static void checkRanges(ParseResult parsed) {
        for (ParseResult pr = parsed; pr != null; pr = pr.subcommand()) {
            for (OptionSpec o : pr.commandSpec().options()) {
                if (!(o.userObject() instanceof AnnotatedElement e)) continue;
                Range r = e.getAnnotation(Range.class);
                if (r == null) continue;
                Object value = o.getValue();
                if (value == null) continue;
                for (Object v : elements(value)) {
                    if (v == null) continue;
                    if (!(v instanceof Number n)) throw new IllegalStateException(o.longestName() + ": @Range on a non-numeric option");
                    if (!inside(r, n.doubleValue())) {
                        throw new CommandLine.ParameterException(pr.commandSpec().commandLine(),
                                o.longestName() + " must be " + describe(r, isWhole(n)) + ", got " + show(n));
                    }
                }
            }
        }
    }

    /** The value itself, or the elements of an array or collection option. */
    private static List<?> elements(Object value) {
        if (value instanceof Collection<?> c) return new ArrayList<>(c);
        if (value.getClass().isArray()) {
            Object[] out = new Object[Array.getLength(value)];
            for (int i = 0; i < out.length; i++) out[i] = Array.get(value, i);
            return java.util.Arrays.asList(out);
        }
        return List.of(value);
    }

    static boolean inside(Range r, double v) {
        if (!Double.isFinite(v)) return false;
        if (r.minExclusive() ? !(v > r.min()) : !(v >= r.min())) return false;
        return r.maxExclusive() ? v < r.max() : v <= r.max();
    }

    private static boolean isWhole(Number n) {
        return n instanceof Integer || n instanceof Long || n instanceof Short || n instanceof Byte;
    }

    /** "an integer in [1, 16777216]", "a finite number > 0", "a number in [0, 1)". */
    static String describe(Range r, boolean whole) {
        boolean low = Double.isFinite(r.min()), high = Double.isFinite(r.max());
        String kind = whole ? "an integer" : low && high ? "a number" : "a finite number";
        if (low && high) {
            return kind + " in " + (r.minExclusive() ? "(" : "[") + show(r.min()) + ", " + show(r.max()) + (r.maxExclusive() ? ")" : "]");
        }
        if (low) return kind + (r.minExclusive() ? " > " : " >= ") + show(r.min());
        if (high) return kind + (r.maxExclusive() ? " < " : " <= ") + show(r.max());
        return kind;
    }

    /** A bound or a value as a person writes it: 1 rather than 1.0, 16777216 rather than 1.6777216E7. */
    private static String show(Number n) {
        if (n instanceof Double || n instanceof Float) {
            double d = n.doubleValue();
            if (Double.isFinite(d) && d == Math.rint(d) && Math.abs(d) < 1e15) return Long.toString((long) d);
            return n instanceof Float f ? Float.toString(f) : Double.toString(d);
        }
        return n.toString();
    }

    private static String show(double d) { return show((Number) d); }

    /**
     * The UTF-8 text of a file given by {@code flag}: a missing file, a folder or invalid UTF-8 is one
     * line that names the flag, the file and (for bad UTF-8) the byte.
     */
    static String readText(String flag, Path file) throws IOException {
        if (Files.isDirectory(file)) throw new IllegalArgumentException(flag + " " + file + " is a folder, not a text file");
        try {
            return TextFiles.readUtf8(file);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(flag + " " + e.getMessage(), e);
        }
    }

    /**
     * Token lengths written as numbers with an optional k (x1024) suffix, e.g. "8k,16384";
     * each must be in [1, {@link #MAX_TOKENS}].
     */
    static int[] parseLengths(String flag, List<String> values) {
        int[] out = new int[values.size()];
        for (int i = 0; i < out.length; i++) {
            String v = values.get(i);
            String s = v.trim().toLowerCase(Locale.ROOT);
            int unit = 1;
            if (s.endsWith("k")) {
                unit = 1024;
                s = s.substring(0, s.length() - 1);
            }
            long n;
            try {
                n = Math.multiplyExact(Long.parseLong(s), unit);
            } catch (NumberFormatException | ArithmeticException e) {
                n = -1;
            }
            if (n < 1 || n > MAX_TOKENS) {
                throw new BadFlag(flag + ": \"" + v + "\" is not a length in tokens in [1, " + MAX_TOKENS + "]");
            }
            out[i] = (int) n;
        }
        return out;
    }
}
