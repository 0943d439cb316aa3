package dev.tenfold.engine.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/** Data-parallel loops for the fast CPU backend, on the common fork-join pool (all cores). */
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
     * Splits [0, n) into chunks of at least {@code grain} indices and runs them on all cores.
     * Small ranges run on the calling thread.
     */
    public static void forRange(int n, int grain, RangeBody body) {
        if (n <= 0) return;
        int g = Math.max(1, grain);
        int tasks = Math.min((n + g - 1) / g, threads() * 4);
        if (tasks <= 1 || ForkJoinPool.commonPool().getParallelism() <= 1 && threads() <= 1) {
            body.run(0, n);
            return;
        }
        new Split(body, n, tasks, 0, tasks).invoke();
    }

    private static final class Split extends RecursiveAction {
        final RangeBody body;
        final int n, tasks, lo, hi;

        Split(RangeBody body, int n, int tasks, int lo, int hi) {
            this.body = body;
            this.n = n;
            this.tasks = tasks;
            this.lo = lo;
            this.hi = hi;
        }

        @Override
        protected void compute() {
            if (hi - lo == 1) {
                int s = (int) ((long) n * lo / tasks), e = (int) ((long) n * hi / tasks);
                if (s < e) body.run(s, e);
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Split(body, n, tasks, lo, mid), new Split(body, n, tasks, mid, hi));
        }
    }
}
