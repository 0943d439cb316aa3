package dev.tenfold.engine.cuda;

/**
 * A failed CUDA driver, cuBLAS or NCCL call: names the call, the library's status name and code,
 * and, where one helps, what to do about it.
 */
public class CudaException extends RuntimeException {
    /** Which library returned the status. */
    public enum Library { DRIVER, CUBLAS, NCCL }

    private final String call;
    private final Library library;
    private final int status;
    private final String statusName;

    public CudaException(String call, Library library, int status, String statusName, String detail) {
        super(message(call, status, statusName, detail));
        this.call = call;
        this.library = library;
        this.status = status;
        this.statusName = statusName;
    }

    protected CudaException(String message, String call, Library library, int status, String statusName) {
        super(message);
        this.call = call;
        this.library = library;
        this.status = status;
        this.statusName = statusName;
    }

    static String message(String call, int status, String statusName, String detail) {
        return call + " failed: " + statusName + " (" + status + ")" + (detail == null || detail.isEmpty() ? "" : ": " + detail);
    }

    public String call() { return call; }

    public Library library() { return library; }

    /** The raw status (CUresult, cublasStatus_t or ncclResult_t). */
    public int status() { return status; }

    public String statusName() { return statusName; }

    /**
     * True for driver errors that leave the context unusable (a kernel faulted): every later call fails the same
     * way, so whatever runs after this one fails for this one's reason.
     */
    public boolean isSticky() { return library == Library.DRIVER && CudaStatus.isSticky(status); }

    /** True for CUDA_ERROR_OUT_OF_MEMORY from the driver and CUBLAS_STATUS_ALLOC_FAILED from cuBLAS. */
    public boolean isOutOfMemory() {
        return (library == Library.DRIVER && status == CudaStatus.CUDA_ERROR_OUT_OF_MEMORY)
                || (library == Library.CUBLAS && status == CudaStatus.CUBLAS_STATUS_ALLOC_FAILED);
    }
}
