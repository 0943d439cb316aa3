package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tenfold plan} as a user runs it, on Llama-3-8B-Instruct's and Llama-3-70B's config.json (no weights): the
 * recipe's targets (80K tokens within 30 GiB; 500K tokens on an 80 GiB card and 1M on a 141 GiB one, each with
 * offloaded checkpoints), the table and its JSON, the search for the longest sequence, and bad flags.
 */
class PlanCliTest {
    static final Path LLAMA3_8B = Path.of("src/test/resources/configs/llama-3-8b-instruct.json");
    static final Path LLAMA3_70B = Path.of("src/test/resources/configs/llama-3-70b-instruct.json");
    static final long GiB = 1L << 30;

    static JsonNode json(String... args) throws Exception {
        String[] all = new String[args.length + 2];
        all[0] = "plan";
        System.arraycopy(args, 0, all, 1, args.length);
        all[all.length - 1] = "--json";
        CliTest.Result r = CliTest.run("", all);
        assertEquals(0, r.code(), r.err());
        return new ObjectMapper().readTree(r.out());
    }

    @Test
    void theRecipeAt80kTokensNeedsUnder30GiBWithOffloadedCheckpoints() throws Exception {
        JsonNode kept = json("--config", LLAMA3_8B.toString(), "--recipe", "llama3-80k");
        JsonNode offloaded = json("--config", LLAMA3_8B.toString(), "--recipe", "llama3-80k", "--offload-checkpoints");
        assertEquals(81920, offloaded.path("tokens").asInt());
        assertEquals("nf4", offloaded.path("base").asText());
        assertEquals(32, offloaded.path("lora_r").asInt());
        assertTrue(offloaded.path("train_embeddings").asBoolean());
        assertEquals("bf16", offloaded.path("activations").asText());
        long need = offloaded.path("device_bytes_needed").asLong();
        assertTrue(need < 30 * GiB, "80K tokens with offload need " + need / (double) GiB + " GiB");
        assertTrue(kept.path("device_bytes_needed").asLong() > 30 * GiB, "without offload the checkpoints alone are 20 GiB: " + kept);
        // the inputs of layers 0..31 (81920 x 4096 BF16 each) wait in pinned host memory
        assertEquals(32L * 81920 * 4096 * 2, offloaded.path("host_bytes").asLong());
        assertEquals(0, offloaded.path("second_step_device_allocations").asLong(), "the second step takes nothing new from the device");
        JsonNode rows = offloaded.path("at_peak_bytes");
        for (String row : new String[] {"weights", "trained parameters and gradients", "optimizer state", "checkpoints", "layer working set"}) {
            assertTrue(rows.path(row).asLong() > 0, row + ": " + rows);
        }
        // AdamW's two moments of the trained embedding (128256 x 4096 F32) and the adapters
        assertTrue(rows.path("optimizer state").asLong() > 2L * 128256 * 4096 * 4, rows.toString());
        assertEquals(2L * 81920 * 4096 * 2, rows.path("checkpoints").asLong(), "two device buffers take turns");
    }

    @Test
    void halfAMillionTokensFitAn80GiBCardAndAMillionA141GiBOne() throws Exception {
        JsonNode h100 = json("--config", LLAMA3_8B.toString(), "--recipe", "llama3-80k", "--offload-checkpoints", "--tokens", "500000");
        assertTrue(h100.path("device_bytes_needed").asLong() <= 80 * GiB, "500K tokens: " + h100);
        JsonNode h200 = json("--config", LLAMA3_8B.toString(), "--recipe", "llama3-80k", "--offload-checkpoints", "--tokens", "1000000");
        assertTrue(h200.path("device_bytes_needed").asLong() <= 141 * GiB, "1M tokens: " + h200);
    }

    @Test
    void theTableSaysWhatHoldsTheMemoryAndTheLongestSequenceIsTheLastThatFits(@TempDir Path dir) throws Exception {
        Path tiny = TinyLlama.write(dir.resolve("tiny"), 3, dev.tenfold.engine.DType.BF16, false);
        // a budget a few hundred tokens long: the search's answer fits and one more token does not
        CliTest.Result r = CliTest.run("", "plan", "--model", tiny.toString(), "--device", "cpu", "--tokens", "64", "--lora-r", "4",
                "--device-memory", "900KiB", "--max-tokens", "5000");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("Memory plan for the cpu: Llama (hidden 32, 2 layers, 4/2 heads of 8, MLP 48, vocab 61)"), r.out());
        assertTrue(r.out().contains("F32 activations, checkpoints on the device"), r.out());
        for (String row : new String[] {"weights", "checkpoints", "layer working set", "peak of the step's host tensors"}) {
            assertTrue(r.out().contains(row), row + " missing:\n" + r.out());
        }
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("The longest trainable sequence: ([0-9,]+) tokens").matcher(r.out());
        assertTrue(m.find(), r.out());
        int longest = Integer.parseInt(m.group(1).replace(",", ""));
        assertTrue(longest > 64 && longest < 5000, r.out());
        JsonNode at = json("--model", tiny.toString(), "--device", "cpu", "--lora-r", "4", "--tokens", Integer.toString(longest));
        JsonNode over = json("--model", tiny.toString(), "--device", "cpu", "--lora-r", "4", "--tokens", Integer.toString(longest + 1));
        assertTrue(at.path("device_bytes_needed").asLong() <= 900 * 1024, at.toString());
        assertTrue(over.path("device_bytes_needed").asLong() > 900 * 1024, over.toString());
    }

    @Test
    void seventyBillionParametersPlanWithoutWeights() throws Exception {
        JsonNode p = json("--config", LLAMA3_70B.toString(), "--recipe", "llama3-80k", "--offload-checkpoints", "--tokens", "16k");
        // 70B in NF4 is about 35 GiB of weights alone
        assertTrue(p.path("at_peak_bytes").path("weights").asLong() > 33 * GiB, p.toString());
        assertEquals(16384, p.path("tokens").asInt());
    }

    @Test
    void anEvaluationPassIsPlannedToo() throws Exception {
        JsonNode p = json("--config", LLAMA3_8B.toString(), "--eval", "--tokens", "8k", "--quantize", "nf4");
        assertEquals("evaluation", p.path("step").asText());
        assertTrue(p.path("at_peak_bytes").path("KV cache").asLong() > 0, p.toString());
    }

    @Test
    void badFlagsAreNamed(@TempDir Path dir) throws Exception {
        CliTest.Result r = CliTest.run("", "plan");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("give one of --config FILE and --model DIR"), r.err());
        r = CliTest.run("", "plan", "--config", LLAMA3_8B.toString(), "--device-memory", "80XB");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--device-memory: \"80XB\" is not a size"), r.err());
        r = CliTest.run("", "plan", "--config", LLAMA3_8B.toString(), "--lora-r", "0");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--lora-r 0: nothing to train"), r.err());
        r = CliTest.run("", "plan", "--config", LLAMA3_8B.toString(), "--activations", "fp8");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--activations fp8: choose bf16 or f32"), r.err());
        r = CliTest.run("", "plan", "--config", dir.resolve("none.json").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("no such file"), r.err());
        Path bad = Files.writeString(dir.resolve("bad.json"), "{\"hidden_size\": -4}");
        r = CliTest.run("", "plan", "--config", bad.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("bad.json: hidden_size"), r.err());
    }

    @Test
    void sizesAreReadAsPeopleWriteThem() {
        assertEquals(80L << 30, PlanCommand.size("--x", "80GiB"));
        assertEquals(141_000_000_000L, PlanCommand.size("--x", "141GB"));
        assertEquals(512L << 20, PlanCommand.size("--x", "512 MiB"));
        assertEquals(1234, PlanCommand.size("--x", "1234"));
        assertEquals((long) (79.6 * (1L << 30)), PlanCommand.size("--x", "79.6GiB"));
        assertThrows(IllegalArgumentException.class, () -> PlanCommand.size("--x", "-1GiB"));
        assertThrows(IllegalArgumentException.class, () -> PlanCommand.size("--x", "2EiB"));
    }
}
