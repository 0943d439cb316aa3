package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.engine.testing.TestTensors;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaModelTest {

    private static final int[] PROMPT = {1, 5, 9, 17, 33, 2, 60, 0, 41, 7, 7, 12, 50, 3, 29, 8, 44};

    /** The whole model written out as plain loops in double, straight from the Llama equations. */
    static float[][] naiveLogits(LlamaConfig c, Map<String, Tensor> w, int[] ids, double theta) {
        int t = ids.length, h = c.hiddenSize(), d = c.headDim(), hq = c.numHeads(), hkv = c.numKvHeads();
        double[][] x = new double[t][h];
        for (int i = 0; i < t; i++) for (int j = 0; j < h; j++) x[i][j] = w.get("model.embed_tokens.weight").getFloat((long) ids[i] * h + j);
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] xn = rmsnorm(x, w.get(p + "input_layernorm.weight"), c.rmsNormEps());
            double[][] q = linear(xn, w.get(p + "self_attn.q_proj.weight"));
            double[][] k = linear(xn, w.get(p + "self_attn.k_proj.weight"));
            double[][] v = linear(xn, w.get(p + "self_attn.v_proj.weight"));
            rope(q, hq, d, theta);
            rope(k, hkv, d, theta);
            double[][] att = new double[t][hq * d];
            for (int head = 0; head < hq; head++) {
                int kvh = head / (hq / hkv);
                for (int i = 0; i < t; i++) {
                    double[] s = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        for (int e = 0; e < d; e++) s[j] += q[i][head * d + e] * k[j][kvh * d + e];
                        s[j] /= Math.sqrt(d);
                        max = Math.max(max, s[j]);
                    }
                    double z = 0;
                    for (int j = 0; j <= i; j++) z += Math.exp(s[j] - max);
                    for (int j = 0; j <= i; j++) {
                        double pj = Math.exp(s[j] - max) / z;
                        for (int e = 0; e < d; e++) att[i][head * d + e] += pj * v[j][kvh * d + e];
                    }
                }
            }
            add(x, linear(att, w.get(p + "self_attn.o_proj.weight")));
            xn = rmsnorm(x, w.get(p + "post_attention_layernorm.weight"), c.rmsNormEps());
            double[][] g = linear(xn, w.get(p + "mlp.gate_proj.weight"));
            double[][] u = linear(xn, w.get(p + "mlp.up_proj.weight"));
            for (int i = 0; i < t; i++) for (int j = 0; j < g[i].length; j++) g[i][j] = g[i][j] / (1 + Math.exp(-g[i][j])) * u[i][j];
            add(x, linear(g, w.get(p + "mlp.down_proj.weight")));
        }
        double[][] logits = linear(rmsnorm(x, w.get("model.norm.weight"), c.rmsNormEps()),
                w.containsKey("lm_head.weight") ? w.get("lm_head.weight") : w.get("model.embed_tokens.weight"));
        float[][] out = new float[t][];
        for (int i = 0; i < t; i++) {
            out[i] = new float[logits[i].length];
            for (int j = 0; j < out[i].length; j++) out[i][j] = (float) logits[i][j];
        }
        return out;
    }

    private static double[][] rmsnorm(double[][] x, Tensor w, double eps) {
        double[][] y = new double[x.length][x[0].length];
        for (int i = 0; i < x.length; i++) {
            double ss = 0;
            for (double v : x[i]) ss += v * v;
            double r = 1 / Math.sqrt(ss / x[i].length + eps);
            for (int j = 0; j < x[i].length; j++) y[i][j] = x[i][j] * r * w.getFloat(j);
        }
        return y;
    }

    private static double[][] linear(double[][] x, Tensor w) {
        int out = (int) w.dim(0), in = (int) w.dim(1);
        double[][] y = new double[x.length][out];
        for (int i = 0; i < x.length; i++) for (int o = 0; o < out; o++) {
            double s = 0;
            for (int j = 0; j < in; j++) s += x[i][j] * w.getFloat((long) o * in + j);
            y[i][o] = s;
        }
        return y;
    }

    /** rotate_half: dimension j pairs with j + d/2; position = row index. */
    private static void rope(double[][] x, int heads, int d, double theta) {
        for (int pos = 0; pos < x.length; pos++) for (int hd = 0; hd < heads; hd++) for (int j = 0; j < d / 2; j++) {
            double angle = pos * Math.pow(theta, -2.0 * j / d);
            double a = x[pos][hd * d + j], b = x[pos][hd * d + j + d / 2];
            x[pos][hd * d + j] = a * Math.cos(angle) - b * Math.sin(angle);
            x[pos][hd * d + j + d / 2] = b * Math.cos(angle) + a * Math.sin(angle);
        }
    }

    private static void add(double[][] x, double[][] y) {
        for (int i = 0; i < x.length; i++) for (int j = 0; j < x[i].length; j++) x[i][j] += y[i][j];
    }

    @Test
    void forwardMatchesTheNaiveModelAndDecodingMatchesPrefill(@TempDir Path dir) throws Exception {
        for (boolean tied : new boolean[] {false, true}) {
            Path m = TinyLlama.write(dir.resolve("m" + tied), 7, DType.F32, tied);
            Map<String, Tensor> w = TinyLlama.weights(7, DType.F32, tied);
            LlamaConfig c = LlamaConfig.load(m);
            float[][] expected = naiveLogits(c, w, PROMPT, 10000);
            for (CpuBackend backend : List.of(CpuBackend.reference(), CpuBackend.fast())) {
                try (LlamaModel model = LlamaLoader.load(m, backend)) {
                    // prefill in one call, then in odd chunks, then token by token: the same last logits
                    try (KvCache cache = new KvCache(c, PROMPT.length)) {
                        float[] logits = model.forward(PROMPT, cache, null);
                        TestTensors.assertClose(backend.name() + " prefill", expected[PROMPT.length - 1], logits, 2e-4, 2e-4);
                    }
                    model.setChunkTokens(5);
                    try (KvCache cache = new KvCache(c, PROMPT.length)) {
                        for (int i = 0; i < PROMPT.length; i++) {
                            float[] logits = model.forward(new int[] {PROMPT[i]}, cache, null);
                            TestTensors.assertClose(backend.name() + " decode step " + i, expected[i], logits, 2e-4, 2e-4);
                        }
                    }
                }
            }
            w.values().forEach(Tensor::close);
        }
    }

    @Test
    void ropeThetaOverrideChangesTheModelAsTheEquationsSay(@TempDir Path dir) throws Exception {
        Path m = TinyLlama.write(dir.resolve("m"), 11, DType.F32, false);
        Map<String, Tensor> w = TinyLlama.weights(11, DType.F32, false);
        LlamaConfig c = LlamaConfig.load(m);
        float[][] expected = naiveLogits(c, w, PROMPT, 200e6);
        try (LlamaModel model = LlamaLoader.load(m, LoadSpec.defaults().ropeTheta(200e6));
             KvCache cache = new KvCache(model.config(), PROMPT.length)) {
            TestTensors.assertClose("theta 200M", expected[PROMPT.length - 1], model.forward(PROMPT, cache, null), 2e-4, 2e-4);
        }
        w.values().forEach(Tensor::close);
    }

    @Test
    void bf16CheckpointRunsInPlace(@TempDir Path dir) throws Exception {
        Path m = TinyLlama.write(dir.resolve("m"), 3, DType.BF16, false);
        Map<String, Tensor> w = TinyLlama.weights(3, DType.BF16, false);
        float[][] expected = naiveLogits(LlamaConfig.load(m), w, PROMPT, 10000);
        try (LlamaModel model = LlamaLoader.load(m, CpuBackend.fast()); KvCache cache = new KvCache(model.config(), 40)) {
            assertEquals(DType.BF16, model.output().dtype());
            TestTensors.assertClose("bf16", expected[PROMPT.length - 1], model.forward(PROMPT, cache, null), 2e-4, 2e-4);
        }
        w.values().forEach(Tensor::close);
    }

    @Test
    void greedyGenerationIsDeterministicAndStops(@TempDir Path dir) throws Exception {
        Path m = TinyLlama.write(dir.resolve("m"), 5, DType.F32, false);
        try (LlamaModel model = LlamaLoader.load(m, CpuBackend.fast())) {
            List<Integer> a = Generator.generate(model, PROMPT, GenerationSettings.greedy(12).stopIds(Set.of()));
            List<Integer> b = Generator.generate(model, PROMPT, GenerationSettings.greedy(12).stopIds(Set.of()));
            assertEquals(12, a.size());
            assertEquals(a, b);
            // stopping on the third generated token returns the two before it
            List<Integer> stopped = Generator.generate(model, PROMPT, GenerationSettings.greedy(12).stopIds(Set.of(a.get(2))));
            assertEquals(a.subList(0, a.indexOf(a.get(2))), stopped);
            // by default the model's own eos ids (config.json's [2, 3]) stop it, and more can be added
            assertEquals(Set.of(2, 3), GenerationSettings.greedy(12).stopIdsFor(model));
            assertEquals(Set.of(2, 3, a.get(2)), GenerationSettings.greedy(12).alsoStopAt(a.get(2)).stopIdsFor(model));
            List<Integer> also = Generator.generate(model, PROMPT, GenerationSettings.greedy(12).alsoStopAt(a.get(2)));
            assertTrue(also.size() <= stopped.size() && !also.contains(2) && !also.contains(3), also.toString());
            // a stop id as the very first token ends with nothing, unless min new tokens masks it (HF's min_new_tokens)
            assertEquals(List.of(), Generator.generate(model, PROMPT, GenerationSettings.greedy(12).stopIds(Set.of(a.get(0)))));
            List<Integer> atLeastOne = Generator.generate(model, PROMPT, GenerationSettings.greedy(12).stopIds(Set.of(a.get(0))).minNewTokens(1));
            assertFalse(atLeastOne.isEmpty());
            assertNotEquals(a.get(0), atLeastOne.get(0), "the stop id is masked on the first step");
            assertFalse(atLeastOne.subList(1, atLeastOne.size()).contains(a.get(0)), "and stops again after it");
            List<Integer> s1 = Generator.generate(model, PROMPT, GenerationSettings.greedy(8).sampling(1.0f, 0.9f, 42).stopIds(Set.of()));
            List<Integer> s2 = Generator.generate(model, PROMPT, GenerationSettings.greedy(8).sampling(1.0f, 0.9f, 42).stopIds(Set.of()));
            assertEquals(s1, s2, "same seed, same tokens");
        }
    }

    @Test
    void perplexityMatchesTheNaiveModel(@TempDir Path dir) throws Exception {
        Path m = TinyLlama.write(dir.resolve("m"), 9, DType.F32, false);
        Map<String, Tensor> w = TinyLlama.weights(9, DType.F32, false);
        float[][] logits = naiveLogits(LlamaConfig.load(m), w, PROMPT, 10000);
        double expected = 0;
        for (int i = 0; i + 1 < PROMPT.length; i++) {
            double max = Double.NEGATIVE_INFINITY, z = 0;
            for (float l : logits[i]) max = Math.max(max, l);
            for (float l : logits[i]) z += Math.exp(l - max);
            expected += Math.log(z) + max - logits[i][PROMPT[i + 1]];
        }
        try (LlamaModel model = LlamaLoader.load(m, CpuBackend.fast())) {
            var whole = Perplexity.evaluate(model, List.of(PROMPT), 64, 64);
            assertEquals(PROMPT.length - 1, whole.count());
            assertEquals(expected, whole.sum(), 1e-3);
            // sliding windows score every token once, with less context: same count, different sum
            var sliding = Perplexity.evaluate(model, List.of(PROMPT), 6, 3);
            assertEquals(PROMPT.length - 1, sliding.count());
        }
        w.values().forEach(Tensor::close);
    }

    @Test
    void missingAndMisshapenTensorsAreNamed(@TempDir Path dir) throws Exception {
        Path m = dir.resolve("m");
        Files.createDirectories(m);
        Files.writeString(m.resolve("config.json"), TinyLlama.config(false, null));
        Map<String, Tensor> w = TinyLlama.weights(1, DType.F32, false);
        Tensor removed = w.remove("model.layers.1.mlp.up_proj.weight");
        SafeTensorsWriter.write(m.resolve("model.safetensors"), w, Map.of());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaLoader.load(m, CpuBackend.fast()));
        assertTrue(e.getMessage().contains("model.layers.1.mlp.up_proj.weight"), e.getMessage());

        w.put("model.layers.1.mlp.up_proj.weight", Tensor.allocate(DType.F32, TinyLlama.INTER, TinyLlama.HIDDEN + 1));
        SafeTensorsWriter.write(m.resolve("model.safetensors"), w, Map.of());
        e = assertThrows(IllegalArgumentException.class, () -> LlamaLoader.load(m, CpuBackend.fast()));
        assertTrue(e.getMessage().contains("model.layers.1.mlp.up_proj.weight") && e.getMessage().contains("[48, 33]")
                && e.getMessage().contains("[48, 32]"), e.getMessage());

        w.get("model.layers.1.mlp.up_proj.weight").close();
        w.put("model.layers.1.mlp.up_proj.weight", removed);
        w.put("model.rotary_emb.inv_freq", Tensor.allocate(DType.F32, 4));
        SafeTensorsWriter.write(m.resolve("model.safetensors"), w, Map.of());
        var loaded = LlamaLoader.loadReporting(m, LoadSpec.defaults());
        assertEquals(List.of("model.rotary_emb.inv_freq"), loaded.unexpected());
        loaded.model().close();
        w.values().forEach(Tensor::close);
    }
}
