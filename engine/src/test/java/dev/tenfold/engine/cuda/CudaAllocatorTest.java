package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The caching allocator's bookkeeping against a fake device memory with a fixed capacity. */
class CudaAllocatorTest {

    /** A device of {@code capacity} bytes: hands out increasing addresses, counts calls, OOMs past capacity. */
    static class FakeDevice implements DeviceMemory {
        final long capacity;
        final Map<Long, Long> blocks = new HashMap<>();
        final List<String> calls = new ArrayList<>();
        long used, next = 0x7f00_0000_0000L;
        int quiesced;

        FakeDevice(long capacity) { this.capacity = capacity; }

        @Override public long allocate(long bytes) {
            calls.add("alloc " + bytes);
            if (used + bytes > capacity) {
                throw new CudaException("cuMemAlloc_v2", CudaException.Library.DRIVER, 2, "CUDA_ERROR_OUT_OF_MEMORY", null);
            }
            long a = next;
            next += bytes + 256;
            blocks.put(a, bytes);
            used += bytes;
            return a;
        }

        @Override public void free(long address) {
            calls.add("free");
            Long bytes = blocks.remove(address);
            assertNotNull(bytes, "freed an unknown address");
            used -= bytes;
        }

        @Override public CudaDriver.MemoryInfo info() { return new CudaDriver.MemoryInfo(capacity - used, capacity); }

        @Override public void quiesce() { quiesced++; }

        @Override public String name() { return "cuda:7"; }
    }

    @Test
    void sizeClassesRoundUp() {
        assertEquals(0, CudaAllocator.sizeClass(0));
        assertEquals(512, CudaAllocator.sizeClass(1));
        assertEquals(512, CudaAllocator.sizeClass(512));
        assertEquals(1024, CudaAllocator.sizeClass(513));
        assertEquals(1L << 20, CudaAllocator.sizeClass((1L << 20) - 100));
        assertEquals(1L << 20, CudaAllocator.sizeClass(1L << 20));
        assertEquals(2L << 20, CudaAllocator.sizeClass((1L << 20) + 1));
        assertEquals(4L << 20, CudaAllocator.sizeClass((2L << 20) + 1));
        assertEquals(80L << 30, CudaAllocator.sizeClass(80L << 30));
        assertThrows(IllegalArgumentException.class, () -> CudaAllocator.sizeClass(-1));
    }

    @Test
    void freedBlocksAreReusedWithoutTheDevice() {
        FakeDevice dev = new FakeDevice(1L << 30);
        CudaAllocator a = new CudaAllocator(dev);
        CudaAllocator.Block x = a.allocate(1000);
        assertEquals(1024, x.size());
        assertEquals(1000, x.requested());
        a.free(x);
        CudaAllocator.Block y = a.allocate(1010); // same class
        assertEquals(x.address(), y.address());
        assertEquals(1, dev.calls.size(), dev.calls.toString());
        CudaAllocator.Stats s = a.stats();
        assertEquals(1, s.cacheHits());
        assertEquals(1, s.deviceAllocations());
        assertEquals(1024, s.inUseBytes());
        assertEquals(1010, s.requestedBytes());
        assertEquals(0, s.cachedBytes());
        assertEquals(1, s.liveBlocks());
    }

    @Test
    void aTrainingStepAtFixedShapesAllocatesNothingAfterTheFirst() {
        FakeDevice dev = new FakeDevice(1L << 34);
        CudaAllocator a = new CudaAllocator(dev);
        long[] sizes = {4096, 3 << 20, 100, 3 << 20, 77_777_777, 4096};
        for (int step = 0; step < 5; step++) {
            List<CudaAllocator.Block> live = new ArrayList<>();
            for (long s : sizes) live.add(a.allocate(s));
            for (CudaAllocator.Block b : live) a.free(b);
        }
        assertEquals(sizes.length, a.stats().deviceAllocations());
        assertEquals(4 * sizes.length, a.stats().cacheHits());
        assertEquals(0, a.stats().inUseBytes());
        assertEquals(a.stats().reservedBytes(), a.stats().cachedBytes());
    }

    @Test
    void aLargeRequestTakesASlightlyLargerCachedBlockButNotAMuchLargerOne() {
        FakeDevice dev = new FakeDevice(1L << 34);
        CudaAllocator a = new CudaAllocator(dev);
        CudaAllocator.Block big = a.allocate(100L << 20);
        a.free(big);
        CudaAllocator.Block near = a.allocate(96L << 20); // within an eighth: reuse
        assertEquals(big.address(), near.address());
        assertEquals(100L << 20, near.size());
        a.free(near);
        CudaAllocator.Block small = a.allocate(50L << 20); // half: a new block
        assertNotEquals(big.address(), small.address());
        // small blocks reuse their exact class only
        CudaAllocator.Block k2 = a.allocate(2048);
        a.free(k2);
        assertNotEquals(k2.address(), a.allocate(1024).address());
        assertEquals(k2.address(), a.allocate(2000).address());
    }

    @Test
    void resetPeaksStartsFromWhatIsHeldNow() {
        CudaAllocator a = new CudaAllocator(new FakeDevice(1L << 34));
        CudaAllocator.Block weights = a.allocate(10L << 20);
        CudaAllocator.Block setUp = a.allocate(40L << 20);
        a.free(setUp); // cached
        assertEquals(50L << 20, a.stats().peakInUseBytes());
        a.resetPeaks();
        assertEquals(10L << 20, a.stats().peakInUseBytes(), "in use now: the weights");
        assertEquals(50L << 20, a.stats().peakReservedBytes(), "reserved now: weights + cached");
        CudaAllocator.Block step = a.allocate(20L << 20); // a new device block: the cached 40 MiB is too large to reuse
        a.free(step);
        assertEquals(30L << 20, a.stats().peakInUseBytes());
        assertEquals(70L << 20, a.stats().peakReservedBytes());
        a.free(weights);
    }

    @Test
    void freeingTwiceOrAForeignBlockFails() {
        CudaAllocator a = new CudaAllocator(new FakeDevice(1L << 30));
        CudaAllocator.Block b = a.allocate(10);
        a.free(b);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> a.free(b));
        assertTrue(e.getMessage().contains("freed twice") && e.getMessage().contains("cuda:7"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> a.free(new CudaAllocator.Block(12345, 512, 1)));
    }

    @Test
    void zeroBytesNeedNoDevice() {
        FakeDevice dev = new FakeDevice(0);
        CudaAllocator a = new CudaAllocator(dev);
        CudaAllocator.Block b = a.allocate(0);
        assertEquals(0, b.address());
        a.free(b);
        a.free(b); // harmless
        assertTrue(dev.calls.isEmpty());
    }

    @Test
    void outOfMemoryEmptiesTheCacheAndRetriesOnce() {
        FakeDevice dev = new FakeDevice(10L << 20);
        CudaAllocator a = new CudaAllocator(dev);
        CudaAllocator.Block x = a.allocate(6L << 20);
        a.free(x); // cached: the device is still 6 MiB full
        CudaAllocator.Block y = a.allocate(8L << 20); // does not fit beside the cached block: flush, retry
        assertEquals(8L << 20, y.size());
        assertEquals(List.of("alloc 6291456", "alloc 8388608", "free", "alloc 8388608"), dev.calls);
        assertEquals(1, dev.quiesced, "queued work is waited for before memory goes back to the driver");
        CudaAllocator.Stats s = a.stats();
        assertEquals(1, s.cacheFlushes());
        assertEquals(0, s.cachedBytes());
        assertEquals(8L << 20, s.reservedBytes());
        assertEquals(8L << 20, s.peakReservedBytes());
    }

    @Test
    void outOfMemoryAfterTheRetryExplainsWhatWouldFit() {
        FakeDevice dev = new FakeDevice(10L << 20);
        CudaAllocator a = new CudaAllocator(dev);
        CudaAllocator.Block held = a.allocate(4L << 20);
        CudaOutOfMemoryException e = assertThrows(CudaOutOfMemoryException.class, () -> a.allocate(7L << 20));
        assertEquals(7L << 20, e.requestedBytes());
        assertTrue(e.isOutOfMemory());
        String m = e.getMessage();
        assertTrue(m.startsWith("cuda:7 is out of memory: asked for 7.0 MiB, the GPU has 6.0 MiB free of 10.0 MiB"), m);
        assertTrue(m.contains("holds 4.0 MiB in 1 live tensors"), m);
        assertTrue(m.contains("--max-length") && m.contains("--micro-batch-size 1"), m);
        assertInstanceOf(CudaException.class, e.getCause());
        a.free(held);
    }

    @Test
    void otherDriverErrorsAreNotTakenForOutOfMemory() {
        DeviceMemory broken = new FakeDevice(1L << 30) {
            @Override public long allocate(long bytes) {
                throw new CudaException("cuMemAlloc_v2", CudaException.Library.DRIVER, 201, "CUDA_ERROR_INVALID_CONTEXT", null);
            }
        };
        CudaAllocator a = new CudaAllocator(broken);
        CudaException e = assertThrows(CudaException.class, () -> a.allocate(10));
        assertFalse(e instanceof CudaOutOfMemoryException);
        assertEquals("cuMemAlloc_v2 failed: CUDA_ERROR_INVALID_CONTEXT (201)", e.getMessage());
    }
}
