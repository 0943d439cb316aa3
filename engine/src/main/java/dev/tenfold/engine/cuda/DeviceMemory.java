package dev.tenfold.engine.cuda;

/**
 * Where a {@link CudaAllocator} gets its memory: the driver (cuMemAlloc / cuMemFree / cuMemGetInfo) on a
 * GPU, or a fake in tests, so that the allocator's bookkeeping is tested without one.
 */
public interface DeviceMemory {

    /** A new block of exactly {@code bytes} bytes; a {@link CudaException} with isOutOfMemory() when full. */
    long allocate(long bytes);

    /** Gives a block back to the device. */
    void free(long address);

    /** Free and total bytes of the device. */
    CudaDriver.MemoryInfo info();

    /** Waits until no queued work can still touch memory about to be freed (a stream synchronize). */
    default void quiesce() {}

    /** A label for messages, e.g. cuda:0. */
    String name();
}
