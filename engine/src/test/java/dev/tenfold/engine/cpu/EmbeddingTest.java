package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.OpTestSupport.FAST;
import static dev.tenfold.engine.cpu.OpTestSupport.REF;
import static dev.tenfold.engine.cpu.OpTestSupport.ROWS;
import static dev.tenfold.engine.cpu.OpTestSupport.WIDTHS;
import static dev.tenfold.engine.cpu.OpTestSupport.assertRejected;
import static dev.tenfold.engine.testing.TestTensors.assertClose;
import static dev.tenfold.engine.testing.TestTensors.poisoned;
import static dev.tenfold.engine.testing.TestTensors.random;
import static dev.tenfold.engine.testing.TestTensors.randomInts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.GradCheck;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class EmbeddingTest {

    @Test
    void forwardFastMatchesReferenceAndTable() {
        SplittableRandom rng = new SplittableRandom(10);
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int t : ROWS) {
                for (int h : WIDTHS) {
                    int v = 5 + t;
                    try (Tensor table = random(rng, dt, 1f, v, h); Tensor ids = randomInts(rng, v, t * 3L);
                         Tensor r = poisoned(t * 3L, h); Tensor f = poisoned(t * 3L, h)) {
                        REF.embedding(table, ids, r);
                        FAST.embedding(table, ids, f);
                        assertClose(dt + " t=" + t + " h=" + h, r, f, 0, 0);
                        for (int i = 0; i < t * 3; i++) {
                            assertEquals(table.getFloat((long) ids.getInt(i) * h + h - 1), f.getFloat((long) i * h + h - 1));
                        }
                    }
                }
            }
        }
    }

    @Test
    void idsMayHaveAnyShape() {
        try (Tensor table = Tensor.of(new float[] {0, 1, 10, 11, 20, 21}, 3, 2); Tensor ids = Tensor.ofInts(new int[] {2, 0, 1, 2}, 2, 2);
             Tensor out = poisoned(4, 2)) {
            FAST.embedding(table, ids, out);
            assertClose("2x2 ids", new float[] {20, 21, 0, 1, 10, 11, 20, 21}, out.toFloatArray(), 0, 0);
        }
    }

    @Test
    void backwardAccumulatesLikeReference() {
        SplittableRandom rng = new SplittableRandom(11);
        for (int t : ROWS) {
            for (int h : new int[] {1, 17, 100, 257, 600}) {
                int v = 4; // few rows: ids repeat, so the scatter really adds
                try (Tensor dOut = random(rng, t, h); Tensor ids = randomInts(rng, v, t); Tensor start = random(rng, v, h);
                     Tensor r = start.copy(); Tensor f = start.copy()) {
                    REF.embeddingBackward(dOut, ids, r);
                    FAST.embeddingBackward(dOut, ids, f);
                    assertClose("t=" + t + " h=" + h, r, f, 1e-6, 1e-6);
                    // Independent sum for the first column.
                    for (int row = 0; row < v; row++) {
                        double want = start.getFloat((long) row * h);
                        for (int i = 0; i < t; i++) if (ids.getInt(i) == row) want += dOut.getFloat((long) i * h);
                        assertEquals(want, f.getFloat((long) row * h), 1e-5);
                    }
                }
            }
        }
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        SplittableRandom rng = new SplittableRandom(12);
        int v = 6, h = 5, t = 9;
        try (Tensor table = random(rng, v, h); Tensor ids = randomInts(rng, v, t); Tensor w = random(rng, t, h);
             Tensor out = Tensor.allocate(DType.F32, t, h)) {
            for (var be : OpTestSupport.BOTH) {
                try (Tensor dTable = Tensor.allocate(DType.F32, v, h)) {
                    be.embeddingBackward(w, ids, dTable);
                    GradCheck.check("embedding dTable " + be.name(), table, dTable, () -> {
                        REF.embedding(table, ids, out);
                        return GradCheck.weightedSum(out, w);
                    }, 1e-2, 1e-3, 100, 13);
                }
            }
        }
    }

    @Test
    void badInputIsRejected() {
        try (Tensor table = Tensor.allocate(DType.F32, 4, 3); Tensor out = Tensor.allocate(DType.F32, 3, 3);
             Tensor bad = Tensor.ofInts(new int[] {0, 3, 4}); Tensor neg = Tensor.ofInts(new int[] {-1, 0, 0});
             Tensor ok = Tensor.ofInts(new int[] {0, 1, 2}); Tensor f16 = Tensor.allocate(DType.F16, 4, 3);
             Tensor wrong = Tensor.allocate(DType.F32, 3, 2)) {
            for (var be : OpTestSupport.BOTH) {
                assertRejected("embedding", () -> be.embedding(table, bad, out), "position 2", "id 4");
                assertRejected("embedding", () -> be.embedding(table, neg, out), "position 0", "id -1");
                assertRejected("embedding", () -> be.embedding(table, ok, wrong), "[3, 3]");
                assertRejected("embedding", () -> be.embedding(f16, ok, out), "F16");
                assertRejected("embedding", () -> be.embedding(table, out, out), "ids");
                assertRejected("embeddingBackward", () -> be.embeddingBackward(out, bad, table), "position 2", "id 4");
                assertRejected("embeddingBackward", () -> be.embeddingBackward(wrong, ok, table));
                assertRejected("embeddingBackward", () -> be.embeddingBackward(out, ok, f16), "dTable");
            }
        }
    }
}
