package dev.tenfold.engine.cpu;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Large float[] buffers kept from one call to the next: attention's packed key rows, query tiles and dq partials, about
 * 55 MB a layer at 4K tokens (hidden 512), which a training step allocated afresh in every layer, 275 MB a step. New
 * arrays made the young generation grow over the first steps and collect every few steps; on a VM that faults fresh
 * memory in slowly, the steps while it grew took twice as long. A kept array is handed out again only for the same
 * length, zeroed as a new one would be. At most {@link #MAX_KEPT_FLOATS} are kept; beyond that, handed-back arrays
 * are left to the collector. Safe to use from several threads (in-process data-parallel ranks).
 */
final class FloatPool {
    private FloatPool() {}

    /** The most floats kept for reuse: 256 MB, the sum of attention's own caps on these buffers at 16K tokens and more. */
    static final long MAX_KEPT_FLOATS = 64L << 20;

    private static final Map<Integer, ArrayDeque<float[]>> FREE = new HashMap<>();
    private static long keptFloats;

    /** An array of n zeros: a kept one of that length, zeroed, or a new one. */
    static float[] zeroed(int n) {
        float[] a = null;
        synchronized (FREE) {
            ArrayDeque<float[]> free = FREE.get(n);
            if (free != null && !free.isEmpty()) {
                a = free.pop();
                keptFloats -= n;
            }
        }
        if (a == null) return new float[n];
        Arrays.fill(a, 0f);
        return a;
    }

    /** Hands arrays back for reuse (null entries are skipped); the caller must not touch them afterwards. */
    static void giveBack(float[]... arrays) {
        synchronized (FREE) {
            for (float[] a : arrays) {
                if (a == null || keptFloats + a.length > MAX_KEPT_FLOATS) continue;
                ArrayDeque<float[]> free = FREE.computeIfAbsent(a.length, k -> new ArrayDeque<>());
                for (float[] x : free) {
                    if (x == a) throw new IllegalStateException("FloatPool: an array of " + a.length + " floats handed back twice");
                }
                free.push(a);
                keptFloats += a.length;
            }
        }
    }

    /** The floats kept now (tests). */
    static long keptFloats() {
        synchronized (FREE) {
            return keptFloats;
        }
    }
}
