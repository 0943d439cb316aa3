package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ParallelTest {

    private static void assertEachIndexOnce(int n, int grain) {
        AtomicIntegerArray seen = new AtomicIntegerArray(Math.max(n, 1));
        Parallel.forRange(n, grain, (s, e) -> {
            for (int i = s; i < e; i++) seen.incrementAndGet(i);
        });
        for (int i = 0; i < n; i++) assertEquals(1, seen.get(i), "index " + i + " of " + n + ", grain " + grain);
    }

    @Test
    void everyIndexRunsOnce() {
        for (int n : new int[] {0, 1, 2, 3, 7, 8, 9, 100, 1001}) {
            for (int grain : new int[] {1, 3, 16, 2000}) assertEachIndexOnce(n, grain);
        }
    }

    @Test
    void aChunksExceptionReachesTheCallerAndTheLoopsGoOn() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Parallel.forRange(64, 1, (s, end) -> {
            if (s <= 40 && 40 < end) throw new IllegalArgumentException("chunk with 40");
        }));
        assertEquals("chunk with 40", e.getMessage());
        assertEachIndexOnce(64, 1);
    }

    @Test
    void aNestedLoopRunsOnItsCallersThreadThroughTheSameChunks() {
        Set<String> outer = ConcurrentHashMap.newKeySet(), inner = ConcurrentHashMap.newKeySet();
        Parallel.forRange(50, 1, (s, e) -> outer.add(s + ":" + e));
        AtomicIntegerArray seen = new AtomicIntegerArray(50 * 4);
        Parallel.forRange(4, 1, (s0, e0) -> {
            for (int r = s0; r < e0; r++) {
                int row = r;
                Thread here = Thread.currentThread();
                Parallel.forRange(50, 1, (s, e) -> {
                    assertSame(here, Thread.currentThread(), "a nested loop stays on its thread");
                    if (row == 0) inner.add(s + ":" + e);
                    for (int i = s; i < e; i++) seen.incrementAndGet(row * 50 + i);
                });
            }
        });
        for (int i = 0; i < 200; i++) assertEquals(1, seen.get(i), "index " + i);
        assertEquals(outer, inner, "the chunks a loop runs do not depend on whether it ran in parallel");
    }

    @Test
    void loopsFromTwoThreadsAtOnceBothComplete() throws Exception {
        int n = 4000;
        AtomicIntegerArray a = new AtomicIntegerArray(n), b = new AtomicIntegerArray(n);
        Thread other = Thread.ofPlatform().start(() -> {
            for (int k = 0; k < 200; k++) Parallel.forRange(n, 16, (s, e) -> {
                for (int i = s; i < e; i++) a.incrementAndGet(i);
            });
        });
        for (int k = 0; k < 200; k++) Parallel.forRange(n, 16, (s, e) -> {
            for (int i = s; i < e; i++) b.incrementAndGet(i);
        });
        other.join();
        for (int i = 0; i < n; i++) {
            assertEquals(200, a.get(i), "a " + i);
            assertEquals(200, b.get(i), "b " + i);
        }
    }

    @Test
    void theCallerRunsTheFirstRunOfConsecutiveChunksInOrder() {
        assumeTrue(Parallel.threads() > 1, "one core: every loop runs on its caller");
        int threads = Parallel.threads(), tasks = 4 * threads;
        Thread caller = Thread.currentThread();
        java.util.List<Integer> mine = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        int own = tasks / threads;
        Parallel.forRange(tasks, 1, (s, e) -> {
            if (Thread.currentThread() == caller) mine.add(s);
            try {
                Thread.sleep(s < own ? 2 : 50); // the workers' runs take far longer: none comes back for the caller's run early
            } catch (InterruptedException x) {
                Thread.currentThread().interrupt();
            }
        });
        // the caller's own run is chunks 0 .. tasks / threads - 1 (a product's consecutive row blocks share a packed block)
        assertEquals(java.util.stream.IntStream.range(0, own).boxed().toList(), mine.subList(0, Math.min(mine.size(), own)));
    }

    @Test
    void parkedWorkersWakeForTheNextLoop() throws Exception {
        assumeTrue(Parallel.threads() > 1, "one core: every loop runs on its caller");
        Thread.sleep(5 + Parallel.SPIN_NS / 1_000_000 * 4); // well past the workers' spin: they park
        Set<Thread> ran = ConcurrentHashMap.newKeySet();
        Parallel.forRange(4 * Parallel.threads(), 1, (s, e) -> {
            ran.add(Thread.currentThread());
            try {
                Thread.sleep(20); // long enough that the caller cannot take every chunk before a worker wakes
            } catch (InterruptedException x) {
                Thread.currentThread().interrupt();
            }
        });
        assertTrue(ran.size() > 1, "only " + ran + " ran chunks");
    }
}
