package dev.tenfold.qlora.plan;

import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.collective.Communicator;
import java.util.List;

/**
 * Rank 0 of a group of {@code size} ranks in a memory plan, where the planning backend computes
 * nothing: the collectives have no values to move and leave their arguments as they are. What a
 * plan needs from the group is its size (the rank's share of the tokens, its heads).
 */
final class PlanningGroup implements Communicator {
    private final int size;

    PlanningGroup(int size) { this.size = size; }

    @Override public int rank() { return 0; }

    @Override public int size() { return size; }

    @Override public void allReduceSum(List<Tensor> tensors) {}

    @Override public void allReduceSum(double[] values) {}

    @Override public void broadcast(Tensor tensor, int root) {}

    @Override public void barrier() {}

    @Override public void allGather(Tensor mine, Tensor all) {}

    @Override public void allToAll(Tensor send, Tensor recv) {}

    @Override public void reduceScatter(Tensor send, Tensor recv) {}

    @Override public String describe() { return "rank 0 of " + size + " in a memory plan (nothing moves)"; }

    @Override public void close() {}
}
