package dev.tenfold.engine.plan;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.cuda.CudaAllocator;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The planning backend: placeholders without storage, the real backends' argument checks, every allocation and
 * free counted (in the CUDA allocator's blocks for the CUDA target), categories by the allocating code, and the
 * peak with what held it.
 */
class PlanningBackendTest {

    /** Allocations made from here are "mine" (a rule by class and method), the rest by class. */
    static final class Maker {
        static Tensor mine(Backend b, long n) { return b.allocate(DType.F32, n); }

        static Tensor other(Backend b, long n) { return b.allocate(DType.F32, n); }
    }

    private static PlanningBackend plan(PlanningBackend.Target target) {
        return new PlanningBackend(target, Device.cuda(0), Map.of("Maker.mine", "mine", "Maker", "maker"));
    }

    @Test
    void placeholdersHaveAShapeAndNoMemory() {
        PlanningBackend b = plan(PlanningBackend.Target.SIMULATED);
        try (Tensor t = b.allocate(DType.BF16, 1 << 20, 1 << 20)) { // 2 TiB: nothing is behind it
            assertEquals(Device.cuda(0), t.device());
            assertEquals(2L << 40, t.byteSize());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
            assertEquals(2L << 40, b.now().inUse());
        }
        Tensor host = PlanningBackend.hostPlaceholder(DType.U8, 1L << 40);
        assertTrue(host.device().isCpu());
        assertThrows(IllegalStateException.class, host::toFloatArray);
        assertEquals(0, b.now().inUse());
    }

    @Test
    void opsCheckTheirArgumentsAsTheRealBackendsDo() {
        PlanningBackend b = plan(PlanningBackend.Target.CUDA);
        Tensor a = b.allocate(DType.F32, 3, 4), w = b.allocate(DType.F32, 5, 6), out = b.allocate(DType.F32, 3, 6);
        IllegalArgumentException planned = assertThrows(IllegalArgumentException.class, () -> b.matmul(a, false, w, false, out, false));
        IllegalArgumentException real;
        try (Tensor ha = Tensor.allocate(DType.F32, 3, 4); Tensor hw = Tensor.allocate(DType.F32, 5, 6); Tensor ho = Tensor.allocate(DType.F32, 3, 6)) {
            real = assertThrows(IllegalArgumentException.class, () -> CpuBackend.fast().matmul(ha, false, hw, false, ho, false));
        }
        assertEquals(real.getMessage().replace("]", "]@cuda:0"), planned.getMessage(),
                "the same message, for tensors on the device");
        try (Tensor onHost = Tensor.allocate(DType.F32, 3, 4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.add(onHost, a, a));
            assertTrue(e.getMessage().startsWith("add: a must be on cuda:0"), e.getMessage());
        }
        Tensor bf = b.allocate(DType.BF16, 3, 5);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.add(bf, a, a));
        assertTrue(e.getMessage().startsWith("add: b must have the shape of a"), e.getMessage());
        Tensor q = b.allocate(DType.F32, 1, 4, 2, 96), lse = b.allocate(DType.F32, 1, 2, 4);
        e = assertThrows(IllegalArgumentException.class, () -> b.attention(q, q, q, 1f, q, lse));
        assertTrue(e.getMessage().contains("head dim 96 is not supported on CUDA"), e.getMessage());
    }

    @Test
    void everyAllocationIsCountedWithItsCategoryAndThePeakRemembersWhatHeldIt() {
        PlanningBackend b = plan(PlanningBackend.Target.SIMULATED);
        Tensor x = Maker.mine(b, 1000), y = Maker.other(b, 500);
        Tensor z = b.allocate(DType.U8, 7);
        PlanningBackend.Usage now = b.now();
        assertEquals(6007, now.inUse());
        assertEquals(Map.of("mine", 4000L, "maker", 2000L, "other", 7L), now.inUseByCategory());
        x.close();
        x.close(); // once only
        assertEquals(2007, b.now().inUse());
        PlanningBackend.Usage peak = b.peak();
        assertEquals(6007, peak.inUse());
        assertEquals(4000L, peak.inUseByCategory().get("mine"));
        b.resetPeak();
        assertEquals(2007, b.peak().inUse());
        y.close();
        z.close();
        assertEquals(0, b.now().inUse());
        assertEquals(3, b.allocations());
    }

    @Test
    void theCudaTargetCountsTheAllocatorsBlocksAndItsCache() {
        PlanningBackend b = plan(PlanningBackend.Target.CUDA);
        Tensor small = b.allocate(DType.F32, 3), big = b.allocate(DType.BF16, 3 << 20);
        assertEquals(CudaAllocator.sizeClass(12) + CudaAllocator.sizeClass(6L << 20), b.now().inUse());
        assertEquals(12 + (6L << 20), b.now().requested());
        assertEquals(b.now().inUse() - b.now().requested(), b.now().slack());
        big.close();
        long taken = b.deviceAllocations();
        Tensor again = b.allocate(DType.U8, 6L << 20); // the cached block serves it
        assertEquals(taken, b.deviceAllocations());
        assertEquals(1, b.allocatorStats().cacheHits());
        again.close();
        small.close();
        b.emptyCache();
        assertEquals(0, b.allocatorStats().reservedBytes());
    }

    @Test
    void hostMemoryForCopiesIsCountedApart() {
        for (PlanningBackend.Target target : PlanningBackend.Target.values()) {
            PlanningBackend b = plan(target);
            Tensor d = b.allocate(DType.BF16, 100);
            try (Tensor h = b.allocateHost(DType.BF16, 100)) {
                assertTrue(h.device().isCpu());
                b.copyAsync(d, h).await();
                assertEquals(200, b.peakHost());
                // on the CPU the host is where everything lives
                assertEquals(target == PlanningBackend.Target.CPU ? 400 : 200, b.now().requested(), target.toString());
            }
            assertEquals(200, b.peakHost());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.copy(d, b.allocate(DType.F32, 100)));
            assertTrue(e.getMessage().startsWith("copy: "), e.getMessage());
        }
    }
}
