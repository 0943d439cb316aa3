package dev.tenfold.engine.cuda;

import java.lang.foreign.MemorySegment;

/**
 * GPU time of work queued on a {@link CudaBackend}'s stream, measured with a pair of CUDA events:
 * {@link #start()} records the first, the work is queued, {@link #stop()} records the second, and
 * {@link #elapsedMillis()} waits for it and returns the milliseconds between the two (the driver's
 * resolution is about half a microsecond). What is measured is the device's time between the two
 * points of the stream, so the host's launch overhead counts only where the GPU had to wait for it:
 * time several launches between one start and stop ({@link #millisPerRun}) to hide it.
 *
 * <pre>
 * try (CudaTimer timer = new CudaTimer(gpu)) {
 *     double ms = timer.millisPerRun(10, () -> gpu.rmsnorm(x, w, 1e-5f, out, rstd));
 * }
 * </pre>
 * Not thread-safe; one timer per thread. Close it to free the events.
 */
public final class CudaTimer implements AutoCloseable {
    private final CudaBackend backend;
    private final CudaDriver driver;
    private final MemorySegment start, stop;
    private boolean started, stopped, closed;

    /** Two timing events in the backend's context. */
    public CudaTimer(CudaBackend backend) {
        if (backend == null) throw new IllegalArgumentException("CudaTimer: backend is null");
        this.backend = backend;
        this.driver = CudaDriver.get();
        backend.makeCurrent();
        this.start = driver.eventCreate(CudaDriver.EVENT_DEFAULT);
        MemorySegment second;
        try {
            second = driver.eventCreate(CudaDriver.EVENT_DEFAULT);
        } catch (RuntimeException e) {
            driver.eventDestroy(start);
            throw e;
        }
        this.stop = second;
    }

    /** Records the start event on the backend's stream (after everything queued so far). */
    public void start() {
        checkOpen();
        backend.makeCurrent();
        driver.eventRecord(start, backend.stream());
        started = true;
        stopped = false;
    }

    /** Records the stop event on the backend's stream (after everything queued since {@link #start()}). */
    public void stop() {
        checkOpen();
        if (!started) throw new IllegalStateException("CudaTimer: stop() before start()");
        backend.makeCurrent();
        driver.eventRecord(stop, backend.stream());
        stopped = true;
    }

    /** Waits until the GPU reaches the stop event; milliseconds from start to stop. */
    public double elapsedMillis() {
        checkOpen();
        if (!stopped) throw new IllegalStateException("CudaTimer: elapsedMillis() needs start() and stop() first");
        backend.makeCurrent();
        driver.eventSynchronize(stop);
        return driver.eventElapsedMillis(start, stop);
    }

    /**
     * Queues {@code work} {@code runs} times between one start and one stop and returns the GPU
     * milliseconds per run. {@code work} must queue its GPU work on this backend's stream (every
     * {@link CudaBackend} op does).
     */
    public double millisPerRun(int runs, Runnable work) {
        if (runs < 1) throw new IllegalArgumentException("CudaTimer: runs must be at least 1, got " + runs);
        if (work == null) throw new IllegalArgumentException("CudaTimer: work is null");
        start();
        for (int i = 0; i < runs; i++) work.run();
        stop();
        return elapsedMillis() / runs;
    }

    private void checkOpen() {
        if (closed) throw new IllegalStateException("CudaTimer: used after close()");
    }

    /** Frees the events (idempotent). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        backend.makeCurrent();
        try {
            driver.eventDestroy(start);
        } finally {
            driver.eventDestroy(stop);
        }
    }
}
