package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class OutOfMemoryMessageTest {

    private static CudaAllocator.Stats holding(long inUse, int tensors) {
        return new CudaAllocator.Stats(inUse, inUse, 0, inUse, inUse, inUse, tensors, 0, 1, tensors, 0);
    }

    @Test
    void saysWhatWasAskedWhatIsFreeAndWhatWouldFit() {
        String m = OutOfMemoryMessage.describe("cuda:0", 3L << 30, 1L << 29, 80L << 30, holding(79L << 30, 1234));
        assertEquals("cuda:0 is out of memory: asked for 3.00 GiB, the GPU has 512.0 MiB free of 80.00 GiB (tenfold returned its"
                + " cached blocks to the driver and tried again; it holds 79.00 GiB in 1234 live tensors). To fit: lower"
                + " --max-length (activation memory grows with the sequence length), use --micro-batch-size 1, keep gradient"
                + " checkpointing on, and keep the base weights in NF4 (--quantize nf4).", m);
    }

    @Test
    void pointsAtOtherProcessesWhenTheyHoldTheMemory() {
        String m = OutOfMemoryMessage.describe("cuda:1", 2L << 30, 1L << 30, 80L << 30, holding(10L << 30, 3));
        assertTrue(m.contains("Other processes (or CUDA's own context) hold about 69.00 GiB of this GPU; nvidia-smi lists them."), m);
    }

    @Test
    void aTensorLargerThanTheGpu() {
        String m = OutOfMemoryMessage.describe("cuda:0", 100L << 30, 79L << 30, 80L << 30, holding(0, 0));
        assertTrue(m.contains("This one tensor is larger than the whole GPU"), m);
    }

    @Test
    void unknownFreeMemoryIsLeftOut() {
        String m = OutOfMemoryMessage.describe("cuda:0", 1000, -1, -1, holding(0, 0));
        assertTrue(m.startsWith("cuda:0 is out of memory: asked for 1000 bytes (tenfold returned"), m);
    }

    @Test
    void byteSizes() {
        assertEquals("0 bytes", OutOfMemoryMessage.bytes(0));
        assertEquals("1023 bytes", OutOfMemoryMessage.bytes(1023));
        assertEquals("1.0 KiB", OutOfMemoryMessage.bytes(1024));
        assertEquals("1.5 MiB", OutOfMemoryMessage.bytes(3L << 19));
        assertEquals("2.00 GiB", OutOfMemoryMessage.bytes(2L << 30));
        assertEquals("unknown", OutOfMemoryMessage.bytes(-1));
    }
}
