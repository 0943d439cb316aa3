package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.TestTensors;
import dev.tenfold.llama.KvCache;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MergeTest {
    static final int[] PROMPT = {1, 7, 3, 9, 22, 41, 5};

    @Test
    void mergedCheckpointComputesWhatTheAdapterDoes(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 6, DType.BF16, false);
        Path adapter = dir.resolve("adapter"), merged = dir.resolve("merged");
        try (LlamaModel m = LlamaLoader.load(base, LoadSpec.defaults().ropeTheta(2e6))) {
            Lora.attach(m, LoraConfig.of(4, 8f).targets("q,k,v,o,down").trainEmbeddings(true).seed(1));
            SplittableRandom rng = new SplittableRandom(5);
            for (Parameter p : m.parameters()) {
                if (p.name().contains("lora_B")) for (long i = 0; i < p.value().numel(); i++) p.value().setFloat(i, (float) (rng.nextDouble() - 0.5) * 0.2f);
            }
            PeftAdapter.save(adapter, m);
        }
        float[] withAdapter;
        try (LlamaModel m = LlamaLoader.load(base, LoadSpec.defaults().ropeTheta(2e6))) {
            PeftAdapter.Config cfg = PeftAdapter.load(adapter, m);
            assertEquals(2e6, cfg.ropeTheta());
            try (KvCache c = new KvCache(m.config(), PROMPT.length)) {
                withAdapter = m.forward(PROMPT, c, null);
            }
            Merge.write(base, m, cfg.ropeTheta(), merged);
        }
        assertEquals(2e6, LlamaConfig.load(merged).ropeTheta());
        assertTrue(Files.exists(merged.resolve("model.safetensors")));
        try (LlamaModel m = LlamaLoader.load(merged, CpuBackend.fast()); KvCache c = new KvCache(m.config(), PROMPT.length)) {
            // the merged weights are rounded to bf16 once more: close, not equal
            TestTensors.assertClose("merged vs adapter", withAdapter, m.forward(PROMPT, c, null), 0.05, 0.05);
        }
        IllegalArgumentException again = assertThrows(IllegalArgumentException.class, () -> {
            try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
                PeftAdapter.load(adapter, m);
                Merge.write(base, m, null, merged);
            }
        });
        assertTrue(again.getMessage().contains("exists and is not empty"), again.getMessage());
    }

    /** A base in {@code dtype} (optionally with extra config fields) and a trained-looking adapter on q, v and down. */
    private static Path[] baseAndAdapter(Path dir, DType dtype, String configExtra) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 6, dtype, false);
        if (configExtra != null) Files.writeString(base.resolve("config.json"), TinyLlama.config(false, configExtra));
        Path adapter = dir.resolve("adapter");
        try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
            Lora.attach(m, LoraConfig.of(4, 8f).targets("q,v,down").seed(1));
            SplittableRandom rng = new SplittableRandom(5);
            for (Parameter p : m.parameters()) {
                if (p.name().contains("lora_B")) for (long i = 0; i < p.value().numel(); i++) p.value().setFloat(i, (float) (rng.nextDouble() - 0.5) * 0.2f);
            }
            PeftAdapter.save(adapter, m);
        }
        return new Path[] {base, adapter};
    }

    /** Merges with the options and returns the logits of the adapter-on-base model (at rope_theta 2e6). */
    private static float[] merge(Path base, Path adapter, Path out, Merge.Options options) throws Exception {
        try (LlamaModel m = LlamaLoader.load(base, LoadSpec.defaults().ropeTheta(2e6))) {
            PeftAdapter.load(adapter, m);
            float[] logits;
            try (KvCache c = new KvCache(m.config(), PROMPT.length)) {
                logits = m.forward(PROMPT, c, null);
            }
            Merge.write(base, m, out, options);
            return logits;
        }
    }

    private static java.util.Set<DType> dtypesIn(Path model) throws Exception {
        java.util.Set<DType> seen = new java.util.TreeSet<>();
        try (dev.tenfold.engine.io.SafeTensorsModel w = dev.tenfold.engine.io.SafeTensorsModel.open(model)) {
            for (String n : w.names()) seen.add(w.info(n).dtype());
        }
        return seen;
    }

    private static String configField(Path model, String field) throws Exception {
        return new com.fasterxml.jackson.databind.ObjectMapper().readTree(model.resolve("config.json").toFile()).path(field).asText(null);
    }

    @Test
    void keepsTheBasePrecisionOrTheChosenOne(@TempDir Path dir) throws Exception {
        Path[] f32 = baseAndAdapter(dir.resolve("f32"), DType.F32, null);
        Path merged = dir.resolve("merged-f32");
        float[] withAdapter = merge(f32[0], f32[1], merged, new Merge.Options(2e6, null, false, f32[1]));
        assertEquals(java.util.Set.of(DType.F32), dtypesIn(merged), "an F32 base stays F32, every tensor");
        assertEquals("float32", configField(merged, "torch_dtype"));
        try (LlamaModel m = LlamaLoader.load(merged, CpuBackend.fast()); KvCache c = new KvCache(m.config(), PROMPT.length)) {
            // no rounding to bf16 any more: W + s B A in f32 equals the adapter's sum to f32 rounding
            TestTensors.assertClose("f32 merge vs adapter", withAdapter, m.forward(PROMPT, c, null), 1e-4, 1e-4);
        }
        Path asF16 = dir.resolve("merged-f16");
        merge(f32[0], f32[1], asF16, new Merge.Options(2e6, DType.F16, false, f32[1]));
        assertEquals(java.util.Set.of(DType.F16), dtypesIn(asF16));
        assertEquals("float16", configField(asF16, "torch_dtype"));
        try (LlamaModel m = LlamaLoader.load(asF16, CpuBackend.fast()); KvCache c = new KvCache(m.config(), PROMPT.length)) {
            TestTensors.assertClose("f16 merge vs adapter", withAdapter, m.forward(PROMPT, c, null), 0.02, 0.02);
        }
        Path[] bf16 = baseAndAdapter(dir.resolve("bf16"), DType.BF16, null);
        Path asBf16 = dir.resolve("merged-bf16");
        merge(bf16[0], bf16[1], asBf16, new Merge.Options(null, null, false, null));
        assertEquals(java.util.Set.of(DType.BF16), dtypesIn(asBf16));
        assertEquals("bfloat16", configField(asBf16, "torch_dtype"));
        Path bf16AsF32 = dir.resolve("merged-bf16-f32");
        merge(bf16[0], bf16[1], bf16AsF32, new Merge.Options(null, DType.F32, false, null));
        assertEquals(java.util.Set.of(DType.F32), dtypesIn(bf16AsF32));
        assertEquals("float32", configField(bf16AsF32, "torch_dtype"));
    }

    @Test
    void aTransformers5ConfigKeepsItsLayout(@TempDir Path dir) throws Exception {
        String v5 = "\"dtype\": \"float32\", \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0}";
        Path[] in = baseAndAdapter(dir, DType.F32, v5);
        String config = TinyLlama.config(false, v5).replace("\"rope_theta\": 10000.0, ", "");
        Files.writeString(in[0].resolve("config.json"), config); // only rope_parameters, as transformers 5 writes it
        Path merged = dir.resolve("merged");
        merge(in[0], in[1], merged, new Merge.Options(2e6, DType.BF16, false, in[1]));
        var cfg = new com.fasterxml.jackson.databind.ObjectMapper().readTree(merged.resolve("config.json").toFile());
        assertEquals(2e6, cfg.path("rope_parameters").path("rope_theta").asDouble());
        assertFalse(cfg.has("rope_theta"), "no second copy of the RoPE base to disagree with");
        assertEquals("bfloat16", cfg.path("dtype").asText());
        assertFalse(cfg.has("torch_dtype"));
        assertEquals(2e6, LlamaConfig.load(merged).ropeTheta());
    }

    @Test
    void theOutputIsNeverTheAdapterOrTheModelOrAUsersFolder(@TempDir Path dir) throws Exception {
        Path[] in = baseAndAdapter(dir, DType.BF16, null);
        Path base = in[0], adapter = in[1];
        String adapterConfig = Files.readString(adapter.resolve(PeftAdapter.CONFIG));
        for (boolean force : new boolean[] {false, true}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> merge(base, adapter, adapter, new Merge.Options(null, null, force, adapter)));
            assertTrue(e.getMessage().contains("is the adapter folder"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> merge(base, adapter, base, new Merge.Options(null, null, force, adapter)));
            assertTrue(e.getMessage().contains("is the model folder"), e.getMessage());
        }
        assertEquals(adapterConfig, Files.readString(adapter.resolve(PeftAdapter.CONFIG)));
        assertEquals(java.util.Set.of("adapter_config.json", "adapter_model.safetensors"), names(adapter));
        Path users = Files.createDirectories(dir.resolve("users"));
        Files.writeString(users.resolve("notes.txt"), "mine");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Merge.checkOutput(base, users, new Merge.Options(null, null, false, adapter)));
        assertTrue(e.getMessage().contains("exists and is not empty"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> merge(base, adapter, users, new Merge.Options(null, null, false, adapter)));
        assertEquals(java.util.Set.of("notes.txt"), names(users));
        // with force, the model files are replaced and the user's file is kept
        merge(base, adapter, users, new Merge.Options(null, null, true, adapter));
        assertEquals("mine", Files.readString(users.resolve("notes.txt")));
        assertTrue(Files.exists(users.resolve("config.json")));
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Merge.checkOutput(base, file, new Merge.Options(null, null, true, null)))
                .getMessage().contains("is not a folder"));
    }

    private static java.util.Set<String> names(Path dir) throws Exception {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toSet());
        }
    }

    @Test
    void anAdapterHoldingNaNIsRefused(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 6, DType.BF16, false);
        Path adapter = dir.resolve("adapter");
        try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
            Lora.attach(m, LoraConfig.of(4, 8f).targets("q,v").seed(1));
            for (Parameter p : m.parameters()) {
                if (p.name().equals("model.layers.1.self_attn.v_proj.lora_B.weight")) p.value().setFloat(9, Float.NaN);
            }
            PeftAdapter.save(adapter, m);
        }
        try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapter.load(adapter, m));
            // lora_B is [out 16, r 4]: index 9 is row 2, column 1
            assertTrue(e.getMessage().startsWith(adapter.resolve(PeftAdapter.WEIGHTS) + ": tensor "
                    + "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight holds NaN at index 9 [2, 1]"), e.getMessage());
        }
    }

    @Test
    void adapterErrorsNameTheProblem(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 6, DType.F32, false);
        try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapter.load(dir.resolve("none"), m));
            assertTrue(e.getMessage().contains("adapter_config.json"), e.getMessage());
        }
        Path a = Files.createDirectories(dir.resolve("a"));
        Files.writeString(a.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}");
        try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapter.load(a, m));
            assertTrue(e.getMessage().contains("adapter_model.safetensors"), e.getMessage());
        }
    }
}
