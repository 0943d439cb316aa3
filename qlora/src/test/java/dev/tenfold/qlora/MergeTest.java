package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.TestTensors;
import dev.tenfold.llama.KvCache;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TinyLlama;
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
        try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
            Lora.attach(m, Lora.parseTargets("q,k,v,o,down"), 4, 8f, false, 1);
            m.trainEmbedding();
            SplittableRandom rng = new SplittableRandom(5);
            for (Parameter p : m.parameters()) {
                if (p.name().contains("lora_B")) for (long i = 0; i < p.value().numel(); i++) p.value().setFloat(i, (float) (rng.nextDouble() - 0.5) * 0.2f);
            }
            PeftAdapter.save(adapter, m, new PeftAdapter.Config("base", 4, 8f, 0f, Lora.parseTargets("q,k,v,o,down"), true, false, 2e6));
        }
        float[] withAdapter;
        try (LlamaModel m = LlamaLoader.loadReporting(base, CpuBackend.fast(), new LlamaLoader.Options(2e6, null)).model()) {
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
        assertTrue(again.getMessage().contains("already holds a model"));
    }

    @Test
    void anAdapterHoldingNaNIsRefused(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 6, DType.BF16, false);
        Path adapter = dir.resolve("adapter");
        try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
            Lora.attach(m, Lora.parseTargets("q,v"), 4, 8f, false, 1);
            for (Parameter p : m.parameters()) {
                if (p.name().equals("model.layers.1.self_attn.v_proj.lora_B.weight")) p.value().setFloat(9, Float.NaN);
            }
            PeftAdapter.save(adapter, m, new PeftAdapter.Config("base", 4, 8f, 0f, Lora.parseTargets("q,v"), false, false, null));
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
