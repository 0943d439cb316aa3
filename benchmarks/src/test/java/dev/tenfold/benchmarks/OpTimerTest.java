package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The op timer: the wrapped backend's results unchanged, its ops counted by name only while counting, its errors as they were. */
class OpTimerTest {

    @Test
    void countsEachOpWhileCountingAndChangesNoResult() {
        OpTimer timer = new OpTimer(CpuBackend.fast());
        Backend timed = timer.backend();
        try (Tensor a = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3); Tensor b = Tensor.of(new float[] {1, 0, 2, 1, 0, 3}, 3, 2);
             Tensor c = Tensor.allocate(DType.F32, 2, 2); Tensor want = Tensor.allocate(DType.F32, 2, 2);
             Tensor sum = Tensor.allocate(DType.F32, 2, 2)) {
            timed.matmul(a, false, b, false, c, false); // before start: not counted
            timer.start();
            timed.matmul(a, false, b, false, c, false);
            timed.matmul(a, false, b, false, c, true);
            timed.add(c, c, sum);
            timer.stop();
            timed.add(c, c, sum); // after stop: not counted
            CpuBackend.fast().matmul(a, false, b, false, want, false);
            CpuBackend.fast().matmul(a, false, b, false, want, true);
            assertArrayEquals(want.toFloatArray(), c.toFloatArray());
            Map<String, long[]> t = timer.totals();
            assertEquals(2, t.get("matmul, thin")[1], "a product with a side of at most 64 (LoRA's) counts apart");
            assertEquals(1, t.get("add")[1]);
            assertEquals(2, t.size(), "only the ops called while counting: " + t.keySet());
            assertTrue(t.get("matmul, thin")[0] > 0);
            // the skinny path copies op(a) into a new float[]: the count sees it (or says -1 where the JVM cannot count)
            assertTrue(t.get("matmul, thin")[2] > 0 || t.get("matmul, thin")[2] == -1, "bytes " + t.get("matmul, thin")[2]);
        }
        try (Tensor a = Tensor.allocate(DType.F32, 65, 65); Tensor c = Tensor.allocate(DType.F32, 65, 65)) {
            timer.start();
            timed.matmul(a, false, a, true, c, false);
            assertEquals(1, timer.totals().get("matmul")[1], "every side above 64: a plain product");
        }
    }

    @Test
    void anOpsErrorComesThroughAsItWas() {
        Backend timed = new OpTimer(CpuBackend.fast()).backend();
        try (Tensor a = Tensor.allocate(DType.F32, 2, 3); Tensor b = Tensor.allocate(DType.F32, 2, 2); Tensor c = Tensor.allocate(DType.F32, 2, 2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> timed.matmul(a, false, b, false, c, false));
            assertTrue(e.getMessage().contains("matmul"), e.getMessage());
        }
        assertEquals("timed cpu", timed.toString());
        assertEquals(timed, timed);
    }
}
