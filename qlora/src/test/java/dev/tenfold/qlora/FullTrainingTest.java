package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.GradCheck;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FullTrainingTest {
    static final int[] IDS = {1, 5, 9, 17, 33, 2, 60};
    static final int[] TARGETS = {5, 9, 17, 33, -100, 60, 0};

    @Test
    void everyWeightsGradientMatchesFiniteDifferences(@TempDir Path dir) throws Exception {
        for (boolean tied : new boolean[] {false, true}) {
            Path m = TinyLlama.write(dir.resolve("m" + tied), 17, DType.F32, tied);
            try (LlamaModel model = LlamaLoader.load(m, CpuBackend.reference())) {
                FullTraining.makeTrainable(model);
                List<Parameter> params = model.parameters();
                int expected = 1 + 9 * TinyLlama.LAYERS + 1 + (tied ? 0 : 1); // embedding, 2 norms + 7 projections per layer, norm, lm_head
                assertEquals(expected, params.size());
                TrainingStep.run(model, IDS, TARGETS, TrainingStep.consecutive(IDS.length), 1f);
                List<Tensor> grads = new ArrayList<>();
                for (Parameter p : params) grads.add(p.grad().copy());
                for (int i = 0; i < params.size(); i++) {
                    Parameter p = params.get(i);
                    GradCheck.check(p.name(), p.value(), grads.get(i),
                            () -> TrainingStep.run(model, IDS, TARGETS, TrainingStep.consecutive(IDS.length), 1f).sum(),
                            1e-2, 2e-2, 6, 100 + i);
                }
                grads.forEach(Tensor::close);
            }
        }
    }

    @Test
    void initChecksInitializerRange(@TempDir Path dir) throws Exception {
        for (String bad : new String[] {"\"abc\"", "-0.02", "2", "1e400", "true"}) {
            Path cfg = dir.resolve("config.json");
            Files.writeString(cfg, TinyLlama.config(false, "\"initializer_range\": " + bad));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> FullTraining.init(cfg, dir.resolve("out"), 7, DType.F32, null), bad);
            assertTrue(e.getMessage().startsWith(cfg + ": initializer_range must be a finite number in [0, 1], got "), e.getMessage());
            assertFalse(Files.exists(dir.resolve("out")));
        }
    }

    @Test
    void pretrainFromARandomInitAndReloadTheResult(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, TinyLlama.config(false, "\"initializer_range\": 0.05"));
        Path init = dir.resolve("init");
        FullTraining.init(cfg, init, 7, DType.F32, null);
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> FullTraining.init(cfg, init, 7, DType.F32, null));
        assertTrue(twice.getMessage().contains("already holds a model"));

        List<Trainer.Example> data = TrainerTest.repeatTask(16, 6, 3);
        List<Double> losses = new ArrayList<>();
        Path out = dir.resolve("out");
        try (LlamaModel model = LlamaLoader.load(init, CpuBackend.fast())) {
            FullTraining.makeTrainable(model);
            TrainingSettings s = TrainingSettings.defaults().lr(1e-2).schedule(LrSchedule.Kind.COSINE).warmupSteps(3).epochs(8).beta2(0.95f).weightDecay(0.01f).keepCheckpoints(1);
            Run.of(model, data, TrainerTest.plan(data.size(), 4), s, out, (d, mm) -> FullTraining.save(d, mm, init, DType.F32))
                    .train(false, st -> losses.add(st.loss()));
        }
        assertTrue(losses.get(losses.size() - 1) < 0.7 * losses.get(0), "pre-training lowers the loss: " + losses);
        // the written folder is a plain model that reproduces the trained loss
        Trainer.Example e = data.get(0);
        try (LlamaModel trained = LlamaLoader.load(out, CpuBackend.fast())) {
            double l = TrainingStep.run(trained, e.ids(), e.targets(), TrainingStep.consecutive(e.ids().length), 1f).mean();
            assertTrue(l < losses.get(0), l + " vs " + losses.get(0));
        }
    }
}
