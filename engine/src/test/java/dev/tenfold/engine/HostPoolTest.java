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
    void aClosedPooledTensorStillRefusesUse() {
        Tensor t = Tensor.allocate(DType.F32, 16);
        t.close();
        assertThrows(IllegalStateException.class, () -> t.getFloat(0));
    }
}
