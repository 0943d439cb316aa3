package dev.tenfold.engine.collective;

import dev.tenfold.engine.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Threads of one process as ranks, for tests: {@link #group} makes the ranks, each used by its own
 * thread. Every rank computes the sums itself from all ranks' tensors, adding them in rank order,
 * so the ranks end with the same bits and with what the MPI communicator computes. A rank that
 * does not arrive within the timeout fails the collective on every rank that did.
 */
public final class InProcessCommunicator implements Communicator {
    private final Group group;
    private final int rank;

    private static final class Group {
        final int size;
        final Duration timeout;
        final CyclicBarrier barrier;
        final Object[] slots;
        volatile boolean left; // a rank closed: every collective from then on fails

        Group(int size, Duration timeout) {
            this.size = size;
            this.timeout = timeout;
            this.barrier = new CyclicBarrier(size);
            this.slots = new Object[size];
        }
    }

    private InProcessCommunicator(Group group, int rank) {
        this.group = group;
        this.rank = rank;
    }

    /** {@code size} ranks sharing one group; collectives wait at most {@code timeout} for the others. */
    public static List<Communicator> group(int size, Duration timeout) {
        if (size < 1) throw new IllegalArgumentException("an in-process group needs size >= 1, got " + size);
        Group g = new Group(size, timeout);
        List<Communicator> out = new ArrayList<>();
        for (int r = 0; r < size; r++) out.add(new InProcessCommunicator(g, r));
        return out;
    }

    @Override public int rank() { return rank; }

    @Override public int size() { return group.size; }

    @Override
    public void allReduceSum(List<Tensor> tensors) {
        HostSums.checkSum("allReduceSum", tensors);
        group.slots[rank] = tensors;
        await("allReduceSum");
        try (Arena arena = Arena.ofConfined()) {
            List<MemorySegment> sums = new ArrayList<>();
            for (int i = 0; i < tensors.size(); i++) {
                Tensor mine = tensors.get(i);
                MemorySegment acc = arena.allocate(mine.byteSize(), 8);
                for (int r = 0; r < group.size; r++) {
                    @SuppressWarnings("unchecked")
                    Tensor t = ((List<Tensor>) group.slots[r]).get(i);
                    if (t.dtype() != mine.dtype() || t.numel() != mine.numel()) {
                        throw new CollectiveException("allReduceSum: tensor " + i + " is " + mine.describe() + " on rank " + rank
                                + " but " + t.describe() + " on rank " + r);
                    }
                    if (r == 0) MemorySegment.copy(t.data(), 0, acc, 0, t.byteSize());
                    else HostSums.add(acc, t.data(), t.dtype(), t.numel());
                }
                sums.add(acc);
            }
            await("allReduceSum"); // every rank has read every rank's tensors
            for (int i = 0; i < tensors.size(); i++) MemorySegment.copy(sums.get(i), 0, tensors.get(i).data(), 0, tensors.get(i).byteSize());
        }
    }

    @Override
    public void allReduceSum(double[] values) {
        group.slots[rank] = values;
        await("allReduceSum");
        double[] sum = new double[values.length];
        for (int r = 0; r < group.size; r++) {
            double[] v = (double[]) group.slots[r];
            if (v.length != values.length) {
                throw new CollectiveException("allReduceSum: " + values.length + " values on rank " + rank + " but " + v.length + " on rank " + r);
            }
            for (int i = 0; i < sum.length; i++) sum[i] = r == 0 ? v[i] : sum[i] + v[i];
        }
        await("allReduceSum");
        System.arraycopy(sum, 0, values, 0, sum.length);
    }

    @Override
    public void broadcast(Tensor tensor, int root) {
        HostSums.checkRoot("broadcast", root, group.size);
        if (!tensor.device().isCpu()) throw new IllegalArgumentException("broadcast: host tensors only, got " + tensor.describe());
        group.slots[rank] = tensor;
        await("broadcast");
        Tensor src = (Tensor) group.slots[root];
        if (src.byteSize() != tensor.byteSize()) {
            throw new CollectiveException("broadcast: " + tensor.describe() + " on rank " + rank + " but " + src.describe() + " on root " + root);
        }
        if (rank != root) MemorySegment.copy(src.data(), 0, tensor.data(), 0, tensor.byteSize());
        await("broadcast");
    }

    @Override public void barrier() { await("barrier"); }

    @Override
    public void allGather(Tensor mine, Tensor all) {
        long block = HostSums.checkMove("allGather", mine, all, group.size, true);
        group.slots[rank] = mine;
        await("allGather");
        for (int r = 0; r < group.size; r++) {
            Tensor t = (Tensor) group.slots[r];
            if (t.byteSize() != block) throw new CollectiveException("allGather: " + mine.describe() + " on rank " + rank + " but " + t.describe() + " on rank " + r);
            MemorySegment.copy(t.data(), 0, all.data(), r * block, block);
        }
        await("allGather"); // every rank has read every rank's tensor
    }

    @Override
    public void allToAll(Tensor send, Tensor recv) {
        long block = HostSums.checkMove("allToAll", send, recv, group.size, false);
        group.slots[rank] = send;
        await("allToAll");
        for (int r = 0; r < group.size; r++) {
            Tensor t = (Tensor) group.slots[r];
            if (t.byteSize() != send.byteSize()) throw new CollectiveException("allToAll: " + send.describe() + " on rank " + rank + " but " + t.describe() + " on rank " + r);
            MemorySegment.copy(t.data(), rank * block, recv.data(), r * block, block);
        }
        await("allToAll");
    }

    @Override
    public void reduceScatter(Tensor send, Tensor recv) {
        long block = HostSums.checkScatter("reduceScatter", send, recv, group.size);
        group.slots[rank] = send;
        await("reduceScatter");
        MemorySegment out = recv.data();
        for (int r = 0; r < group.size; r++) { // rank 0's block first, then the others added in rank order
            Tensor t = (Tensor) group.slots[r];
            if (t.dtype() != send.dtype() || t.byteSize() != send.byteSize()) {
                throw new CollectiveException("reduceScatter: " + send.describe() + " on rank " + rank + " but " + t.describe() + " on rank " + r);
            }
            MemorySegment mine = t.data().asSlice(rank * block, block);
            if (r == 0) MemorySegment.copy(mine, 0, out, 0, block);
            else HostSums.add(out, mine, recv.dtype(), recv.numel());
        }
        await("reduceScatter"); // every rank has read every rank's send
    }

    @Override public String describe() { return group.size + " in-process ranks, sums in rank order"; }

    /** Breaks the group: the other ranks' pending and later collectives fail at once. */
    @Override public void close() {
        group.left = true; // a reset alone would let later collectives wait for the rank that left
        group.barrier.reset();
    }

    private void await(String op) {
        if (group.left) throw new CollectiveException("rank " + rank + ": " + op + " failed: another rank left the group");
        try {
            group.barrier.await(group.timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new CollectiveException("rank " + rank + ": " + op + " timed out after " + group.timeout.toSeconds()
                    + " s waiting for the other ranks (a rank died or hangs)");
        } catch (BrokenBarrierException e) {
            throw new CollectiveException("rank " + rank + ": " + op + " failed: another rank left the group");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollectiveException("rank " + rank + ": " + op + " interrupted", e);
        }
    }
}
