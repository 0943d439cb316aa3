package dev.tenfold.engine;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The host memory that tensors own — {@link Tensor#allocate(DType, long...)} until closed, a host
 * {@link Scratch} until it closes — now and at its peak: the CPU backend's counterpart of a GPU
 * allocator's statistics, so that what a training step holds on the CPU can be measured (and set
 * beside what a plan says). Memory made in a caller's arena, mapped files and the Java heap are not
 * counted. Process-wide.
 */
public final class HostMemory {
    private static final AtomicLong LIVE = new AtomicLong(), PEAK = new AtomicLong();

    private HostMemory() {}

    static void allocated(long bytes) { PEAK.accumulateAndGet(LIVE.addAndGet(bytes), Math::max); }

    static void freed(long bytes) { LIVE.addAndGet(-bytes); }

    /** Bytes held now. */
    public static long live() { return LIVE.get(); }

    /** The most bytes held at once since the last {@link #resetPeak}. */
    public static long peak() { return PEAK.get(); }

    /** Starts the peak afresh from what is held now. */
    public static void resetPeak() { PEAK.set(LIVE.get()); }
}
