package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.SimulatedDeviceBackend;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.Perplexity;
import dev.tenfold.llama.Quantization;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.qlora.nf4.Nf4Checkpoint;
import dev.tenfold.qlora.nf4.Nf4Linear;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QLoRA training on a backend whose device is not the host (simulated: host access to a device
 * tensor throws, ops refuse host arguments, the CPU backend computes underneath) gives the CPU's
 * numbers bit for bit: the loss and every gradient of a step, the adapter and optimizer state of
 * a few trainer steps (with clipping, checkpoints and a resume), and perplexity afterwards.
 */
class DeviceTrainingTest {
    static final int[] IDS = {1, 5, 9, 17, 33, 2, 60, 0, 41, 12, 12, 30};
    static final int[] TARGETS = {5, 9, -100, 33, 2, 60, 0, 41, 7, -100, 30, 4};

    /** NF4 projections with the given compute dtype: quantized on load (double quantization), or read from a bitsandbytes checkpoint. */
    static LlamaLoader.LinearFactory nf4(DType compute) {
        return new LlamaLoader.LinearFactory() {
            @Override
            public dev.tenfold.llama.Linear create(String module, long out, long in, dev.tenfold.engine.io.SafeTensorsModel weights,
                                                   java.util.Set<String> used, List<AutoCloseable> owned) {
                Nf4Linear l = (Nf4Linear) Nf4Checkpoint.FACTORY.create(module, out, in, weights, used, owned);
                return compute == DType.F32 ? l : new Nf4Linear(l.weight(), compute, l.chunkRows());
            }
        };
    }

    /** The recipe's shape in small: NF4 base, LoRA on q/k/v/o, trained embedding; B given values so that A's gradient is not zero. */
    static LlamaModel qlora(Path dir, Backend b, DType compute) throws Exception {
        return qlora(dir, b, compute, true, "q,k,v,o");
    }

    /** As above with an NF4 or dense base and the given LoRA targets. */
    static LlamaModel qlora(Path dir, Backend b, DType compute, boolean nf4, String targets) throws Exception {
        return qlora(dir, b, compute, nf4, targets, true);
    }

    /** As above, the embedding trained or frozen. */
    static LlamaModel qlora(Path dir, Backend b, DType compute, boolean nf4, String targets, boolean trainEmbedding) throws Exception {
        LlamaModel m = LlamaLoader.loadReporting(dir, LoadSpec.defaults().backend(b), nf4 ? nf4(compute) : LlamaLoader.DENSE).model();
        Lora.attach(m, LoraConfig.of(4, 8f).targets(targets).seed(7));
        if (trainEmbedding) m.trainEmbedding();
        SplittableRandom rng = new SplittableRandom(3);
        for (Parameter p : m.parameters()) {
            if (!p.name().contains("lora_B")) continue;
            float[] v = new float[(int) p.value().numel()];
            for (int i = 0; i < v.length; i++) v[i] = (float) (rng.nextDouble() - 0.5);
            try (Tensor h = Tensor.of(v, p.value().shape())) {
                b.copy(h, p.value());
            }
        }
        return m;
    }

    @Test
    void aQloraStepGivesTheCpusLossAndGradientsBitForBit(@TempDir Path dir) throws Exception {
        Path dense = TinyLlama.write(dir.resolve("dense"), 17, DType.BF16, false);
        Path bnb = dir.resolve("nf4");
        Nf4Checkpoint.write(bnb, dense);
        for (Path base : new Path[] {dense, bnb}) {
            for (DType compute : new DType[] {DType.F32, DType.BF16}) {
                String what = base.getFileName() + " " + compute;
                SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
                try (LlamaModel cpu = qlora(base, CpuBackend.fast(), compute); LlamaModel gpu = qlora(base, dev, compute)) {
                    Nf4Linear q = (Nf4Linear) ((LoraLinear) gpu.layer(0).q).base();
                    assertTrue(q.toString().contains("on cuda:0"), q.toString());
                    List<Parameter> pc = cpu.parameters(), pg = gpu.parameters();
                    assertEquals(pc.size(), pg.size());
                    assertEquals(Device.cuda(0), pg.get(0).grad().device());
                    int[] pos = {0, 1, 2, 3, 9, 10, 11, 12, 13, 30, 31, 32}; // PoSE-like gaps
                    SimulatedDeviceBackend.Counts afterFirst = null;
                    for (int step = 0; step < 2; step++) { // the second step adds to the first one's gradients
                        SimulatedDeviceBackend.Counts before = dev.counts();
                        Backend.LossSum a = TrainingStep.run(cpu, IDS, TARGETS, pos, 0.25f);
                        Backend.LossSum b = TrainingStep.run(gpu, IDS, TARGETS, pos, 0.25f);
                        SimulatedDeviceBackend.Counts c = dev.counts().minus(before);
                        assertEquals(a, b, what + ": loss");
                        // ids, positions, targets and the RoPE frequencies go up; nothing comes back but the loss
                        assertEquals(4, c.uploads(), what);
                        assertEquals(0, c.downloads(), what);
                        if (afterFirst == null) {
                            afterFirst = c; // the step's buffers stay for the next step
                        } else {
                            assertEquals(afterFirst.live(), c.live(), what + ": the second step keeps the first one's buffers, and no more");
                            assertEquals(afterFirst.liveBytes(), c.liveBytes(), what);
                        }
                        for (int i = 0; i < pc.size(); i++) {
                            assertEquals(pc.get(i).name(), pg.get(i).name());
                            float[] gc = pc.get(i).grad().toFloatArray(), gg = Transfers.toFloatArray(dev, pg.get(i).grad());
                            assertArrayEquals(gc, gg, what + ": gradient of " + pc.get(i).name());
                            assertTrue(nonZero(gc), what + ": " + pc.get(i).name() + " has a gradient");
                        }
                    }
                }
                assertEquals(0, dev.counts().live(), what + ": everything freed with the model");
            }
        }
    }

    private static boolean nonZero(float[] v) {
        for (float f : v) if (f != 0) return true;
        return false;
    }

    static TrainingSettings settings(int saveEvery) {
        // clipping at 0.05 clips every step
        return TrainingSettings.defaults().lr(3e-2).warmupSteps(1).epochs(2).weightDecay(0.01f).maxGradNorm(0.05).saveEvery(saveEvery).seed(5);
    }


    @Test
    void theTrainerOnTheDeviceWritesTheCpusAdapterAndResumesExactly(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        List<Trainer.Example> data = TrainerTest.repeatTask(7, 5, 2);
        Path onCpu = dir.resolve("cpu"), onDev = dir.resolve("dev"), killed = dir.resolve("killed");
        try (LlamaModel m = qlora(base, CpuBackend.fast(), DType.F32)) {
            Run cpu = Run.of(m, data, TrainerTest.plan(data.size(), 3), settings(2), onCpu);
            cpu.trainer().sumGradientsInF32(); // as the device adds them (the CPU's own F64 sums are DataParallelTest's)
            cpu.train(false, null);
        }
        SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
        try (LlamaModel m = qlora(base, dev, DType.F32)) {
            Run t = Run.of(m, data, TrainerTest.plan(data.size(), 3), settings(2), onDev);
            assertEquals(6, t.totalSteps());
            SimulatedDeviceBackend.Counts before = dev.counts();
            t.train(false, null);
            SimulatedDeviceBackend.Counts c = dev.counts().minus(before);
            // 4 uploads per sequence (2 epochs of 7); downloads: each checkpoint's parameters and moments
            // (steps 2 and 4) and the adapters written with them and at the end
            int params = m.parameters().size();
            assertEquals(4 * 14, c.uploads());
            assertEquals(2 * (3 * params + params) + params, c.downloads());
        }
        for (String f : new String[] {"adapter_model.safetensors", "checkpoint-4/optimizer.safetensors", "checkpoint-4/parameters.safetensors"}) {
            assertArrayEquals(Files.readAllBytes(onCpu.resolve(f)), Files.readAllBytes(onDev.resolve(f)), f);
        }
        assertEquals(losses(onCpu), losses(onDev));

        // killed after step 3 on the device, resumed from checkpoint-2 there: the same adapter
        try (LlamaModel m = qlora(base, dev, DType.F32)) {
            Run t = Run.of(m, data, TrainerTest.plan(data.size(), 3), settings(2), killed);
            assertThrows(IllegalStateException.class, () -> t.train(false, s -> {
                if (s.step() == 3) throw new IllegalStateException("killed");
            }));
        }
        try (LlamaModel m = qlora(base, dev, DType.F32)) {
            assertEquals(2, Run.of(m, data, TrainerTest.plan(data.size(), 3), settings(2), killed).train(true, null));
        }
        assertArrayEquals(Files.readAllBytes(onCpu.resolve("adapter_model.safetensors")), Files.readAllBytes(killed.resolve("adapter_model.safetensors")));
        assertEquals(0, dev.counts().live());

        // the adapter, loaded onto the device, gives the CPU's perplexity
        List<int[]> seqs = List.of(IDS, data.get(0).ids());
        try (LlamaModel cpu = LlamaLoader.load(base, LoadSpec.defaults().quantization(Quantization.NF4));
             LlamaModel gpu = LlamaLoader.load(base, LoadSpec.defaults().quantization(Quantization.NF4).backend(dev))) {
            PeftAdapter.load(onCpu, cpu);
            PeftAdapter.load(onCpu, gpu);
            assertEquals(Perplexity.evaluate(cpu, seqs, 8, 3), Perplexity.evaluate(gpu, seqs, 8, 3));
        }
        assertEquals(0, dev.counts().live());
    }

    private static List<String> losses(Path out) throws Exception {
        return Files.readAllLines(out.resolve("metrics.jsonl")).stream().map(l -> l.replaceAll(",\"seconds\":[^,}]*", "")).toList();
    }

    @Test
    void dropoutOnTheDeviceGivesTheCpusAdapter(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        List<Trainer.Example> data = TrainerTest.repeatTask(4, 5, 3);
        SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
        for (Backend b : new Backend[] {CpuBackend.fast(), dev}) {
            try (LlamaModel m = qlora(base, b, DType.F32)) {
                Lora.setDropout(m, 0.2f);
                Run run = Run.of(m, data, TrainerTest.plan(data.size(), 2), settings(0), dir.resolve(b.name()));
                if (b == CpuBackend.fast()) run.trainer().sumGradientsInF32(); // as the device adds them
                run.train(false, null);
            }
        }
        assertArrayEquals(Files.readAllBytes(dir.resolve("cpu/adapter_model.safetensors")),
                Files.readAllBytes(dir.resolve(dev.name() + "/adapter_model.safetensors")));
        assertEquals(losses(dir.resolve("cpu")), losses(dir.resolve(dev.name())));
    }

    @Test
    void fullTrainingAndMergingOnTheDeviceWriteTheCpusFiles(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, true);
        List<Trainer.Example> data = TrainerTest.repeatTask(3, 4, 4);
        SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
        for (Backend b : new Backend[] {CpuBackend.fast(), dev}) {
            try (LlamaModel m = LlamaLoader.load(base, b)) {
                FullTraining.makeTrainable(m);
                Path out = dir.resolve("full-" + b.name());
                Run.of(m, data, TrainerTest.plan(data.size(), 3), settings(0), out,
                        (d, mm) -> FullTraining.save(d, mm, base, DType.BF16)).train(false, null);
            }
            try (LlamaModel m = LlamaLoader.load(base, b)) {
                Lora.attach(m, LoraConfig.of(4, 8f).targets("q,v,down").trainEmbeddings(true).seed(9));
                Run.of(m, data, TrainerTest.plan(data.size(), 3), settings(0), dir.resolve("lora-" + b.name())).train(false, null);
                Merge.write(base, m, 5e5, dir.resolve("merged-" + b.name()));
            }
        }
        for (String f : new String[] {"full-%s/model.safetensors", "merged-%s/model.safetensors"}) {
            assertArrayEquals(Files.readAllBytes(dir.resolve(f.formatted("cpu"))), Files.readAllBytes(dir.resolve(f.formatted(dev.name()))), f);
        }
        assertEquals(0, dev.counts().live());
    }
}
