package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.testing.GpuTests;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `tenfold train --device cuda` as a practitioner runs it: QLoRA on an NF4 base, on a model whose heads (64) the flash
 * kernels take, step for step the loss of the same run on the CPU, a PEFT adapter out, and `generate --device cuda`
 * with that adapter. Skipped without a GPU (failed where one is required, as on the GPU machine).
 */
@Tag("gpu")
class TrainCliGpuTest {
    @TempDir Path dir;

    @Test
    void qloraTrainsOnTheGpuAsOnTheCpuAndTheAdapterGeneratesThere() throws Exception {
        GpuTests.deviceOrSkip();
        Path tokenizer = TinyLlama.writeWithTokenizer(dir.resolve("tok"), 3).resolve("tokenizer.json");
        Path cfg = dir.resolve("hd64.json");
        Files.writeString(cfg, """
                {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                 "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 285, "rms_norm_eps": 1e-5,
                 "rope_theta": 500000.0, "max_position_embeddings": 256, "tie_word_embeddings": false}""");
        Path model = dir.resolve("model");
        CliTest.Result init = CliTest.run("", "init", "--config", cfg.toString(), "--output", model.toString(), "--tokenizer",
                tokenizer.toString());
        assertEquals(0, init.code(), init.err());
        Path data = dir.resolve("train.jsonl");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 6; i++) {
            sb.append("{\"text\": \"hello world, the cat number ").append(i).append(" is ").append(7 * i).append("\"}\n");
        }
        Files.writeString(data, sb.toString());

        Path onCpu = dir.resolve("cpu"), onGpu = dir.resolve("cuda");
        for (Path out : List.of(onCpu, onGpu)) {
            CliTest.Result r = CliTest.run("", "train", "--model", model.toString(), "--data", data.toString(), "--output",
                    out.toString(), "--device", out.getFileName().toString(), "--quantize", "nf4", "--activations", "f32",
                    "--batch-size", "6", "--epochs", "4", "--lr", "1e-2", "--max-length", "64", "--lora-r", "4",
                    "--lora-alpha", "8", "--lora-dropout", "0");
            assertEquals(0, r.code(), out.getFileName() + ": " + r.err());
            for (String f : new String[] {"adapter_config.json", "adapter_model.safetensors", "metrics.jsonl"}) {
                assertTrue(Files.exists(out.resolve(f)), out.getFileName() + " lacks " + f);
            }
        }
        double[] cpu = losses(onCpu), gpu = losses(onGpu);
        assertEquals(4, cpu.length);
        assertEquals(cpu.length, gpu.length);
        // every step sees the same six records: the loss falls by what the adapter learned, the same on both devices
        String both = "cpu " + Arrays.toString(cpu) + ", cuda " + Arrays.toString(gpu);
        for (int s = 0; s < cpu.length; s++) {
            // f32 activations on both; the flash kernels take bf16 operands, the CPU f32 ones
            assertEquals(cpu[s], gpu[s], 5e-3 * Math.abs(cpu[s]), "loss of step " + (s + 1) + ": " + both);
        }
        double cpuDrop = cpu[0] - cpu[3], gpuDrop = gpu[0] - gpu[3];
        assertTrue(cpuDrop > 0, both);
        assertEquals(cpuDrop, gpuDrop, 0.1 * cpuDrop, "what four steps took off the loss: " + both);

        CliTest.Result gen = CliTest.run("", "generate", "--model", model.toString(), "--adapter", onGpu.toString(), "--prompt",
                "hello world, the cat number 3", "--max-new-tokens", "4", "--device", "cuda");
        assertEquals(0, gen.code(), gen.err());
        assertTrue(gen.err().matches("(?s).*adapter .*\\d+ generated.*"), gen.err());
    }

    private static double[] losses(Path out) throws Exception {
        ObjectMapper json = new ObjectMapper();
        return Files.readAllLines(out.resolve("metrics.jsonl")).stream().filter(l -> !l.isBlank()).map(l -> {
            try {
                return json.readTree(l);
            } catch (Exception e) {
                throw new IllegalStateException(l, e);
            }
        }).filter(n -> n.has("loss")).mapToDouble(n -> n.get("loss").asDouble()).toArray();
    }
}
