package dev.tenfold.qlora.plan;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Device;
import dev.tenfold.engine.plan.PlanningBackend;
import dev.tenfold.llama.ContextParallelScheme;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.TrainingMemory;
import dev.tenfold.qlora.Lora;
import org.junit.jupiter.api.Test;

/**
 * The memory plan of one rank of a context-parallel group: the real step of its share of the tokens,
 * with Ulysses' head-sharded buffers over the whole sequence or the all-gather's whole-sequence keys and
 * values, on the simulated device (exact bytes).
 */
class ContextParallelPlanTest {
    /** 8 query and 4 key/value heads of 16. */
    static final String CONFIG = """
            {"hidden_size": 128, "intermediate_size": 320, "num_hidden_layers": 2, "num_attention_heads": 8,
             "num_key_value_heads": 4, "vocab_size": 300, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
             "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}""";

    static MemoryPlan.Spec spec(int tokens, int cp) {
        return MemoryPlan.Spec.training(LlamaConfig.parse(CONFIG), tokens).withLora(4, Lora.parseTargets("q,k,v,o"))
                .withMemory(TrainingMemory.lean(false).withMlpTile(64)).on(PlanningBackend.Target.SIMULATED, Device.cuda(0))
                .withContextParallel(cp);
    }

    @Test
    void aRankHoldsItsShareOfTheTokensAndUlyssesBuffersOverTheWholeSequence() {
        int tokens = 1000;
        MemoryPlan.Result one = MemoryPlan.plan(spec(tokens, 1));
        for (int cp : new int[] {2, 4}) {
            MemoryPlan.Result rank = MemoryPlan.plan(spec(tokens, cp));
            MemoryPlan.Result shard = MemoryPlan.plan(spec(tokens / cp, 1)); // the same t without context parallelism
            var p = rank.peak().requestedByCategory();
            assertTrue(rank.peakBytes() < one.peakBytes(), "cp " + cp + ": " + rank.peakBytes() + " vs " + one.peakBytes());
            assertEquals(shard.peak().requestedByCategory().get("checkpoints"), p.get("checkpoints"), "cp " + cp + ": checkpoints of t tokens");
            // forward: q, k, v, att of the rank's heads over all tokens, and one shard's staging; backward: dOut, dq, dk, dv
            long heads = 8 + 4 + 4 + 8, es = 2, d = 16;
            long expect = 2 * tokens * heads / cp * d * es + (long) tokens / cp * 8 * d * es;
            assertEquals(expect, p.get("context-parallel attention"), "cp " + cp + ": " + rank.peak());
        }
        assertEquals(ContextParallelScheme.ALL_GATHER, spec(tokens, 3).contextParallelScheme(), "auto: 3 ranks do not divide 4 kv heads");
        assertEquals("context parallelism: Ulysses needs the 3 ranks to divide the model's 4 key/value heads; use --cp-scheme allgather"
                        + " (or auto) for 3 ranks",
                assertThrows(IllegalArgumentException.class, () -> spec(tokens, 1).withContextParallel(3, ContextParallelScheme.ULYSSES)).getMessage());
    }

    /**
     * The all-gather scheme: a rank holds two chunks of c = ceil(T / 2N) tokens, and the whole (padded) sequence's
     * keys and values: k and v in sequence order and their gradients, one F32 staging buffer of as many elements
     * (the gathered blocks, the first chunk's gradients, the reduce-scatter's blocks), and the F32 result of the
     * reduce-scatter (BF16 activations).
     */
    @Test
    void theAllGatherPlanCountsTheGatheredKeysAndValuesAndTheirGradients() {
        int tokens = 1000;
        MemoryPlan.Result one = MemoryPlan.plan(spec(tokens, 1));
        for (int cp : new int[] {2, 3, 4}) {
            MemoryPlan.Spec spec = spec(tokens, 1).withContextParallel(cp, ContextParallelScheme.ALL_GATHER);
            assertEquals(ContextParallelScheme.ALL_GATHER, spec.contextParallelScheme());
            MemoryPlan.Result rank = MemoryPlan.plan(spec);
            int c = Math.ceilDiv(tokens, 2 * cp);
            long padded = 2L * cp * c, kv = 4, es = 2, d = 16;
            MemoryPlan.Result shard = MemoryPlan.plan(spec(2 * c, 1)); // the same t without context parallelism
            var p = rank.peak().requestedByCategory();
            assertTrue(rank.peakBytes() < one.peakBytes(), "cp " + cp + ": " + rank.peakBytes() + " vs " + one.peakBytes());
            assertEquals(shard.peak().requestedByCategory().get("checkpoints"), p.get("checkpoints"), "cp " + cp + ": checkpoints of 2c tokens");
            // k, v, dk, dv: 4 x the sequence in BF16; the F32 staging of the sequence; the F32 receive of 2c rows
            long expect = padded * kv * d * (4 * es + 4) + 2L * c * kv * d * 4;
            assertEquals(expect, p.get("context-parallel attention"), "cp " + cp + ": " + rank.peak());
        }
    }
}
