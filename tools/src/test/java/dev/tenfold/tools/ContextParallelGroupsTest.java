package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** --cp on GPUs: one rank per GPU, checked before anything starts (no GPU needed: the count is an argument). */
class ContextParallelGroupsTest {

    @Test
    void gpuRanksNeedOneGpuEach() {
        ContextParallelGroups.checkGpuRanks(2, 2, 2, 2);
        ContextParallelGroups.checkGpuRanks(2, 8, 8, 8);
        ContextParallelGroups.checkGpuRanks(2, 4, 2, 2); // two machines of two GPUs
        ContextParallelGroups.checkGpuRanks(2, 4, 0, 1); // a rank that sees its own GPU only counts nothing
        // a one-GPU machine: --cp 2 alone is one rank, with --nproc-per-node 2 two ranks on one GPU
        String alone = assertThrows(Flags.BadFlag.class, () -> ContextParallelGroups.checkGpuRanks(2, 1, 1, 1)).getMessage();
        assertEquals("--cp 2 must divide the ranks (1): on GPUs each rank has its own GPU (NCCL takes one rank per GPU), so --cp 2"
                + " needs --nproc-per-node 2 (or a multiple) and as many GPUs; this machine has 1 GPU", alone);
        String two = assertThrows(Flags.BadFlag.class, () -> ContextParallelGroups.checkGpuRanks(2, 2, 2, 1)).getMessage();
        assertEquals("--nproc-per-node 2 --device cuda: NCCL takes one rank per GPU, but this machine has 1 GPU; --cp 2 needs 2 GPUs,"
                + " or CPU ranks (--device cpu)", two);
        assertThrows(Flags.BadFlag.class, () -> ContextParallelGroups.checkGpuRanks(2, 8, 8, 4));
        assertThrows(Flags.BadFlag.class, () -> ContextParallelGroups.checkGpuRanks(4, 6, 6, 8));
    }
}
