package dev.tenfold.qlora.plan;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.HostMemory;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.plan.PlanningBackend;
import dev.tenfold.engine.testing.SimulatedDeviceBackend;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Quantization;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.llama.TrainingMemory;
import dev.tenfold.qlora.Lora;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A plan is what running the step does: at small sizes the planned peak equals, to the byte, the peak the
 * simulated device measures and the peak of host memory the CPU backend holds, for F32 and lean steps, with and
 * without offload, for training and evaluation; on the CUDA target the second step takes nothing new from the
 * device, and the table's rows hold what they say.
 */
class MemoryPlanTest {
    static final int TOKENS = 15;
    static final List<TrainingMemory> MEMORIES = List.of(TrainingMemory.f32(), TrainingMemory.f32().withMlpTile(4),
            TrainingMemory.lean(false).withMlpTile(4), TrainingMemory.lean(true).withMlpTile(6), TrainingMemory.f32().withOffload(true));

    static MemoryPlan.Spec spec(LlamaConfig c, MemoryPlan.Base base, DType stored, TrainingMemory memory, boolean eval,
                                PlanningBackend.Target target) {
        return (eval ? MemoryPlan.Spec.evaluation(c, TOKENS) : MemoryPlan.Spec.training(c, TOKENS)).withBase(base).withStored(stored)
                .withLora(4, Lora.parseTargets("q,k,v,o,gate")).withTrainEmbedding(true).withMemory(memory).on(target, Device.cuda(0));
    }

    @Test
    void thePlannedPeakIsTheSimulatedDevicesMeasuredPeak(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 31, DType.BF16, false);
        LlamaConfig c = LlamaConfig.load(base);
        for (TrainingMemory memory : MEMORIES) {
            for (boolean eval : new boolean[] {false, true}) {
                MemoryPlan.Spec spec = spec(c, MemoryPlan.Base.NF4, DType.BF16, memory, eval, PlanningBackend.Target.SIMULATED);
                MemoryPlan.Result planned = MemoryPlan.plan(spec);
                SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
                try (LlamaModel model = LlamaLoader.load(base, LoadSpec.defaults().quantization(Quantization.NF4).backend(dev))) {
                    MemoryPlan.prepare(model, spec);
                    MemoryPlan.run(model, TOKENS, eval, null);
                }
                String what = memory + (eval ? " evaluation" : " training");
                assertEquals(dev.counts().peakBytes(), planned.peakBytes(), what);
                assertEquals(planned.peak().requested(), planned.peak().inUse(), what + ": the simulated device asks for what it gets");
            }
        }
    }

    @Test
    void thePlannedPeakIsTheCpuAllocatorsMeasuredPeak(@TempDir Path dir) throws Exception {
        for (DType stored : new DType[] {DType.F32, DType.BF16}) {
            Path base = TinyLlama.write(dir.resolve("base" + stored), 32, stored, false);
            LlamaConfig c = LlamaConfig.load(base);
            for (TrainingMemory memory : MEMORIES) {
                MemoryPlan.Spec spec = spec(c, MemoryPlan.Base.DENSE, stored, memory, false, PlanningBackend.Target.CPU);
                MemoryPlan.Result planned = MemoryPlan.plan(spec);
                long measured;
                try (LlamaModel model = LlamaLoader.load(base, CpuBackend.fast())) {
                    MemoryPlan.prepare(model, spec);
                    long before = HostMemory.live();
                    HostMemory.resetPeak();
                    MemoryPlan.run(model, TOKENS, false, null);
                    measured = HostMemory.peak() - before;
                }
                assertEquals(measured, planned.peakBytes() - planned.beforeStep(), stored + " " + memory + ": what the step adds");
            }
        }
    }

    /** A config the CUDA flash kernels take (head dim 64). */
    static final String CUDA_SHAPED = """
            {"hidden_size": 128, "intermediate_size": 320, "num_hidden_layers": 3, "num_attention_heads": 2,
             "num_key_value_heads": 1, "vocab_size": 300, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
             "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}""";

    @Test
    void onTheCudaTargetTheSecondStepTakesNothingNewAndTheRowsAddUp() throws Exception {
        LlamaConfig c = LlamaConfig.parse(CUDA_SHAPED);
        MemoryPlan.Result kept = null;
        for (boolean offload : new boolean[] {false, true}) {
            MemoryPlan.Spec spec = MemoryPlan.Spec.training(c, 3000).withLora(8, Lora.parseTargets("q,k,v,o"))
                    .withMemory(TrainingMemory.lean(offload).withMlpTile(1024));
            MemoryPlan.Result r = MemoryPlan.plan(spec);
            assertEquals(0, r.secondStepDeviceAllocations(), "offload " + offload);
            PlanningBackend.Usage p = r.peak();
            assertEquals(p.inUse(), p.inUseByCategory().values().stream().mapToLong(Long::longValue).sum());
            assertEquals(p.requested(), p.requestedByCategory().values().stream().mapToLong(Long::longValue).sum());
            assertTrue(p.slack() > 0, "the allocator rounds small blocks up: " + p);
            for (String row : List.of("weights", "trained parameters and gradients", "optimizer state", "checkpoints", "layer working set",
                    "residual gradients and loss")) {
                assertTrue(p.inUseByCategory().getOrDefault(row, 0L) > 0, row + " holds nothing at the peak: " + p);
            }
            assertFalse(p.inUseByCategory().containsKey("other"), "every allocation has its row: " + p);
            long checkpointBytes = 2L * 3000 * 128; // one [tokens, hidden] BF16 buffer
            if (!offload) {
                assertEquals(0, r.peakHost());
                assertEquals(4 * checkpointBytes, p.requestedByCategory().get("checkpoints"), "every layer's input and the last output");
                kept = r;
            } else {
                assertEquals(3 * checkpointBytes, r.peakHost(), "the inputs of layers 0, 1 and 2 in host memory");
                assertEquals(2 * checkpointBytes, p.requestedByCategory().get("checkpoints"), "two buffers taking turns");
                assertTrue(r.peakBytes() < kept.peakBytes());
            }
        }
    }
}
