package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tenfold.engine.Tensor;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.function.Executable;

/** Small helpers shared by the CPU op tests. */
final class OpTestSupport {
    private OpTestSupport() {}

    static final CpuBackend REF = CpuBackend.reference();
    static final CpuBackend FAST = CpuBackend.fast();
    static final CpuBackend[] BOTH = {REF, FAST};

    /** Awkward sizes: below, at and above a vector's width, and not multiples of it. */
    static final int[] ROWS = {1, 7, 33};
    static final int[] WIDTHS = {1, 17, 100, 257};

    /** Asserts an IllegalArgumentException whose message names the op (and any further fragments). */
    static void assertRejected(String op, Executable call, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().startsWith(op + ":"), "message should name " + op + ": " + e.getMessage());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message should contain '" + f + "': " + e.getMessage());
    }

    /** The raw bytes of a tensor, for bit-exact comparisons (NaN included). */
    static byte[] bytes(Tensor t) { return t.data().toArray(ValueLayout.JAVA_BYTE); }
}
