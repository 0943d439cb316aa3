package dev.tenfold.engine.collective;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/**
 * One rank of {@link MpiCommunicatorTest}'s worlds: checks each collective against what every rank
 * can compute alone (the sum in rank order of the values each rank makes from its rank), prints
 * "rank R ok" or throws. "hangR" makes rank R hang before a barrier (the others' watchdog must end them).
 */
public final class MpiWorldMain {
    public static void main(String[] args) {
        Duration timeout = Duration.ofSeconds(args.length > 1 ? Integer.parseInt(args[1]) : 60);
        MpiCommunicator comm = MpiCommunicator.world(timeout);
        int rank = comm.rank(), size = comm.size();
        if (args.length > 0 && args[0].startsWith("hang")) {
            if (rank == Integer.parseInt(args[0].substring(4))) {
                System.out.println("rank " + rank + " hangs before the collective");
                System.out.flush();
                try {
                    Thread.sleep(600_000); // mpirun ends it once another rank's watchdog has ended that rank
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            comm.barrier(); // never completes: the watchdog ends this rank
            throw new AssertionError("a barrier without one rank completed");
        }
        // values whose f32 sums depend on the order: the ranks must still agree with the rank-order sum
        int n = 1_000_003;
        try (Tensor f = Tensor.allocate(DType.F32, n); Tensor d = Tensor.allocate(DType.F64, 7); Tensor b = Tensor.allocate(DType.F32, 5)) {
            for (int i = 0; i < n; i++) f.setFloat(i, value(rank, i));
            for (int i = 0; i < 7; i++) d.data().setAtIndex(Tensor.F64, i, rank * 1e-17 + i + 1);
            comm.allReduceSum(List.of(f, d));
            for (int i = 0; i < n; i++) {
                float expect = value(0, i);
                for (int r = 1; r < size; r++) expect += value(r, i);
                if (Float.floatToRawIntBits(expect) != Float.floatToRawIntBits(f.getFloat(i))) {
                    throw new AssertionError("rank " + rank + ": element " + i + " is " + f.getFloat(i) + ", the rank-order sum " + expect);
                }
            }
            for (int i = 0; i < 7; i++) {
                double expect = 0 * 1e-17 + i + 1;
                for (int r = 1; r < size; r++) expect += r * 1e-17 + i + 1;
                if (d.data().getAtIndex(Tensor.F64, i) != expect) throw new AssertionError("rank " + rank + ": f64 element " + i);
            }
            double[] values = {rank, 1.5, -rank};
            comm.allReduceSum(values);
            double ranksSum = size * (size - 1) / 2.0;
            if (!Arrays.equals(values, new double[] {ranksSum, 1.5 * size, -ranksSum})) throw new AssertionError(Arrays.toString(values));
            for (int i = 0; i < 5; i++) b.setFloat(i, rank * 10 + i);
            comm.broadcast(b, size - 1);
            for (int i = 0; i < 5; i++) if (b.getFloat(i) != (size - 1) * 10 + i) throw new AssertionError("broadcast: " + b.getFloat(i));
            comm.barrier();
        }
        checkMoves(comm);
        // groups of 2 consecutive ranks (context parallelism's): ranked as in the world, collectives inside the group only
        try (MpiCommunicator group = comm.split(2)) {
            if (group.size() != 2 || group.rank() != rank % 2) throw new AssertionError("group: rank " + group.rank() + " of " + group.size());
            checkMoves(group);
            double[] ranks = {rank};
            group.allReduceSum(ranks);
            if (ranks[0] != 2 * (rank - rank % 2) + 1) throw new AssertionError("group sum " + ranks[0] + " on world rank " + rank);
        }
        comm.barrier(); // the world still works after its group is freed
        System.out.println("rank " + rank + " of " + size + " ok");
        comm.close();
    }

    /** Values of very different magnitudes, so that f32 sums in another order would differ. */
    static float value(int rank, int i) {
        long h = (rank * 0x9E3779B97F4A7C15L + i * 0xBF58476D1CE4E5B9L) >>> 11;
        return (float) ((h % 2001 - 1000) * Math.pow(2, (int) (h % 40) - 20));
    }

    /**
     * All-gather, all-to-all and reduce-scatter: BF16 and I32 blocks whose values name the sending rank, the
     * receiving rank and the element: every rank checks what arrived where. Throws on the first error.
     */
    static void checkMoves(Communicator comm) {
        int rank = comm.rank(), size = comm.size(), n = 1001;
        try (Tensor mine = Tensor.allocate(DType.I32, n); Tensor all = Tensor.allocate(DType.I32, (long) size * n);
             Tensor send = Tensor.allocate(DType.BF16, (long) size * n); Tensor recv = Tensor.allocate(DType.BF16, (long) size * n)) {
            for (int i = 0; i < n; i++) mine.setInt(i, rank * 1_000_000 + i);
            comm.allGather(mine, all);
            for (int r = 0; r < size; r++) {
                for (int i = 0; i < n; i++) {
                    if (all.getInt((long) r * n + i) != r * 1_000_000 + i) throw new AssertionError("rank " + rank + ": allGather block " + r + " element " + i);
                }
            }
            // bf16 as raw 16-bit patterns: block j (for rank j) holds (rank, j, i)
            for (int j = 0; j < size; j++) for (int i = 0; i < n; i++) send.data().setAtIndex(Tensor.I16, (long) j * n + i, pattern(rank, j, i));
            comm.allToAll(send, recv);
            for (int r = 0; r < size; r++) {
                for (int i = 0; i < n; i++) {
                    if (recv.data().getAtIndex(Tensor.I16, (long) r * n + i) != pattern(r, rank, i)) {
                        throw new AssertionError("rank " + rank + ": allToAll block " + r + " element " + i);
                    }
                }
            }
        }
        checkReduceScatter(comm);
    }

    /**
     * Reduce-scatter of F32 (values whose sum depends on the order: it must be the rank-order sum) and F64
     * blocks: block j of rank r's send holds values made from (r, j, i); rank j receives their sum over r.
     */
    static void checkReduceScatter(Communicator comm) {
        int rank = comm.rank(), size = comm.size(), n = 1003;
        try (Tensor send = Tensor.allocate(DType.F32, (long) size * n); Tensor recv = Tensor.allocate(DType.F32, n);
             Tensor send64 = Tensor.allocate(DType.F64, (long) size * 3); Tensor recv64 = Tensor.allocate(DType.F64, 3)) {
            for (int j = 0; j < size; j++) for (int i = 0; i < n; i++) send.setFloat((long) j * n + i, value(rank, j * n + i));
            for (int j = 0; j < size; j++) for (int i = 0; i < 3; i++) send64.data().setAtIndex(Tensor.F64, (long) j * 3 + i, rank * 100.0 + j * 10 + i);
            comm.reduceScatter(send, recv);
            comm.reduceScatter(send64, recv64);
            for (int i = 0; i < n; i++) {
                float expect = value(0, rank * n + i);
                for (int r = 1; r < size; r++) expect += value(r, rank * n + i);
                if (Float.floatToRawIntBits(expect) != Float.floatToRawIntBits(recv.getFloat(i))) {
                    throw new AssertionError("rank " + rank + ": reduceScatter element " + i + " is " + recv.getFloat(i) + ", the rank-order sum " + expect);
                }
            }
            for (int i = 0; i < 3; i++) {
                double expect = 0;
                for (int r = 0; r < size; r++) expect += r * 100.0 + rank * 10 + i;
                if (recv64.data().getAtIndex(Tensor.F64, i) != expect) throw new AssertionError("rank " + rank + ": f64 reduceScatter element " + i);
            }
        }
    }

    private static short pattern(int from, int to, int i) { return (short) (from * 8000 + to * 1000 + i); }
}
