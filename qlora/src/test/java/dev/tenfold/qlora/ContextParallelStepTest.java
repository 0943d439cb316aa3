package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.collective.InProcessCommunicator;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.ContextParallelScheme;
import dev.tenfold.llama.ContextParallelStep;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.ShardedAttention;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.llama.UlyssesAttention;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A whole training step (LoRA on every projection, trained embedding, norms and lm_head) with the
 * sequence split over CP = 2 and 4 in-process ranks against the one-rank step, with Ulysses and with
 * the zigzag all-gather (also over 3 ranks, which do not divide the 4 key/value heads): the same loss
 * and, once summed over the group, the same gradients (to 2e-6 of each parameter's gradient norm: the
 * shards' partial sums add in another order, and the one-rank step's 37 tokens merge LoRA into its base weights
 * where a shard's fewer tokens do not, {@link LoraLinear}'s merge, which rounds differently: 6e-7 here). A length
 * of 37 tokens is uneven for all.
 */
class ContextParallelStepTest {
    static final int T = 37;
    @TempDir static Path dir;
    static Path modelDir;

    /** TinyLlama's weights read as 8 query and 4 key/value heads of 4 dimensions (the same matrices), so CP = 4 divides them. */
    static synchronized Path modelDir() throws Exception {
        if (modelDir == null) {
            Path m = TinyLlama.write(dir.resolve("m"), 21, DType.F32, false);
            String config = Files.readString(m.resolve("config.json"));
            String heads = config.replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 8").replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4");
            assertNotEquals(config, heads);
            Files.writeString(m.resolve("config.json"), heads);
            modelDir = m;
        }
        return modelDir;
    }

    static LlamaModel model() throws Exception {
        LlamaModel model = LlamaLoader.load(modelDir(), CpuBackend.fast());
        Lora.attach(model, LoraConfig.of(3, 6f).targets("q,k,v,o,gate,up,down").seed(5));
        model.trainEmbedding();
        model.trainNorms();
        model.trainOutput();
        SplittableRandom rng = new SplittableRandom(3); // B starts at zero: give it values so A's gradient is not zero
        for (Parameter p : model.parameters()) {
            if (p.name().contains("lora_B")) for (long i = 0; i < p.value().numel(); i++) p.value().setFloat(i, (float) (rng.nextDouble() - 0.5));
        }
        return model;
    }

    static int[] ids() {
        SplittableRandom rng = new SplittableRandom(18);
        int[] ids = new int[T];
        for (int i = 0; i < T; i++) ids[i] = rng.nextInt(TinyLlama.VOCAB);
        return ids;
    }

    /** ids shifted by one (the last predicts nothing), a few positions unscored. */
    static int[] targets(int[] ids) {
        int[] t = new int[T];
        for (int i = 0; i < T; i++) t[i] = i + 1 < T && i % 7 != 3 ? ids[i + 1] : -100;
        return t;
    }

    static float gradScale(int[] targets) {
        int scored = 0;
        for (int x : targets) if (x != -100) scored++;
        return 1f / scored;
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"ulysses, 2", "ulysses, 4", "allgather, 2", "allgather, 4", "allgather, 3"})
    void lossAndGradientsEqualTheOneRankStep(String schemeName, int cp) throws Exception {
        ContextParallelScheme scheme = ContextParallelScheme.fromFlag(schemeName);
        int[] ids = ids(), targets = targets(ids), positions = TrainingStep.consecutive(T);
        List<float[]> reference = new ArrayList<>();
        Backend.LossSum one;
        try (LlamaModel m = model()) {
            one = TrainingStep.run(m, ids, targets, positions, gradScale(targets));
            for (Parameter p : m.parameters()) reference.add(p.grad().toFloatArray());
        }
        List<List<float[]>> grads = new ArrayList<>();
        Backend.LossSum[] losses = new Backend.LossSum[cp];
        for (int r = 0; r < cp; r++) grads.add(null);
        List<Communicator> group = InProcessCommunicator.group(cp, Duration.ofSeconds(120));
        ExecutorService pool = Executors.newFixedThreadPool(cp);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (Communicator c : group) {
                done.add(pool.submit(() -> {
                    try (LlamaModel m = model(); ShardedAttention attention = scheme.attention(c, m.backend())) {
                        losses[c.rank()] = ContextParallelStep.run(m, attention, c, ids, targets, positions, gradScale(targets));
                        ContextParallelStep.allReduceGradients(m, c);
                        List<float[]> mine = new ArrayList<>();
                        for (Parameter p : m.parameters()) mine.add(p.grad().toFloatArray());
                        grads.set(c.rank(), mine);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) f.get();
        } finally {
            pool.shutdownNow();
        }
        for (int r = 0; r < cp; r++) {
            assertEquals(one.count(), losses[r].count(), "scored tokens on rank " + r);
            assertEquals(one.sum(), losses[r].sum(), 1e-6 * Math.abs(one.sum()), "loss on rank " + r);
            assertEquals(reference.size(), grads.get(r).size());
            for (int i = 0; i < reference.size(); i++) {
                float[] ref = reference.get(i), got = grads.get(r).get(i);
                double diff = 0, norm = 0;
                for (int k = 0; k < ref.length; k++) {
                    diff += (double) (ref[k] - got[k]) * (ref[k] - got[k]);
                    norm += (double) ref[k] * ref[k];
                }
                assertTrue(norm > 0, "parameter " + i + " has a zero gradient: the test would not see it");
                assertTrue(Math.sqrt(diff) <= 2e-6 * Math.sqrt(norm),
                        "rank " + r + ", parameter " + i + ": |diff| " + Math.sqrt(diff) + " vs |grad| " + Math.sqrt(norm));
            }
        }
    }

    /** A rank that leaves (here: closes its communicator instead of stepping) ends its group's step with an error, not a hang. */
    @Test
    void aRankThatLeavesEndsTheGroupsStep() throws Exception {
        int[] ids = ids(), targets = targets(ids), positions = TrainingStep.consecutive(T);
        List<Communicator> group = InProcessCommunicator.group(2, Duration.ofMinutes(2));
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<Throwable> survivor = pool.submit(() -> {
                try (LlamaModel m = model(); UlyssesAttention attention = UlyssesAttention.over(group.get(0), m.backend())) {
                    ContextParallelStep.run(m, attention, group.get(0), ids, targets, positions, gradScale(targets));
                    return null;
                } catch (dev.tenfold.engine.collective.CollectiveException e) {
                    return e;
                }
            });
            pool.submit(() -> group.get(1).close()).get();
            Throwable e = survivor.get(60, java.util.concurrent.TimeUnit.SECONDS);
            assertNotNull(e, "the step completed without its other rank");
            assertTrue(e.getMessage().contains("another rank left the group"), e.getMessage());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void oneRankIsTheOrdinaryStepBitForBit() throws Exception {
        int[] ids = ids(), targets = targets(ids), positions = TrainingStep.consecutive(T);
        try (LlamaModel a = model(); LlamaModel b = model(); UlyssesAttention attention = UlyssesAttention.over(Communicator.solo(), b.backend())) {
            Backend.LossSum one = TrainingStep.run(a, ids, targets, positions, gradScale(targets));
            Backend.LossSum cp = ContextParallelStep.run(b, attention, Communicator.solo(), ids, targets, positions, gradScale(targets));
            assertEquals(one, cp);
            for (int i = 0; i < a.parameters().size(); i++) {
                assertArrayEquals(a.parameters().get(i).grad().toFloatArray(), b.parameters().get(i).grad().toFloatArray(), "parameter " + i);
            }
        }
    }

    /** The trainer's run (DataParallelRuns' data and settings, no dropout) as one world rank; null communicators: one rank. */
    static List<float[]> train(Communicator world, Communicator group) throws Exception {
        return train(world, group, ContextParallelScheme.AUTO);
    }

    static List<float[]> train(Communicator world, Communicator group, ContextParallelScheme scheme) throws Exception {
        try (LlamaModel model = LlamaLoader.load(modelDir(), CpuBackend.fast())) {
            Lora.attach(model, LoraConfig.of(4, 8f).targets("q,k,v,o,gate").trainEmbeddings(true).seed(5));
            Trainer t = DataParallelRuns.trainer(model);
            if (world != null) t.dataParallel(world);
            if (group != null) t.contextParallel(group, scheme);
            List<float[]> steps = new ArrayList<>();
            t.addListener(m -> steps.add(DataParallelRuns.weights(model)));
            t.fit();
            return steps;
        }
    }

    /**
     * DP x CP = 1 x 2, 1 x 4 and 2 x 2 in-process ranks train the adapter of one rank (to f32 rounding of the shards'
     * sums), with Ulysses and the all-gather (auto picks it for 3 ranks over 4 key/value heads).
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"1, 2, auto", "1, 4, auto", "2, 2, auto", "1, 3, auto", "2, 2, allgather"})
    void theTrainerWithContextParallelismTrainsOneRanksAdapter(int dp, int cp, String schemeName) throws Exception {
        ContextParallelScheme scheme = ContextParallelScheme.fromFlag(schemeName);
        boolean ulysses = scheme.resolve(cp, 4) == ContextParallelScheme.ULYSSES;
        List<float[]> alone = train(null, null);
        List<Communicator> world = InProcessCommunicator.group(dp * cp, Duration.ofMinutes(2));
        List<Communicator> groups = new ArrayList<>();
        for (int g = 0; g < dp; g++) groups.addAll(InProcessCommunicator.group(cp, Duration.ofMinutes(2)));
        ExecutorService pool = Executors.newFixedThreadPool(dp * cp);
        List<List<float[]>> perRank = new ArrayList<>();
        List<Counting> counters = new ArrayList<>();
        try {
            List<Future<List<float[]>>> runs = new ArrayList<>();
            for (int r = 0; r < dp * cp; r++) {
                Communicator w = world.get(r);
                Counting g = new Counting(groups.get(r));
                counters.add(g);
                runs.add(pool.submit(() -> train(w, g, scheme)));
            }
            for (Future<List<float[]>> f : runs) perRank.add(f.get());
        } finally {
            pool.shutdownNow();
        }
        assertFalse(java.util.Arrays.equals(alone.get(0), alone.get(alone.size() - 1)), "the weights must change");
        for (Counting c : counters) {
            if (ulysses) assertTrue(c.allToAlls > 0 && c.allGathers == 0, "the sequences did not go through Ulysses: no all-to-all");
            else assertTrue(c.allGathers > 0 && c.reduceScatters > 0 && c.allToAlls == 0, "the sequences did not go through the all-gather");
        }
        for (int r = 0; r < perRank.size(); r++) {
            assertEquals(alone.size(), perRank.get(r).size());
            for (int s = 0; s < alone.size(); s++) {
                assertArrayEquals(perRank.get(0).get(s), perRank.get(r).get(s), "rank " + r + " differs from rank 0 after step " + (s + 1));
                float[] a = alone.get(s), b = perRank.get(r).get(s);
                double diff = 0, norm = 0;
                for (int k = 0; k < a.length; k++) {
                    diff = Math.max(diff, Math.abs(a[k] - b[k]));
                    norm = Math.max(norm, Math.abs(a[k]));
                }
                assertTrue(diff <= 1e-5 * norm, "after step " + (s + 1) + ": max |diff| " + diff + ", max |w| " + norm);
            }
        }
    }

    @Test
    void aGroupThatIsNotTheWorldsNeighboursIsRefused() throws Exception {
        try (LlamaModel model = LlamaLoader.load(modelDir(), CpuBackend.fast())) {
            Lora.attach(model, LoraConfig.of(4, 8f).targets("q").seed(5));
            Trainer t = DataParallelRuns.trainer(model);
            assertEquals("context parallelism: the world of 1 ranks (rank 0) must be groups of 2 consecutive ranks, this one rank 0 of its group;"
                    + " call dataParallel(world) first",
                    assertThrows(IllegalArgumentException.class, () -> t.contextParallel(InProcessCommunicator.group(2, Duration.ofSeconds(5)).get(0))).getMessage());
        }
    }

    @Test
    void ulyssesOverRanksThatDoNotDivideTheKvHeadsIsRefused() throws Exception {
        List<Communicator> world = InProcessCommunicator.group(3, Duration.ofSeconds(5));
        try (LlamaModel model = LlamaLoader.load(modelDir(), CpuBackend.fast())) {
            Lora.attach(model, LoraConfig.of(4, 8f).targets("q").seed(5));
            Trainer t = DataParallelRuns.trainer(model).dataParallel(world.get(0));
            assertEquals("context parallelism: Ulysses needs the 3 ranks to divide the model's 4 key/value heads; use --cp-scheme allgather"
                    + " (or auto) for 3 ranks",
                    assertThrows(IllegalArgumentException.class, () -> t.contextParallel(world.get(0), ContextParallelScheme.ULYSSES)).getMessage());
        }
    }

    /** A group that counts its all-to-alls (the sequences went through Ulysses) and otherwise is its delegate. */
    static final class Counting implements Communicator {
        final Communicator c;
        volatile int allToAlls, allGathers, reduceScatters;

        Counting(Communicator c) { this.c = c; }

        @Override public int rank() { return c.rank(); }
        @Override public int size() { return c.size(); }
        @Override public void allReduceSum(List<dev.tenfold.engine.Tensor> tensors) { c.allReduceSum(tensors); }
        @Override public void allReduceSum(double[] values) { c.allReduceSum(values); }
        @Override public void broadcast(dev.tenfold.engine.Tensor tensor, int root) { c.broadcast(tensor, root); }
        @Override public void barrier() { c.barrier(); }
        @Override public void allGather(dev.tenfold.engine.Tensor mine, dev.tenfold.engine.Tensor all) { allGathers++; c.allGather(mine, all); }
        @Override public void reduceScatter(dev.tenfold.engine.Tensor send, dev.tenfold.engine.Tensor recv) { reduceScatters++; c.reduceScatter(send, recv); }
        @Override public void allToAll(dev.tenfold.engine.Tensor send, dev.tenfold.engine.Tensor recv) { allToAlls++; c.allToAll(send, recv); }
        @Override public String describe() { return c.describe(); }
        @Override public void close() { c.close(); }
    }
}
