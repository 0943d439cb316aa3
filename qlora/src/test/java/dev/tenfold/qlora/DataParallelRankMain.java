package dev.tenfold.qlora;

import dev.tenfold.engine.collective.MpiCommunicator;
import java.nio.file.Path;
import java.time.Duration;

/** One MPI rank of {@link DataParallelTest}: trains {@link DataParallelRuns}' run, writes its weights per step to DIR/rank-R.bin. */
public final class DataParallelRankMain {
    public static void main(String[] args) throws Exception {
        Path base = Path.of(args[0]), dir = Path.of(args[1]);
        MpiCommunicator comm = MpiCommunicator.world(Duration.ofMinutes(2));
        DataParallelRuns.train(base, comm, dir.resolve("rank-" + comm.rank() + ".bin"));
        System.out.println("rank " + comm.rank() + " of " + comm.size() + " trained");
        comm.close();
    }
}
