package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** The CUDA backend's settings and refusals that need no GPU: 0/1 environment flags, the driver floor, kernel error words. */
class CudaBackendSettingsTest {

    @Test
    void flagsAreZeroOrOneAndAnythingElseIsRefusedNamingTheVariable() {
        assertTrue(CudaBackend.flag("X", "1", false));
        assertTrue(CudaBackend.flag("X", "true", false));
        assertFalse(CudaBackend.flag("X", "0", true));
        assertFalse(CudaBackend.flag("X", " false ", true));
        assertTrue(CudaBackend.flag("X", null, true));
        assertFalse(CudaBackend.flag("X", "", false));
        assertEquals("TENFOLD_REQUIRE_GPU must be 0 or 1, got 'yes'",
                assertThrows(IllegalArgumentException.class, () -> CudaBackend.flag(CudaBackend.REQUIRE_GPU_ENV, "yes", false)).getMessage());
    }

    @Test
    void theBackwardsOrderIsAscendingOrDescendingAndAnythingElseIsRefused() {
        assertTrue(CudaBackend.descendingOrder(null)); // the default
        assertTrue(CudaBackend.descendingOrder(" "));
        assertFalse(CudaBackend.descendingOrder("ascending"));
        assertTrue(CudaBackend.descendingOrder(" descending "));
        assertEquals("TENFOLD_FLASH_BWD_ORDER must be ascending or descending, got 'reverse'",
                assertThrows(IllegalArgumentException.class, () -> CudaBackend.descendingOrder("reverse")).getMessage());
    }

    @Test
    void aDriverBelowCuda13IsRefusedNamingTheOneFoundAndTheOneNeeded() {
        CudaBackend.checkDriverVersion(13000);
        CudaBackend.checkDriverVersion(13010);
        CudaUnavailableException e = assertThrows(CudaUnavailableException.class, () -> CudaBackend.checkDriverVersion(12090));
        assertEquals("the NVIDIA driver supports CUDA 12.9 (cuDriverGetVersion 12090); tenfold's kernels are built with CUDA 13 and"
                + " need a driver for CUDA 13.0 or newer (580.65.06 or newer on Linux)", e.getMessage());
    }

    @Test
    void theFlashBackwardsErrorWordBecomesAnExceptionNamingTheKernelAndTheCause() {
        CudaBackend.checkFlashBackwardError(KernelAbi.FLASH_BWD_D128, 0);
        CudaKernelException e = assertThrows(CudaKernelException.class,
                () -> CudaBackend.checkFlashBackwardError(KernelAbi.FLASH_BWD_D128, KernelAbi.FLASH_BWD_ERR_WAIT_TIMEOUT));
        assertEquals("tf_flash_bwd_d128", e.kernel());
        assertTrue(e.getMessage().startsWith("tf_flash_bwd_d128 stopped with error code 1: TF_FLASH_BWD_ERR_WAIT_TIMEOUT: in the"
                + " deterministic attention backward a thread block waited more than 10 s"), e.getMessage());
        assertTrue(e.getMessage().endsWith("TENFOLD_DETERMINISTIC_ATTENTION=0 or CudaBackend.setDeterministic(false)"), e.getMessage());
        assertEquals(7, assertThrows(CudaKernelException.class, () -> CudaBackend.checkFlashBackwardError(KernelAbi.FLASH_BWD_D64, 7)).code());
    }

    @Test
    void stickyErrorsAreTheOnesThatLeaveTheContextUnusable() {
        assertTrue(new CudaException("cuStreamSynchronize", CudaException.Library.DRIVER, 700, "CUDA_ERROR_ILLEGAL_ADDRESS", null).isSticky());
        assertTrue(CudaStatus.isSticky(719));
        assertFalse(new CudaException("cuMemAlloc_v2", CudaException.Library.DRIVER, 2, "CUDA_ERROR_OUT_OF_MEMORY", null).isSticky());
        assertFalse(new CudaException("cublasGemmEx", CudaException.Library.CUBLAS, 700, "?", null).isSticky());
    }
}
