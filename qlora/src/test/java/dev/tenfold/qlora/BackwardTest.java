package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.GradCheck;
import dev.tenfold.engine.testing.TestTensors;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The backward pass through the whole model against finite differences, and fast against reference. */
class BackwardTest {
    static final int[] IDS = {1, 5, 9, 17, 33, 2, 60, 0, 41};
    static final int[] TARGETS = {5, 9, -100, 33, 2, 60, 0, 41, 7};

    static LlamaModel model(Path dir, Backend backend, boolean tied) throws Exception {
        Path m = TinyLlama.write(dir.resolve("m" + tied), 13, DType.F32, tied);
        LlamaModel model = LlamaLoader.load(m, backend);
        Lora.attach(model, LoraConfig.of(3, 6f).targets("q,k,v,o,gate").seed(5));
        model.trainEmbedding();
        // B starts at zero in PEFT; give it values so that A's gradient is not trivially zero
        SplittableRandom rng = new SplittableRandom(3);
        for (Parameter p : model.parameters()) {
            if (p.name().contains("lora_B")) for (long i = 0; i < p.value().numel(); i++) p.value().setFloat(i, (float) (rng.nextDouble() - 0.5));
        }
        return model;
    }

    static double loss(LlamaModel model, int[] positions) {
        return TrainingStep.run(model, IDS, TARGETS, positions, 1f).sum();
    }

    @Test
    void gradientsMatchFiniteDifferences(@TempDir Path dir) throws Exception {
        for (boolean tied : new boolean[] {false, true}) {
            int[] positions = tied ? new int[] {0, 1, 2, 7, 8, 9, 20, 21, 22} : TrainingStep.consecutive(IDS.length); // PoSE-like gaps
            try (LlamaModel model = model(dir, CpuBackend.reference(), tied)) {
                List<Parameter> params = model.parameters();
                params.forEach(Parameter::zeroGrad);
                TrainingStep.run(model, IDS, TARGETS, positions, 1f);
                assertEquals("model.embed_tokens.weight", params.get(0).name());
                assertTrue(params.stream().anyMatch(p -> p.name().equals("model.layers.1.mlp.gate_proj.lora_A.weight")));
                // snapshot the analytic gradients, since every loss evaluation below adds to them
                List<Tensor> grads = new ArrayList<>();
                for (Parameter p : params) grads.add(p.grad().copy());
                for (int i = 0; i < params.size(); i++) {
                    Parameter p = params.get(i);
                    boolean embed = p.name().startsWith("model.embed");
                    // embedding rows of tokens not in the input get gradient only through the tied output
                    GradCheck.check(p.name() + (tied ? " (tied)" : ""), p.value(), grads.get(i), () -> loss(model, positions),
                            1e-2, 2e-2, embed ? 60 : 12, 7 + i);
                }
                grads.forEach(Tensor::close);
            }
        }
    }

    @Test
    void dropoutGradientsMatchFiniteDifferences(@TempDir Path dir) throws Exception {
        int[] positions = TrainingStep.consecutive(IDS.length);
        try (LlamaModel model = model(dir, CpuBackend.reference(), false)) {
            double clean = loss(model, positions);
            Lora.setDropout(model, 0.3f);
            Lora.setDropoutSeed(model, 1234L);
            double dropped = loss(model, positions);
            assertNotEquals(clean, dropped, "dropout changes the adapter's input");
            assertEquals(dropped, loss(model, positions), "the same seed draws the same masks");
            List<Parameter> params = model.parameters();
            params.forEach(Parameter::zeroGrad);
            TrainingStep.run(model, IDS, TARGETS, positions, 1f);
            List<Tensor> grads = new ArrayList<>();
            for (Parameter p : params) grads.add(p.grad().copy());
            for (int i = 0; i < params.size(); i++) {
                Parameter p = params.get(i);
                GradCheck.check(p.name() + " (dropout)", p.value(), grads.get(i), () -> loss(model, positions), 1e-2, 2e-2, 8, 50 + i);
            }
            grads.forEach(Tensor::close);
            Lora.setDropoutSeed(model, null);
            assertEquals(clean, loss(model, positions), "no seed, no dropout");
        }
    }

    @Test
    void fastMatchesReference(@TempDir Path dir) throws Exception {
        try (LlamaModel ref = model(dir.resolve("r"), CpuBackend.reference(), false);
             LlamaModel fast = model(dir.resolve("f"), CpuBackend.fast(), false)) {
            int[] pos = TrainingStep.consecutive(IDS.length);
            Backend.LossSum lr = TrainingStep.run(ref, IDS, TARGETS, pos, 0.5f);
            Backend.LossSum lf = TrainingStep.run(fast, IDS, TARGETS, pos, 0.5f);
            assertEquals(lr.count(), lf.count());
            assertEquals(lr.sum(), lf.sum(), 1e-4 * Math.abs(lr.sum()));
            List<Parameter> pr = ref.parameters(), pf = fast.parameters();
            assertEquals(pr.size(), pf.size());
            for (int i = 0; i < pr.size(); i++) TestTensors.assertClose(pr.get(i).name(), pr.get(i).grad(), pf.get(i).grad(), 1e-5, 1e-3);
        }
    }

    @Test
    void loraStartsAtTheBaseModelAndGradientsAreDeterministic(@TempDir Path dir) throws Exception {
        Path m = TinyLlama.write(dir.resolve("m"), 2, DType.BF16, false);
        int[] pos = TrainingStep.consecutive(IDS.length);
        double base;
        try (LlamaModel plain = LlamaLoader.load(m, CpuBackend.fast())) {
            base = TrainingStep.run(plain, IDS, TARGETS, pos, 1f).sum();
        }
        float[][] first = null;
        for (int run = 0; run < 3; run++) {
            try (LlamaModel model = LlamaLoader.load(m, CpuBackend.fast())) {
                Lora.attach(model, LoraConfig.of(4, 8f).targets("q,k,v,o").seed(99));
                double withLora = TrainingStep.run(model, IDS, TARGETS, pos, 1f).sum();
                assertEquals(base, withLora, 1e-9, "B = 0: the adapter changes nothing yet");
                List<Parameter> ps = model.parameters();
                float[][] grads = new float[ps.size()][];
                for (int i = 0; i < ps.size(); i++) grads[i] = ps.get(i).grad().toFloatArray();
                if (first == null) first = grads;
                else for (int i = 0; i < grads.length; i++) assertArrayEquals(first[i], grads[i], "run " + run + " " + ps.get(i).name());
            }
        }
    }

    @Test
    void targetsAreParsedStrictly() {
        assertEquals(List.of("q_proj", "v_proj", "down_proj"), new ArrayList<>(Lora.parseTargets("q, v_proj,down")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Lora.parseTargets("q,lm_head"));
        assertTrue(e.getMessage().contains("lm_head"));
    }
}
