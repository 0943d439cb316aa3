package dev.tenfold.engine.testing;

import dev.tenfold.engine.collective.Communicator;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/** The tests' way to run in-process ranks: one thread per communicator. */
public final class InProcessRanks {
    private InProcessRanks() {}

    /** Runs {@code body} on every rank, one thread each; rethrows the first failure. */
    public static void run(List<Communicator> ranks, Consumer<Communicator> body) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(ranks.size());
        try {
            List<Future<?>> done = new ArrayList<>();
            for (Communicator c : ranks) done.add(pool.submit(() -> body.accept(c)));
            for (Future<?> f : done) f.get();
        } finally {
            pool.shutdownNow();
        }
    }
}
