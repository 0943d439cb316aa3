package dev.tenfold.engine.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * Data-parallel loops for the fast CPU backend, on all cores: the calling thread and {@link #threads()} - 1
 * workers of its own.
 *
 * <p>Why not the common fork-join pool: a training step forks about 300 times (h256, 1K tokens), and a
 * parked fork-join worker took 8-64 us to start, its wake-up a system call, on every loop. These workers
 * spin for {@link #SPIN_NS} after a loop before they park, so a loop that follows soon finds them
 * running. The thread count is still the common pool's parallelism + 1, the setting data-parallel runs
 * already pass to each rank.
 *
 * <p>One loop runs at a time. A loop started while another runs (a nested one, or one from another
 * thread: in-process data-parallel ranks) runs on its calling thread, through the same chunks in order:
 * every body here gives the same result whatever thread runs a chunk.
 */
public final class Parallel {
    private Parallel() {}

    /** A range body: processes indices [start, end). */
    @FunctionalInterface
    public interface RangeBody {
        void run(int start, int end);
    }

    public static int threads() { return ForkJoinPool.getCommonPoolParallelism() + 1; }

    /** Runs body(i) for every i in [0, n), spread over all cores. */
    public static void forEach(int n, IntConsumer body) {
        forRange(n, 1, (s, e) -> {
            for (int i = s; i < e; i++) body.accept(i);
        });
    }

    /**
     * Splits [0, n) into chunks of at least {@code grain} indices (at most 4 per thread, so that a slow
     * chunk leaves others to take) and runs them on all cores. Small ranges run on the calling thread.
     */
    public static void forRange(int n, int grain, RangeBody body) {
        if (n <= 0) return;
        int g = Math.max(1, grain);
        int threads = threads();
        int tasks = Math.min((n + g - 1) / g, threads * 4);
        if (tasks <= 1 || threads <= 1) {
            body.run(0, n);
            return;
        }
        Job job = new Job(body, n, tasks, threads, Thread.currentThread());
        if (!BUSY.compareAndSet(false, true)) { // another loop is running
            job.work(0);
            job.rethrow();
            return;
        }
        try {
            startWorkers(threads - 1);
            current = job;
            for (Worker w : workers) w.wake();
            job.work(0);
            job.awaitDone();
        } finally {
            current = null;
            BUSY.set(false);
        }
        job.rethrow();
    }

    /**
     * How long a worker, and a loop's caller waiting for the last chunks, spins before it parks. A parked
     * thread is on the critical path when woken (the caller waits for the slowest chunk after every loop):
     * the h256 step at 1K, alternating runs, took 0.25-0.29 s with 1 or 5 ms of spinning against 0.30-0.33 s
     * with 100 us. At most a millisecond of one core is spent after the last loop.
     */
    static final long SPIN_NS = 1_000_000;

    private static final AtomicBoolean BUSY = new AtomicBoolean();
    private static volatile Job current;
    private static volatile Worker[] workers = new Worker[0];

    private static synchronized void startWorkers(int count) {
        if (workers.length == count) return;
        Worker[] w = new Worker[count];
        for (int i = 0; i < count; i++) {
            w[i] = i < workers.length ? workers[i] : new Worker(i + 1);
        }
        workers = w;
    }

    /**
     * One loop. Thread p (the caller is 0) starts on the p-th of as many runs of consecutive chunks as there are
     * threads, then takes what is left of the others' runs: a thread's chunks are mostly consecutive, as they
     * were under the fork-join pool's halving, which products rely on (consecutive chunks share a packed block).
     */
    private static final class Job {
        final RangeBody body;
        final int n, tasks;
        final Thread caller;
        final AtomicInteger[] next;
        final int[] end;
        final AtomicInteger done = new AtomicInteger();
        volatile boolean callerParked;
        volatile Throwable failure;

        Job(RangeBody body, int n, int tasks, int threads, Thread caller) {
            this.body = body;
            this.n = n;
            this.tasks = tasks;
            this.caller = caller;
            next = new AtomicInteger[threads];
            end = new int[threads];
            for (int p = 0; p < threads; p++) {
                next[p] = new AtomicInteger((int) ((long) tasks * p / threads));
                end[p] = (int) ((long) tasks * (p + 1) / threads);
            }
        }

        /** Runs chunks until none is left, own run first. */
        void work(int self) {
            for (int k = 0; k < next.length; k++) {
                int p = (self + k) % next.length;
                for (int t; (t = next[p].getAndIncrement()) < end[p]; ) run(t);
            }
        }

        private void run(int t) {
            try {
                int s = (int) ((long) n * t / tasks), e = (int) ((long) n * (t + 1) / tasks);
                if (s < e) body.run(s, e);
            } catch (Throwable x) {
                if (failure == null) failure = x;
            } finally {
                if (done.incrementAndGet() == tasks && callerParked) LockSupport.unpark(caller);
            }
        }

        void awaitDone() {
            long start = System.nanoTime();
            while (done.get() < tasks) {
                if (System.nanoTime() - start < SPIN_NS) {
                    Thread.onSpinWait();
                    continue;
                }
                callerParked = true;
                if (done.get() < tasks) LockSupport.park(this);
            }
        }

        void rethrow() {
            Throwable x = failure;
            if (x instanceof RuntimeException r) throw r;
            if (x instanceof Error err) throw err;
            if (x != null) throw new IllegalStateException(x);
        }
    }

    private static final class Worker implements Runnable {
        final Thread thread;
        final int index;
        volatile boolean parked;

        Worker(int index) {
            this.index = index;
            thread = Thread.ofPlatform().daemon().name("tenfold-cpu-" + index).unstarted(this);
            thread.start();
        }

        void wake() {
            if (parked) LockSupport.unpark(thread);
        }

        @Override
        public void run() {
            Job last = null;
            long idleSince = System.nanoTime();
            while (true) {
                Job job = current;
                if (job != null && job != last) {
                    last = job;
                    job.work(index);
                    idleSince = System.nanoTime();
                } else if (System.nanoTime() - idleSince < SPIN_NS) {
                    Thread.onSpinWait();
                } else {
                    parked = true;
                    // checked again after the flag: a loop published in between either is seen here or sees the flag
                    Job again = current;
                    if (again == null || again == last) LockSupport.park(this);
                    parked = false;
                    idleSince = System.nanoTime();
                }
            }
        }
    }
}
