package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {

    /** Sequences "a b c ... a b c ...": the second half is predictable from the first. */
    static List<Trainer.Example> repeatTask(int count, int half, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<Trainer.Example> out = new ArrayList<>();
        for (int n = 0; n < count; n++) {
            int[] seq = new int[2 * half + 1];
            for (int i = 0; i < half; i++) seq[i] = seq[i + half] = 4 + rng.nextInt(50);
            seq[2 * half] = 2;
            int[] ids = java.util.Arrays.copyOf(seq, seq.length - 1);
            int[] targets = new int[ids.length];
            for (int i = 0; i < ids.length; i++) targets[i] = i + 1 >= half ? seq[i + 1] : -100; // loss on the repeat
            out.add(new Trainer.Example(ids, targets, null));
        }
        return out;
    }

    static Trainer.BatchPlan plan(int n, int batch) {
        return epoch -> {
            List<Integer> idx = new ArrayList<>();
            for (int i = 0; i < n; i++) idx.add(i);
            java.util.Collections.shuffle(idx, new java.util.Random(1000 + epoch));
            List<int[]> out = new ArrayList<>();
            for (int i = 0; i < n; i += batch) out.add(idx.subList(i, Math.min(n, i + batch)).stream().mapToInt(Integer::intValue).toArray());
            return out;
        };
    }

    static LlamaModel model(Path base) throws Exception {
        LlamaModel model = LlamaLoader.load(base, CpuBackend.fast());
        // dropout is exercised by the resume test: masks must replay exactly
        Lora.attach(model, LoraConfig.of(8, 16f).targets("q,k,v,o").dropout(0.1f).seed(42));
        return model;
    }

    static TrainingSettings settings(int epochs, int saveEvery) {
        return TrainingSettings.defaults().lr(3e-2).warmupSteps(2).epochs(epochs).saveEvery(saveEvery);
    }

    @Test
    void lossFallsAndOutputsAreWritten(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        List<Trainer.Example> data = repeatTask(16, 6, 1);
        List<Double> losses = new ArrayList<>();
        Path out = dir.resolve("out");
        try (LlamaModel model = model(base)) {
            Run t = Run.of(model, data, plan(data.size(), 4), settings(6, 0), out);
            assertEquals(24, t.totalSteps());
            t.train(false, m -> losses.add(m.loss()));
        }
        double first = (losses.get(0) + losses.get(1) + losses.get(2)) / 3, last = (losses.get(21) + losses.get(22) + losses.get(23)) / 3;
        assertTrue(last < 0.6 * first, "loss should fall: " + losses);
        assertTrue(Files.size(out.resolve("adapter_model.safetensors")) > 0);
        assertTrue(Files.readString(out.resolve("adapter_config.json")).contains("\"peft_type\" : \"LORA\""));
        assertEquals(24, Files.readAllLines(out.resolve("metrics.jsonl")).size());

        // the adapter round-trips through PEFT's format and gives the trained model's loss back
        try (LlamaModel reloaded = LlamaLoader.load(base, CpuBackend.fast())) {
            PeftAdapter.Config cfg = PeftAdapter.load(out, reloaded);
            assertEquals(Set.of("q_proj", "k_proj", "v_proj", "o_proj"), cfg.lora().targetModules());
            Trainer.Example e = data.get(0);
            double l = dev.tenfold.llama.TrainingStep.run(reloaded, e.ids(), e.targets(), dev.tenfold.llama.TrainingStep.consecutive(e.ids().length), 1f).mean();
            assertTrue(l < first, "reloaded adapter keeps the learning: " + l + " vs initial " + first);
        }
    }

    @Test
    void resumingFromACheckpointEndsBitIdentical(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        List<Trainer.Example> data = repeatTask(8, 5, 2);
        Path straight = dir.resolve("straight"), killed = dir.resolve("killed");
        try (LlamaModel model = model(base)) {
            Run.of(model, data, plan(data.size(), 3), settings(3, 2), straight).train(false, null);
        }
        // a run that dies after step 5 (checkpoint-4 on disk), then a fresh process-like restart
        try (LlamaModel model = model(base)) {
            Run t = Run.of(model, data, plan(data.size(), 3), settings(3, 2), killed);
            assertThrows(IllegalStateException.class, () -> t.train(false, m -> {
                if (m.step() == 5) throw new IllegalStateException("killed");
            }));
        }
        assertTrue(Files.isDirectory(killed.resolve("checkpoint-4")));
        try (LlamaModel model = model(base)) {
            int from = Run.of(model, data, plan(data.size(), 3), settings(3, 2), killed).train(true, null);
            assertEquals(4, from);
        }
        assertArrayEquals(Files.readAllBytes(straight.resolve("adapter_model.safetensors")),
                Files.readAllBytes(killed.resolve("adapter_model.safetensors")));
        assertEquals(Files.readAllLines(straight.resolve("metrics.jsonl")).size(), Files.readAllLines(killed.resolve("metrics.jsonl")).size());
    }

    @Test
    void schedulesMatchTransformers() {
        LrSchedule lin = new LrSchedule(LrSchedule.Kind.LINEAR, 1.0, 2, 10);
        assertEquals(0.0, lin.at(0));
        assertEquals(0.5, lin.at(1));
        assertEquals(1.0, lin.at(2));
        assertEquals(0.5, lin.at(6), 1e-12);
        assertEquals(0.0, lin.at(10));
        LrSchedule cos = new LrSchedule(LrSchedule.Kind.COSINE, 2.0, 0, 4);
        assertEquals(2.0, cos.at(0));
        assertEquals(1.0, cos.at(2), 1e-12);
        assertEquals(1.0, new LrSchedule(LrSchedule.Kind.CONSTANT, 1.0, 0, 4).at(3));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.parse("warmup-stable"));
    }

    @Test
    void aRunWarmsTheBackendUpOnceBeforeItsFirstStep(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        // 2 examples of 2,049 tokens (over the warm-up's threshold), then 3 tiny runs' worth of steps
        List<Trainer.Example> data = repeatTask(2, 1024, 3);
        for (boolean fit : new boolean[] {true, false}) {
            dev.tenfold.engine.testing.SimulatedDeviceBackend sim = new dev.tenfold.engine.testing.SimulatedDeviceBackend();
            try (LlamaModel model = LlamaLoader.load(base, sim)) {
                Lora.attach(model, LoraConfig.of(4, 8f).targets("q").seed(1));
                Trainer t = new Trainer(model, TrainingSettings.defaults().lr(1e-3).maxSteps(2), data, plan(data.size(), 1));
                List<Double> warmUps = new ArrayList<>();
                t.addListener(m -> warmUps.add(m.warmUpSeconds()));
                if (fit) {
                    t.fit();
                } else {
                    for (int i = 0; i < 2; i++) warmUps.add(t.step(List.of(data.get(i))).warmUpSeconds());
                }
                assertEquals(1, sim.warmUps(), (fit ? "fit" : "step") + ": one warm-up, before the first step");
                assertEquals(List.of(0.25, 0.0), warmUps, (fit ? "fit" : "step") + ": reported by the first step only");
            }
        }
        // tiny runs (a test's) are not warmed up
        dev.tenfold.engine.testing.SimulatedDeviceBackend sim = new dev.tenfold.engine.testing.SimulatedDeviceBackend();
        try (LlamaModel model = LlamaLoader.load(base, sim)) {
            Lora.attach(model, LoraConfig.of(4, 8f).targets("q").seed(1));
            List<Trainer.Example> tiny = repeatTask(4, 5, 2);
            new Trainer(model, TrainingSettings.defaults().lr(1e-3).maxSteps(3), tiny, plan(tiny.size(), 2)).fit();
            assertEquals(0, sim.warmUps());
        }
    }

    @Test
    void stepByStepIsWhatFitDoes(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        List<Trainer.Example> data = repeatTask(8, 5, 2);
        Trainer.BatchPlan plan = plan(data.size(), 3);
        TrainingSettings s = settings(2, 0);
        List<float[]> fitted = new ArrayList<>(), stepped = new ArrayList<>();
        List<Double> fitLosses = new ArrayList<>(), stepLosses = new ArrayList<>();
        try (LlamaModel model = model(base)) {
            Trainer t = new Trainer(model, s, data, plan);
            t.addListener(m -> fitLosses.add(m.loss()));
            assertEquals(0, t.fit());
            assertEquals(6, t.completedSteps());
            for (var p : model.parameters()) fitted.add(p.value().toFloatArray());
        }
        try (LlamaModel model = model(base)) {
            Trainer t = new Trainer(model, s, data, plan);
            for (int epoch = 0; epoch < 2; epoch++) {
                for (int[] idx : plan.plan(epoch)) {
                    List<Trainer.Example> batch = new ArrayList<>();
                    for (int i : idx) batch.add(data.get(i));
                    Trainer.StepMetrics m = t.step(batch);
                    assertFalse(m.diverged());
                    assertEquals(t.completedSteps(), m.step());
                    assertEquals(epoch, m.epoch());
                    stepLosses.add(m.loss());
                }
            }
            for (var p : model.parameters()) stepped.add(p.value().toFloatArray());
            assertEquals("the run's 6 steps are done",
                    assertThrows(IllegalStateException.class, () -> t.step(List.of(data.get(0)))).getMessage());
        }
        assertEquals(fitLosses, stepLosses);
        for (int i = 0; i < fitted.size(); i++) assertArrayEquals(fitted.get(i), stepped.get(i));
    }

    @Test
    void listenersHearInOrderAndAllHearAStep(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        List<Trainer.Example> data = repeatTask(4, 5, 2);
        List<String> heard = new ArrayList<>();
        class Named implements Trainer.Listener {
            final String name;
            final boolean fails;

            Named(String name, boolean fails) {
                this.name = name;
                this.fails = fails;
            }

            @Override public void onStart(Trainer t) { heard.add(name + " start"); }

            @Override public void onStep(Trainer.StepMetrics m) {
                heard.add(name + " " + m.step());
                if (fails && m.step() == 2) throw new IllegalStateException(name + " failed");
            }

            @Override public void onEnd(Trainer t) { heard.add(name + " end"); }
        }
        try (LlamaModel model = model(base)) {
            new Trainer(model, settings(1, 0), data, plan(data.size(), 2)).addListener(new Named("a", false))
                    .addListener(new Named("b", false)).fit();
        }
        assertEquals(List.of("a start", "b start", "a 1", "b 1", "a 2", "b 2", "b end", "a end"), heard);
        heard.clear();
        try (LlamaModel model = model(base)) {
            Trainer t = new Trainer(model, settings(1, 0), data, plan(data.size(), 1)).addListener(new Named("a", true))
                    .addListener(new Named("b", false));
            assertEquals("a failed", assertThrows(IllegalStateException.class, t::fit).getMessage());
        }
        assertEquals(List.of("a start", "b start", "a 1", "b 1", "a 2", "b 2"), heard);
    }

    @Test
    void aTrainerWithoutDataIsForStepsAndNeedsTheRunsLength(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
        try (LlamaModel model = model(base)) {
            InvalidSettingException e = assertThrows(InvalidSettingException.class, () -> new Trainer(model, TrainingSettings.defaults()));
            assertEquals("maxSteps", e.setting());
            Trainer t = new Trainer(model, TrainingSettings.defaults().lr(3e-2).maxSteps(3));
            List<Trainer.Example> data = repeatTask(2, 5, 3);
            double first = t.step(data).loss();
            t.step(data);
            assertTrue(t.step(data).loss() < first);
            assertThrows(IllegalStateException.class, t::fit);
        }
    }

    @Test
    void theRecipeIsOneValue() {
        Recipe r = Recipes.named("LLaMA3-80K");
        assertSame(Recipes.LLAMA3_80K, r);
        assertEquals(200e6, r.load().ropeTheta());
        assertEquals(dev.tenfold.llama.Quantization.NF4, r.load().quantization());
        assertEquals(LoraConfig.of(32, 16f).targets("q,k,v,o").trainEmbeddings(true), r.lora());
        assertEquals(5e-5, r.training().lr());
        assertEquals(LrSchedule.Kind.LINEAR, r.training().schedule());
        assertEquals(81920, r.maxLength());
        assertEquals(8, r.batchSize());
        assertEquals("unknown recipe 'llama2' (known: llama3-80k)",
                assertThrows(IllegalArgumentException.class, () -> Recipes.named("llama2")).getMessage());
        assertEquals(1e-4, r.withTraining(r.training().lr(1e-4)).training().lr());
        assertEquals(5e-5, Recipes.LLAMA3_80K.training().lr(), "a recipe's pieces are values: changing a copy leaves it");
    }
}
