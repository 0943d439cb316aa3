package dev.tenfold.engine.cuda;

/**
 * A kernel reported an error through its error word (tenfold_kernels.h): it ran, the context is still usable,
 * but its output is not valid. Names the kernel, the code and what it means.
 */
public final class CudaKernelException extends RuntimeException {
    private final String kernel;
    private final int code;

    public CudaKernelException(String kernel, int code, String meaning) {
        super(kernel + " stopped with error code " + code + ": " + meaning);
        this.kernel = kernel;
        this.code = code;
    }

    /** The kernel's name in the fatbin, e.g. tf_flash_bwd_d128. */
    public String kernel() { return kernel; }

    /** The value of its error word. */
    public int code() { return code; }
}
