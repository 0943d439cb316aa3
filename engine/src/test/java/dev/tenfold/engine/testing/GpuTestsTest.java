package dev.tenfold.engine.testing;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.cuda.CudaUnavailableException;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

/**
 * "No CUDA" is a skip only where a GPU is not required. A device index no machine has (cuda:9x) is unavailable
 * everywhere: without a driver, and with one ("there is no cuda:99").
 */
class GpuTestsTest {

    @Test
    void withoutTheRequirementAMissingDeviceSkipsTheTest() {
        TestAbortedException e = assertThrows(TestAbortedException.class, () -> GpuTests.backendOr(99, false));
        assertTrue(e.getMessage().startsWith("no CUDA for this test (cuda:99): "), e.getMessage());
    }

    @Test
    void whereAGpuIsRequiredAMissingDeviceFailsTheTestWithTheReasonOnce() {
        AssertionFailedError first = assertThrows(AssertionFailedError.class, () -> GpuTests.backendOr(98, true));
        assertTrue(first.getMessage().startsWith("TENFOLD_REQUIRE_GPU=1 and no CUDA for this test (cuda:98): "), first.getMessage());
        assertInstanceOf(CudaUnavailableException.class, first.getCause());
        AssertionFailedError second = assertThrows(AssertionFailedError.class, () -> GpuTests.backendOr(98, true));
        assertTrue(second.getMessage().endsWith("(the first test that asked has the details)"), second.getMessage());
        assertNull(second.getCause());
    }
}
