package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The status-name tables, and the driver's against cuda.h where a CUDA toolkit is installed. */
class CudaStatusTest {

    @Test
    void namesTheCommonErrors() {
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", CudaStatus.driverName(2));
        assertEquals("CUDA_ERROR_ILLEGAL_ADDRESS", CudaStatus.driverName(700));
        assertEquals("CUDA_ERROR_NO_BINARY_FOR_GPU", CudaStatus.driverName(209));
        assertEquals("CUDA_ERROR_NOT_FOUND", CudaStatus.driverName(CudaStatus.CUDA_ERROR_NOT_FOUND));
        assertEquals("CUresult(12345)", CudaStatus.driverName(12345));
        assertEquals("CUBLAS_STATUS_NOT_SUPPORTED", CudaStatus.cublasName(15));
        assertEquals("CUBLAS_STATUS_ALLOC_FAILED", CudaStatus.cublasName(CudaStatus.CUBLAS_STATUS_ALLOC_FAILED));
        assertEquals("cublasStatus_t(2)", CudaStatus.cublasName(2));
        assertEquals("ncclInvalidUsage", CudaStatus.ncclName(5));
        assertEquals("ncclResult_t(42)", CudaStatus.ncclName(42));
        assertEquals(10, CudaStatus.cublasTable().size());
        assertEquals(9, CudaStatus.ncclTable().size());
    }

    @Test
    void hintsForErrorsThatSurfaceLate() {
        assertTrue(CudaStatus.hint(700).contains("CUDA_LAUNCH_BLOCKING=1"));
        assertTrue(CudaStatus.hint(209).contains("sm_80"));
        assertNull(CudaStatus.hint(2));
    }

    @Test
    void exceptionsNameCallStatusAndCode() {
        CudaException e = new CudaException("cuMemcpyDtoHAsync_v2(64 bytes)", CudaException.Library.DRIVER, 700,
                CudaStatus.driverName(700), CudaStatus.hint(700));
        assertTrue(e.getMessage().startsWith("cuMemcpyDtoHAsync_v2(64 bytes) failed: CUDA_ERROR_ILLEGAL_ADDRESS (700): a kernel"), e.getMessage());
        assertFalse(e.isOutOfMemory());
        assertTrue(new CudaException("cublasGemmEx", CudaException.Library.CUBLAS, 3, "CUBLAS_STATUS_ALLOC_FAILED", null).isOutOfMemory());
        assertFalse(new CudaException("ncclAllReduce", CudaException.Library.NCCL, 2, "ncclSystemError", null).isOutOfMemory());
    }

    @Test
    void theDriverTableIsCudaHsEnum() throws Exception {
        Path header = cudaHeader();
        Assumptions.assumeTrue(header != null, "no cuda.h here (set CUDA_HOME): the table is checked where a toolkit is installed");
        String text = Files.readString(header);
        int start = text.indexOf("typedef enum cudaError_enum"), end = text.indexOf("} CUresult;", start);
        Matcher m = Pattern.compile("(CUDA_[A-Z0-9_]+)\\s*=\\s*(\\d+)").matcher(text.substring(start, end));
        Map<Integer, String> fromHeader = new LinkedHashMap<>();
        while (m.find()) fromHeader.put(Integer.parseInt(m.group(2)), m.group(1));
        assertTrue(fromHeader.size() > 90, "parsed " + fromHeader.size());
        for (var e : fromHeader.entrySet()) {
            assertEquals(e.getValue(), CudaStatus.driverName(e.getKey()), "CUresult " + e.getKey() + " in " + header);
        }
    }

    private static Path cudaHeader() {
        for (String base : new String[] {System.getenv("CUDA_HOME"), "/usr/local/cuda"}) {
            if (base == null) continue;
            Path p = Path.of(base, "include", "cuda.h");
            if (Files.exists(p)) return p;
        }
        return null;
    }
}
