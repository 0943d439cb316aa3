package dev.tenfold.engine.cuda;

/**
 * Device memory ran out even after the allocator emptied its cache and tried again. The message says
 * how much was asked, how much the device has free and in total, what tenfold holds, and which settings
 * would fit (see {@link OutOfMemoryMessage}).
 */
public final class CudaOutOfMemoryException extends CudaException {
    private final long requestedBytes;

    CudaOutOfMemoryException(String message, long requestedBytes) {
        super(message, "cuMemAlloc_v2", Library.DRIVER, CudaStatus.CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY");
        this.requestedBytes = requestedBytes;
    }

    public long requestedBytes() { return requestedBytes; }
}
