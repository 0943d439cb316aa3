package dev.tenfold.qlora.data;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** LengthGroupedBatches: seeded, reproducible epoch plans, grouped by length or plainly shuffled. */
class DataBatchPlanTest {

    /** Lengths 1..max in a scrambled order, with one unique longest record. */
    private static int[] lengths(int n, long seed) {
        Random r = new Random(seed);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = 1 + r.nextInt(5000);
        out[r.nextInt(n)] = 100_000;
        return out;
    }

    private static List<List<Integer>> asLists(List<int[]> plan) {
        List<List<Integer>> out = new ArrayList<>();
        for (int[] b : plan) out.add(Arrays.stream(b).boxed().toList());
        return out;
    }

    private static int argMax(int[] a) {
        int best = 0;
        for (int i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
        return best;
    }

    @Test
    void sameSeedSamePlanDifferentEpochsDiffer() {
        int[] len = lengths(1000, 1);
        LengthGroupedBatches a = LengthGroupedBatches.grouped(len, 8, 42);
        LengthGroupedBatches b = LengthGroupedBatches.grouped(len.clone(), 8, 42);
        for (int epoch = 0; epoch < 3; epoch++) assertEquals(asLists(a.plan(epoch)), asLists(b.plan(epoch)));
        assertNotEquals(asLists(a.plan(0)), asLists(a.plan(1)));
        assertNotEquals(asLists(a.plan(1)), asLists(a.plan(2)));
        assertNotEquals(asLists(a.plan(0)), asLists(LengthGroupedBatches.grouped(len, 8, 43).plan(0)));
        LengthGroupedBatches s = LengthGroupedBatches.shuffled(len, 8, 42);
        assertEquals(asLists(s.plan(0)), asLists(LengthGroupedBatches.shuffled(len, 8, 42).plan(0)));
        assertNotEquals(asLists(s.plan(0)), asLists(s.plan(1)));
    }

    @Test
    void thePlanIsPinned() {
        // Plans must not change between versions or JVMs: a resumed run replays the same order.
        int[] len = {5, 1, 9, 3, 7, 2, 8, 4, 6, 10};
        assertEquals(List.of(List.of(9, 6, 8), List.of(2, 4, 3), List.of(0, 7, 5), List.of(1)),
                asLists(LengthGroupedBatches.grouped(len, 3, 7).plan(0)));
        assertEquals(List.of(List.of(9, 8, 6), List.of(4, 3, 2), List.of(0, 7, 5), List.of(1)),
                asLists(LengthGroupedBatches.shuffled(len, 3, 7).plan(0)));
    }

    @Test
    void theShuffleIsUniform() {
        // Where each record lands, over many seeds: every (record, position) pair about equally often.
        int n = 5;
        int runs = 20_000;
        int[][] counts = new int[n][n];
        int[] len = {1, 1, 1, 1, 1}; // all equal: the longest-first move never applies (ties keep the first)
        for (int seed = 0; seed < runs; seed++) {
            int[] order = LengthGroupedBatches.shuffled(len, 1, seed).order(0);
            for (int pos = 0; pos < n; pos++) counts[order[pos]][pos]++;
        }
        double expected = runs / (double) n;
        for (int[] row : counts) {
            for (int c : row) assertEquals(expected, c, 6 * Math.sqrt(expected), Arrays.deepToString(counts));
        }
    }

    @Test
    void everyIndexExactlyOncePerEpoch() {
        for (int n : new int[] {1, 7, 8, 9, 103, 1000}) {
            int[] len = lengths(n, n);
            for (LengthGroupedBatches p : List.of(LengthGroupedBatches.grouped(len, 8, 3), LengthGroupedBatches.shuffled(len, 8, 3))) {
                for (int epoch = 0; epoch < 3; epoch++) {
                    List<int[]> plan = p.plan(epoch);
                    assertEquals(p.stepsPerEpoch(), plan.size());
                    assertEquals((n + 7) / 8, plan.size());
                    int[] seen = new int[n];
                    int partial = 0;
                    for (int[] batch : plan) {
                        if (batch.length != 8) partial++;
                        assertTrue(batch.length >= 1 && batch.length <= 8);
                        for (int i : batch) seen[i]++;
                    }
                    for (int i = 0; i < n; i++) assertEquals(1, seen[i], "index " + i + ", n " + n);
                    assertEquals(n % 8 == 0 ? 0 : 1, partial);
                }
            }
        }
    }

    @Test
    void dropLastLeavesOutThePartialBatch() {
        int[] len = lengths(103, 5);
        LengthGroupedBatches p = LengthGroupedBatches.grouped(len, 8, 3).withDropLast(true);
        assertEquals(12, p.stepsPerEpoch());
        for (int epoch = 0; epoch < 3; epoch++) {
            List<int[]> plan = p.plan(epoch);
            assertEquals(12, plan.size());
            assertEquals(96, plan.stream().flatMapToInt(Arrays::stream).distinct().count());
            for (int[] b : plan) assertEquals(8, b.length);
        }
        assertEquals(0, LengthGroupedBatches.grouped(new int[5], 8, 1).withDropLast(true).plan(0).size());
        assertEquals(0, LengthGroupedBatches.grouped(new int[0], 8, 1).plan(0).size());
        assertEquals(0, LengthGroupedBatches.grouped(new int[0], 8, 1).stepsPerEpoch());
    }

    @Test
    void theFirstBatchHoldsTheLongestRecord() {
        for (long seed = 0; seed < 20; seed++) {
            int[] len = lengths(500, seed);
            int longest = argMax(len);
            for (LengthGroupedBatches p : List.of(LengthGroupedBatches.grouped(len, 8, seed), LengthGroupedBatches.shuffled(len, 8, seed))) {
                for (int epoch = 0; epoch < 3; epoch++) {
                    int[] first = p.plan(epoch).get(0);
                    assertTrue(Arrays.stream(first).anyMatch(i -> i == longest), p.mode() + " seed " + seed + " epoch " + epoch);
                }
            }
        }
    }

    @Test
    void groupingSortsEachMegaBatchLongestFirst() {
        int n = 1000;
        int batch = 4;
        int[] len = lengths(n, 11);
        LengthGroupedBatches grouped = LengthGroupedBatches.grouped(len, batch, 9);
        LengthGroupedBatches shuffled = LengthGroupedBatches.shuffled(len, batch, 9);
        int mult = grouped.megaBatchMultiplier();
        assertEquals(50, mult); // min(1000 / 16, 50)
        int mega = batch * mult;
        for (int epoch = 0; epoch < 2; epoch++) {
            int[] g = grouped.order(epoch);
            int[] s = shuffled.order(epoch); // the same shuffle, not yet sorted
            for (int start = 0; start < n; start += mega) {
                int end = Math.min(start + mega, n);
                for (int k = start + 1; k < end; k++) {
                    assertTrue(len[g[k - 1]] >= len[g[k]], "mega-batch at " + start + " not sorted at " + k);
                }
                // The same records as the shuffle put there: sorting happens inside mega-batches only.
                int[] gs = Arrays.copyOfRange(g, start, end);
                int[] ss = Arrays.copyOfRange(s, start, end);
                Arrays.sort(gs);
                Arrays.sort(ss);
                assertArrayEquals(ss, gs);
            }
        }
        // Every batch of the plan is longest first, and its lengths are close: much less spread
        // inside batches than a plain shuffle gives (the one outlier's batch left out of the sums).
        for (int[] b : grouped.plan(0)) {
            for (int k = 1; k < b.length; k++) assertTrue(len[b[k - 1]] >= len[b[k]]);
        }
        long groupedSpread = spreadWithoutLongest(grouped.plan(0), len);
        long shuffledSpread = spreadWithoutLongest(shuffled.plan(0), len);
        assertTrue(groupedSpread * 10 < shuffledSpread, groupedSpread + " vs " + shuffledSpread);
    }

    /** The sum over batches of max - min length, skipping the batch that holds the longest record. */
    private static long spreadWithoutLongest(List<int[]> plan, int[] len) {
        int longest = argMax(len);
        long sum = 0;
        for (int[] b : plan) {
            if (Arrays.stream(b).anyMatch(i -> i == longest)) continue;
            int min = Integer.MAX_VALUE, max = 0;
            for (int i : b) {
                min = Math.min(min, len[i]);
                max = Math.max(max, len[i]);
            }
            sum += max - min;
        }
        return sum;
    }

    @Test
    void megaBatchMultiplierFollowsHuggingFace() {
        assertEquals(50, LengthGroupedBatches.defaultMultiplier(20_000, 8));
        assertEquals(50, LengthGroupedBatches.defaultMultiplier(1600, 8));
        assertEquals(3, LengthGroupedBatches.defaultMultiplier(100, 8));
        assertEquals(1, LengthGroupedBatches.defaultMultiplier(10, 8));
        assertEquals(1, LengthGroupedBatches.defaultMultiplier(0, 8));
        // Multiplier 1: each batch is sorted on its own, and the batches keep the shuffle's contents.
        int[] len = lengths(64, 2);
        LengthGroupedBatches p = LengthGroupedBatches.grouped(len, 8, 1).withMegaBatchMultiplier(1);
        int[] g = p.order(0);
        int[] s = LengthGroupedBatches.shuffled(len, 8, 1).order(0);
        for (int start = 0; start < 64; start += 8) {
            int[] gs = Arrays.copyOfRange(g, start, start + 8);
            int[] ss = Arrays.copyOfRange(s, start, start + 8);
            Arrays.sort(gs);
            Arrays.sort(ss);
            assertArrayEquals(ss, gs);
        }
    }

    @Test
    void microBatchesByTokenBudget() {
        int[] len = {100, 60, 50, 40, 300, 10};
        int[] batch = {4, 0, 1, 2, 3, 5};
        List<int[]> micro = LengthGroupedBatches.microBatches(batch, len, 150);
        assertEquals(List.of(List.of(4), List.of(0), List.of(1, 2, 3), List.of(5)), asLists(micro));
        assertEquals(List.of(List.of(4, 0, 1, 2, 3, 5)), asLists(LengthGroupedBatches.microBatches(batch, len, 10_000)));
        assertEquals(6, LengthGroupedBatches.microBatches(batch, len, 1).size());
        assertEquals(0, LengthGroupedBatches.microBatches(new int[0], len, 10).size());
    }

    @Test
    void badArguments() {
        assertThrows(IllegalArgumentException.class, () -> LengthGroupedBatches.grouped(new int[3], 0, 1));
        assertThrows(IllegalArgumentException.class, () -> LengthGroupedBatches.grouped(new int[] {1, -1}, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> LengthGroupedBatches.grouped(new int[3], 1, 1).plan(-1));
        assertThrows(IllegalArgumentException.class, () -> LengthGroupedBatches.grouped(new int[3], 1, 1).withMegaBatchMultiplier(0));
    }
}
