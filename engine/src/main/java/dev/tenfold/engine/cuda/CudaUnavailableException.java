package dev.tenfold.engine.cuda;

/**
 * CUDA cannot be used here: no driver library, no GPU, a device index out of range, or a build
 * without the kernels. The message says which and what to do.
 */
public final class CudaUnavailableException extends RuntimeException {
    public CudaUnavailableException(String message) { super(message); }

    public CudaUnavailableException(String message, Throwable cause) { super(message, cause); }
}
