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
            Map<String, long[]> p = timer.products();
            assertEquals(1, p.size(), "one shape, twice: " + p.keySet());
            assertEquals(2, p.get("2x2x3")[1]);
            assertEquals(2 * 2L * 2 * 2 * 3, p.get("2x2x3")[2], "flops: 2 M N K a call");
            assertTrue(p.get("2x2x3")[0] > 0 && p.get("2x2x3")[0] <= t.get("matmul, thin")[0]);
        }
        try (Tensor a = Tensor.allocate(DType.F32, 65, 65); Tensor c = Tensor.allocate(DType.F32, 65, 65)) {
            timer.start();
            timed.matmul(a, false, a, true, c, false);
            assertEquals(1, timer.totals().get("matmul")[1], "every side above 64: a plain product");
            assertEquals(java.util.Set.of("65x65x65"), timer.products().keySet(), "start forgot the earlier shapes");
        }
        try (Tensor a = Tensor.allocate(DType.F32, 3, 5, 7); Tensor b = Tensor.allocate(DType.F32, 3, 5, 2);
             Tensor c = Tensor.allocate(DType.F32, 3, 7, 2)) {
            timer.start();
            timed.matmul(a, true, b, false, c, false); // a batch of three 7 x 2 products over 5, op(a) transposed
            Map<String, long[]> p = timer.products();
            assertEquals(java.util.Set.of("21x2x5"), p.keySet());
            assertEquals(1, p.get("21x2x5")[1]);
            assertEquals(2L * 21 * 2 * 5, p.get("21x2x5")[2]);
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
