package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The pool hands a kept array out again only for its own length, zeroed, and keeps no more than its cap. */
class FloatPoolTest {

    @Test
    void aKeptArrayComesBackZeroedForItsLengthOnly() {
        int n = 1_234_567; // a length nothing else in the suite asks for
        float[] a = FloatPool.zeroed(n);
        Arrays.fill(a, Float.NaN);
        FloatPool.giveBack(a);
        assertNotSame(a, FloatPool.zeroed(n + 1), "another length gets a new array");
        float[] b = FloatPool.zeroed(n);
        assertSame(a, b, "the kept array is reused");
        for (float x : b) assertEquals(0f, x);
        assertThrows(IllegalStateException.class, () -> {
            FloatPool.giveBack(b);
            FloatPool.giveBack(b);
        }, "an array handed back twice would be handed out twice");
        FloatPool.zeroed(n); // take it out again: the pool holds what it held before
    }

    @Test
    void noMoreThanTheCapIsKept() {
        long before = FloatPool.keptFloats();
        int n = (int) Math.min(Integer.MAX_VALUE - 8, FloatPool.MAX_KEPT_FLOATS - before + 1);
        FloatPool.giveBack(new float[n]);
        assertEquals(before, FloatPool.keptFloats(), "an array past the cap is left to the collector");
    }
}
