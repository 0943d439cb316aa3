package dev.tenfold.engine.collective;

import dev.tenfold.engine.testing.InProcessRanks;
import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class InProcessCommunicatorTest {


    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4})
    void sumsInRankOrderAndBroadcasts(int size) throws Exception {
        int n = 10_001;
        InProcessRanks.run(InProcessCommunicator.group(size, Duration.ofSeconds(30)), c -> {
            try (Tensor f = Tensor.allocate(DType.F32, n); Tensor d = Tensor.allocate(DType.F64, 3); Tensor b = Tensor.allocate(DType.F32, 4)) {
                for (int i = 0; i < n; i++) f.setFloat(i, MpiWorldMain.value(c.rank(), i));
                for (int i = 0; i < 3; i++) d.data().setAtIndex(Tensor.F64, i, c.rank() + 0.25 * i);
                c.allReduceSum(List.of(f, d));
                for (int i = 0; i < n; i++) {
                    float expect = MpiWorldMain.value(0, i);
                    for (int r = 1; r < size; r++) expect += MpiWorldMain.value(r, i);
                    assertEquals(Float.floatToRawIntBits(expect), Float.floatToRawIntBits(f.getFloat(i)), "element " + i);
                }
                for (int i = 0; i < 3; i++) assertEquals(size * (size - 1) / 2.0 + size * 0.25 * i, d.data().getAtIndex(Tensor.F64, i));
                double[] v = {c.rank(), 1};
                c.allReduceSum(v);
                assertArrayEquals(new double[] {size * (size - 1) / 2.0, size}, v);
                for (int i = 0; i < 4; i++) b.setFloat(i, c.rank() * 10 + i);
                c.broadcast(b, size - 1);
                assertArrayEquals(new float[] {(size - 1) * 10, (size - 1) * 10 + 1, (size - 1) * 10 + 2, (size - 1) * 10 + 3}, b.toFloatArray());
                c.barrier();
            }
        });
    }

    @Test
    void aRankThatDoesNotArriveFailsTheCollectiveAfterTheTimeout() {
        Communicator rank0 = InProcessCommunicator.group(2, Duration.ofMillis(200)).get(0);
        CollectiveException e = assertThrows(CollectiveException.class, () -> rank0.allReduceSum(new double[] {1}));
        assertEquals("rank 0: allReduceSum timed out after 0 s waiting for the other ranks (a rank died or hangs)", e.getMessage());
    }

    @Test
    void mismatchedShapesAndBadArgumentsAreNamed() throws Exception {
        List<Communicator> ranks = InProcessCommunicator.group(2, Duration.ofSeconds(30));
        List<Throwable> errors = new ArrayList<>();
        InProcessRanks.run(ranks, c -> {
            try (Tensor t = Tensor.allocate(DType.F32, 3 + c.rank())) {
                c.allReduceSum(List.of(t));
            } catch (CollectiveException e) {
                synchronized (errors) {
                    errors.add(e);
                }
                c.close();
            }
        });
        assertFalse(errors.isEmpty());
        assertTrue(errors.get(0).getMessage().contains("F32[3] on rank 0 but F32[4] on rank 1")
                || errors.get(0).getMessage().contains("F32[4] on rank 1 but F32[3] on rank 0")
                || errors.get(0).getMessage().contains("another rank left"), errors.get(0).getMessage());
        try (Tensor i32 = Tensor.allocate(DType.I32, 2)) {
            assertEquals("allReduceSum: F32 or F64 tensors only, got I32[2]",
                    assertThrows(IllegalArgumentException.class, () -> ranks.get(0).allReduceSum(List.of(i32))).getMessage());
            assertEquals("broadcast: root 2 is not in [0, 2)",
                    assertThrows(IllegalArgumentException.class, () -> ranks.get(0).broadcast(i32, 2)).getMessage());
        }
        assertEquals(1, Communicator.solo().size());
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4})
    void gathersAndExchangesBlocksInRankOrder(int size) throws Exception {
        InProcessRanks.run(InProcessCommunicator.group(size, Duration.ofSeconds(30)), c -> MpiWorldMain.checkMoves(c));
    }

    @Test
    void soloMovesAreCopiesAndBadMovesAreNamed() {
        Communicator solo = Communicator.solo();
        MpiWorldMain.checkMoves(solo);
        List<Communicator> two = InProcessCommunicator.group(2, Duration.ofSeconds(30));
        try (Tensor a = Tensor.allocate(DType.BF16, 3); Tensor b = Tensor.allocate(DType.BF16, 5); Tensor c = Tensor.allocate(DType.BF16, 6)) {
            assertEquals("allToAll: BF16[3] does not cut into 2 equal blocks",
                    assertThrows(IllegalArgumentException.class, () -> two.get(0).allToAll(a, a.copy())).getMessage());
            assertEquals("allGather: the output BF16[5] must hold 12 bytes (2 x the input BF16[3]), got 10",
                    assertThrows(IllegalArgumentException.class, () -> two.get(0).allGather(a, b)).getMessage());
            assertEquals("allToAll: the input and output overlap",
                    assertThrows(IllegalArgumentException.class, () -> two.get(0).allToAll(c, c)).getMessage());
        }
        try (Tensor a = Tensor.allocate(DType.F32, 6); Tensor b = Tensor.allocate(DType.F32, 4); Tensor i = Tensor.allocate(DType.I32, 6)) {
            assertEquals("reduceScatter: the input F32[6] must hold 2 x the output F32[4] (one block per rank)",
                    assertThrows(IllegalArgumentException.class, () -> two.get(0).reduceScatter(a, b)).getMessage());
            assertEquals("reduceScatter: F32 or F64 tensors only, got I32[6]",
                    assertThrows(IllegalArgumentException.class, () -> two.get(0).reduceScatter(i, b)).getMessage());
            assertEquals("reduceScatter: the input and output overlap",
                    assertThrows(IllegalArgumentException.class, () -> two.get(0).reduceScatter(a, a.slice(0, 3))).getMessage());
        }
    }
}
