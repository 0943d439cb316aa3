package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.MemoryLayout;
import org.junit.jupiter.api.Test;

/**
 * CudaDriver's CUDA_MEMCPY2D against the offsets a C compiler gives cuda.h's struct (CUDA 13.0, x86-64 and
 * aarch64: offsetof of each field, sizeof 128), without a GPU. The fake CUDA stack (FakeCudaTest) reads the
 * struct through its own copy of the declaration too.
 */
class Memcpy2dLayoutTest {
    @Test
    void fieldsSitWhereCudaHPutsThem() {
        String[] names = {"srcXInBytes", "srcY", "srcMemoryType", "srcHost", "srcDevice", "srcArray", "srcPitch", "dstXInBytes", "dstY",
                "dstMemoryType", "dstHost", "dstDevice", "dstArray", "dstPitch", "WidthInBytes", "Height"};
        long[] offsets = {0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120};
        for (int i = 0; i < names.length; i++) {
            assertEquals(offsets[i], CudaDriver.MEMCPY2D.byteOffset(MemoryLayout.PathElement.groupElement(names[i])), names[i]);
        }
        assertEquals(128, CudaDriver.MEMCPY2D.byteSize());
        assertEquals(2, CudaDriver.MEMORYTYPE_DEVICE);
    }
}
