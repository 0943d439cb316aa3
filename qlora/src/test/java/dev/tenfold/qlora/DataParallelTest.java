package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.collective.InProcessCommunicator;
import dev.tenfold.engine.testing.MpiTests;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * N ranks train the bits one rank trains (CPU): LoRA with dropout and a trained embedding, sequences
 * of unequal lengths, batches of 5 over 2 and 4 ranks; the replicas agree after every step.
 */
class DataParallelTest {

    @Test
    void sequencesAreSharedByCostTheSameWayForAGivenBatch() {
        List<Trainer.Example> batch = new ArrayList<>();
        for (int len : new int[] {10, 3, 7, 7, 2}) batch.add(new Trainer.Example(new int[len], new int[len], null));
        // attention alone, costs 100, 9, 49, 49, 4: 100 alone, then 49 + 49, then 9 and 4 to the lighter rank
        assertArrayEquals(new int[] {0, 1, 1, 1, 0}, DataParallel.owners(batch, 2, 0));
        assertArrayEquals(new int[] {0, 3, 1, 2, 3}, DataParallel.owners(batch, 4, 0));
        assertArrayEquals(new int[] {0, 0, 0, 0, 0}, DataParallel.owners(batch, 1, 0));
        // more ranks than sequences: the last ranks run nothing
        assertArrayEquals(new int[] {0, 3, 1, 2, 4}, DataParallel.owners(batch, 8, 0));
        // with a linear part (7 tokens): costs 170, 30, 98, 98, 18: 170 + 30 | 98 + 98 + 18
        assertArrayEquals(new int[] {0, 0, 1, 1, 1}, DataParallel.owners(batch, 2, 7));
        // Llama-3-8B: attention costs what the matmuls cost at about 38,000 tokens
        var llama3 = dev.tenfold.llama.LlamaConfig.parse("""
                {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "vocab_size": 128256, "rope_theta": 500000.0}""");
        long t = DataParallel.linearTokens(llama3);
        assertTrue(t > 35_000 && t < 40_000, "" + t);
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void inProcessRanksTrainTheBitsOfOneRank(int ranks, @TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        List<float[]> alone = DataParallelRuns.train(base, null, null);
        List<Communicator> comms = InProcessCommunicator.group(ranks, Duration.ofMinutes(2));
        ExecutorService pool = Executors.newFixedThreadPool(ranks);
        List<List<float[]>> perRank = new ArrayList<>();
        try {
            List<Future<List<float[]>>> runs = new ArrayList<>();
            for (Communicator c : comms) runs.add(pool.submit(() -> DataParallelRuns.train(base, c, null)));
            for (Future<List<float[]>> f : runs) perRank.add(f.get());
        } finally {
            pool.shutdownNow();
        }
        assertSameRuns(alone, perRank);
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void mpiRanksTrainTheBitsOfOneRank(int ranks, @TempDir Path dir) throws Exception {
        MpiTests.mpirunOrSkip();
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        List<float[]> alone = DataParallelRuns.train(base, null, null);
        MpiTests.Result r = MpiTests.run(ranks, Duration.ofMinutes(5), DataParallelRankMain.class, base.toString(), dir.toString());
        assertEquals(0, r.exitCode(), r.output());
        List<List<float[]>> perRank = new ArrayList<>();
        for (int rank = 0; rank < ranks; rank++) perRank.add(DataParallelRuns.read(dir.resolve("rank-" + rank + ".bin")));
        assertSameRuns(alone, perRank);
    }

    /** Every rank's weights after every step equal rank 0's, and the last equal the one-rank run's. */
    private static void assertSameRuns(List<float[]> alone, List<List<float[]>> perRank) {
        assertEquals(DataParallelRuns.STEPS, alone.size());
        assertFalse(Arrays.equals(alone.get(0), alone.get(alone.size() - 1)), "the weights must change");
        for (int rank = 0; rank < perRank.size(); rank++) {
            List<float[]> steps = perRank.get(rank);
            assertEquals(DataParallelRuns.STEPS, steps.size());
            for (int s = 0; s < steps.size(); s++) {
                assertArrayEquals(perRank.get(0).get(s), steps.get(s), "rank " + rank + " differs from rank 0 after step " + (s + 1));
                assertArrayEquals(alone.get(s), steps.get(s), "rank " + rank + " differs from one rank after step " + (s + 1));
            }
        }
    }
}
