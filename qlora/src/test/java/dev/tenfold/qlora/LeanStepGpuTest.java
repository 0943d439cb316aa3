package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.plan.PlanningBackend;
import dev.tenfold.engine.testing.GpuTests;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TrainingMemory;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.qlora.plan.MemoryPlan;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The lean step on a real GPU: BF16 activations, the MLP in tiles and checkpoints offloaded to pinned memory over
 * the second stream give the CPU's F32 step within BF16 tolerance, offload on and off agree, and the caching
 * allocator's peak is the plan's to the byte. Skipped, saying why, where there is no GPU (failed instead where
 * TENFOLD_REQUIRE_GPU=1). The 8B-shaped check at 16K and 64K tokens is `.gpu/run.sh memory` (GpuMemoryCheck).
 */
@Tag("gpu")
class LeanStepGpuTest {

    @Test
    void theLeanStepOnTheGpuIsTheCpusF32StepAndThePlansMemory(@TempDir Path dir) throws Exception {
        Backend cuda = GpuTests.deviceOrSkip();
        Path base = CudaQloraStepTest.model(dir);
        SplittableRandom rng = new SplittableRandom(9);
        int t = 173; // a length no other test uses: the backend keeps the flash kernels' cu_seqlens per length
        int[] ids = new int[t], targets = new int[t];
        for (int i = 0; i < t; i++) {
            ids[i] = 3 + rng.nextInt(990);
            targets[i] = i % 5 == 0 ? -100 : 3 + rng.nextInt(990);
        }
        float[][] offGrads = null;
        try (LlamaModel cpu = DeviceTrainingTest.qlora(base, CpuBackend.fast(), DType.BF16)) {
            cpu.setTrainingMemory(TrainingMemory.f32());
            Backend.LossSum want = TrainingStep.run(cpu, ids, targets, TrainingStep.consecutive(t), 1f / t);
            List<Parameter> pc = cpu.parameters();
            for (boolean offload : new boolean[] {false, true}) {
                try (LlamaModel gpu = DeviceTrainingTest.qlora(base, cuda, DType.BF16)) {
                    gpu.setTrainingMemory(TrainingMemory.lean(offload).withMlpTile(64));
                    Backend.LossSum got = TrainingStep.run(gpu, ids, targets, TrainingStep.consecutive(t), 1f / t);
                    cuda.synchronize();
                    assertEquals(want.count(), got.count());
                    assertEquals(want.mean(), got.mean(), 1e-2 * Math.abs(want.mean()), "loss, offload " + offload);
                    List<Parameter> pg = gpu.parameters();
                    float[][] grads = new float[pg.size()][];
                    for (int i = 0; i < pc.size(); i++) {
                        grads[i] = Transfers.toFloatArray(cuda, pg.get(i).grad());
                        CudaQloraStepTest.assertRelativeClose("gradient of " + pc.get(i).name() + ", offload " + offload,
                                pc.get(i).grad().toFloatArray(), grads[i], 6e-2);
                    }
                    if (offGrads == null) {
                        offGrads = grads;
                    } else {
                        for (int i = 0; i < grads.length; i++) {
                            // the embedding's gradient is summed with atomics: its last bits may differ from run to run
                            CudaQloraStepTest.assertRelativeClose("offload on vs off: " + pg.get(i).name(), offGrads[i], grads[i], 1e-6);
                        }
                    }
                }
            }
        }
        // the allocator's peak over loading, preparing and two trainer steps is the plan's, at a length of its own: the
        // steps above left length t's cu_seqlens (one 512-byte block) in the backend, which a fresh run would allocate
        int planT = 181;
        LlamaConfig c = LlamaConfig.load(base);
        MemoryPlan.Spec spec = MemoryPlan.Spec.training(c, planT).withStored(DType.BF16).withLora(4, Lora.parseTargets("q,k,v,o"))
                .withMemory(TrainingMemory.lean(true));
        long planned = MemoryPlan.plan(spec).peakBytes();
        long before = GpuTests.resetPeaks(cuda); // what other tests keep (cu_seqlens of their lengths)
        try (LlamaModel gpu = dev.tenfold.llama.LlamaLoader.load(base, dev.tenfold.llama.LoadSpec.defaults().quantization(dev.tenfold.llama.Quantization.NF4).backend(cuda))) {
            MemoryPlan.prepare(gpu, spec);
            MemoryPlan.run(gpu, planT, false, null);
            cuda.synchronize();
        }
        assertEquals(planned, GpuTests.peakInUseBytes(cuda) - before, "planned vs measured peak");
    }
}
