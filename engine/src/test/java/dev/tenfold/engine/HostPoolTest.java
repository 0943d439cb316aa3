package dev.tenfold.engine;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** Tensor.allocate's reuse of closed tensors' host memory. */
class HostPoolTest {

    @Test
    void aReusedBlockIsZeroedAgain() {
        long address;
        try (Tensor t = Tensor.allocate(DType.F32, 1000)) {
            address = t.data().address();
            for (int i = 0; i < 1000; i++) t.setFloat(i, i + 1f);
        }
        // the same size class right after: last in, first out gives the same block back
        try (Tensor u = Tensor.allocate(DType.F32, 900)) {
            assertEquals(address, u.data().address(), "the block was not reused");
            assertEquals(3600, u.byteSize());
            for (float f : u.toFloatArray()) assertEquals(0f, f);
        }
    }

    @Test
    void blocksArePowersOfTwoFrom4KiBTo16MiB() {
        assertEquals(12, HostPool.shift(0));
        assertEquals(12, HostPool.shift(4096));
        assertEquals(13, HostPool.shift(4097));
        assertEquals(24, HostPool.shift(16L << 20));
        assertEquals(-1, HostPool.shift((16L << 20) + 1));
    }

    @Test
    void largeTensorsHaveTheirOwnMemoryAndAreZeroed() {
        long n = (16L << 20) / 4 + 16; // just past the largest pooled block
        try (Tensor t = Tensor.allocate(DType.F32, n)) {
            assertEquals(4 * n, t.byteSize());
            assertEquals(0f, t.getFloat(0));
            assertEquals(0f, t.getFloat(n - 1));
            assertEquals(0, t.data().address() % 64);
        }
    }

    @Test
    void theIdleMemoryStaysWithinItsCapAndTensorsAreCounted() {
        long live = HostMemory.live();
        Tensor[] ts = new Tensor[12];
        for (int i = 0; i < ts.length; i++) ts[i] = Tensor.allocate(DType.F32, (8L << 20) / 4); // 8 MiB each, 96 in all
        assertEquals(live + 12 * (8L << 20), HostMemory.live());
        for (Tensor t : ts) {
            assertEquals(0, t.data().address() % 64);
            t.close();
        }
        assertEquals(live, HostMemory.live());
        assertTrue(HostPool.idle() <= HostPool.MAX_IDLE, "idle " + HostPool.idle());
    }

    @Test
    void aLargeBlockIsReusedWholeAndZeroedAgain() {
        long n = (32L << 20) / 4; // the loss's logits at 1,024 tokens and a vocabulary of 8,192
        long address;
        try (Tensor t = Tensor.allocate(DType.F32, n)) {
            address = t.data().address();
            t.setFloat(0, 1f);
            t.setFloat(n - 1, 2f);
        }
        try (Tensor u = Tensor.allocate(DType.F32, n - 1000)) {
            assertEquals(address, u.data().address(), "the large block was not reused");
            assertEquals(4 * (n - 1000), u.byteSize());
            assertEquals(0f, u.getFloat(0));
            assertEquals(0f, u.getFloat(n - 1001));
        }
        // a block more than twice the request is not taken: 40 MiB gets a block of its own, not an idle 100 MiB
        long big;
        try (Tensor t = Tensor.allocate(DType.F32, (100L << 20) / 4)) {
            big = t.data().address();
        }
        try (Tensor small = Tensor.allocate(DType.F32, (40L << 20) / 4)) {
            assertNotEquals(big, small.data().address());
            assertNotEquals(address, small.data().address());
        }
    }

    @Test
    void theIdleLargeMemoryStaysWithinItsCapAndOnlyTensorsAreCounted() {
        HostPool.dropLarge(); // no idle blocks left by other tests: each tensor below gets a block of its own size
        long live = HostMemory.live();
        Tensor[] ts = new Tensor[6];
        for (int i = 0; i < ts.length; i++) ts[i] = Tensor.allocate(DType.F32, (60L << 20) / 4); // 60 MiB each, 360 in all
        assertEquals(live + 6 * (60L << 20), HostMemory.live());
        for (Tensor t : ts) t.close();
        assertEquals(live, HostMemory.live());
        assertTrue(HostPool.largeIdle() <= HostPool.MAX_LARGE_IDLE, "large idle " + HostPool.largeIdle());
        assertTrue(HostPool.largeIdle() >= 4 * (60L << 20), "the most recent blocks wait: " + HostPool.largeIdle());
        Tensor t = Tensor.allocate(DType.F32, 16);
        t.close();
        assertThrows(IllegalStateException.class, () -> t.getFloat(0));
        // a block larger than all the idle memory allowed is freed at once, not kept
        Tensor huge = Tensor.allocate(DType.F32, (HostPool.MAX_LARGE_IDLE + (8L << 20)) / 4);
        long idle = HostPool.largeIdle();
        huge.close();
        assertEquals(idle, HostPool.largeIdle());
    }

    @Test
    void aClosedPooledTensorStillRefusesUse() {
        Tensor t = Tensor.allocate(DType.F32, 16);
        t.close();
        assertThrows(IllegalStateException.class, () -> t.getFloat(0));
    }
}
