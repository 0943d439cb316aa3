package dev.tenfold.engine;

import java.util.Arrays;

/** Argument checks shared by the ops; every failure names the op and the shapes involved. */
public final class Check {
    private Check() {}

    public static IllegalArgumentException fail(String op, String message, Tensor... tensors) {
        StringBuilder sb = new StringBuilder(op).append(": ").append(message);
        if (tensors.length > 0) {
            sb.append(" (got");
            for (int i = 0; i < tensors.length; i++) {
                sb.append(i == 0 ? " " : ", ").append(tensors[i] == null ? "null" : tensors[i].describe());
            }
            sb.append(")");
        }
        return new IllegalArgumentException(sb.toString());
    }

    public static void notNull(String op, String name, Tensor t) {
        if (t == null) throw new IllegalArgumentException(op + ": " + name + " is null");
        t.data(); // throws if closed
    }

    public static void dtype(String op, String name, Tensor t, DType... allowed) {
        notNull(op, name, t);
        for (DType d : allowed) if (t.dtype() == d) return;
        throw fail(op, name + " must be " + Arrays.toString(allowed), t);
    }

    public static void rank(String op, String name, Tensor t, int... ranks) {
        notNull(op, name, t);
        for (int r : ranks) if (t.rank() == r) return;
        throw fail(op, name + " must have rank " + Arrays.toString(ranks), t);
    }

    public static void shape(String op, String name, Tensor t, long... expected) {
        notNull(op, name, t);
        if (!Arrays.equals(t.shape(), expected)) {
            throw fail(op, name + " must have shape " + Arrays.toString(expected), t);
        }
    }

    public static void sameShape(String op, Tensor a, Tensor b) {
        if (!Arrays.equals(a.shape(), b.shape())) throw fail(op, "shapes differ", a, b);
    }

    /** Size of an index that must fit a Java int (loop bounds of the CPU backend). */
    public static int intSize(String op, long n) {
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException(op + ": size " + n + " exceeds 2^31-1");
        return (int) n;
    }
}
