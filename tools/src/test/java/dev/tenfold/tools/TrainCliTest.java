package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.testing.TinyLlama;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `tenfold train`, `generate --adapter` and `merge` as a user runs them, including a real kill and resume. */
class TrainCliTest {
    @TempDir static Path dir;
    static Path model, data;

    @BeforeAll
    static void setUp() throws Exception {
        prepare(dir);
    }

    /** The tiny model and the data in {@code dir}, for {@link #trainArgs} (the data-parallel CLI test shares them). */
    static void prepare(Path dir) throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 31);
        data = dir.resolve("train.jsonl");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 6; i++) {
            sb.append("{\"conversations\": [{\"role\": \"user\", \"content\": \"what is the cat number ").append(i)
                    .append("?\"}, {\"role\": \"assistant\", \"content\": \"the cat number is ").append(i * 7).append("\"}]}\n");
            sb.append("{\"text\": \"hello world, hello cat ").append(i).append(" times\"}\n");
        }
        Files.writeString(data, sb.toString());
    }

    static String[] trainArgs(Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--model", model.toString(), "--data", data.toString(), "--output",
                out.toString(), "--batch-size", "3", "--epochs", "3", "--lr", "1e-2", "--save-every", "2", "--max-length", "64",
                "--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0.1", "--train-embeddings"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    @Test
    void trainWritesAPeftAdapterThatGenerateAndMergeUse() throws Exception {
        Path out = dir.resolve("run");
        CliTest.Result r = CliTest.run("", trainArgs(out, "--json"));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("step 12/12"), r.err());
        assertTrue(r.out().contains("\"steps\":12"), r.out());
        for (String f : new String[] {"adapter_config.json", "adapter_model.safetensors", "metrics.jsonl"}) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        assertEquals(dev.tenfold.tools.charts.ChartSupport.available(), Files.exists(out.resolve("loss.png")));
        assertTrue(Files.readString(out.resolve("adapter_config.json")).contains("embed_tokens"));
        // the same output again is refused, nothing is overwritten
        byte[] before = Files.readAllBytes(out.resolve("adapter_model.safetensors"));
        CliTest.Result again = CliTest.run("", trainArgs(out));
        assertEquals(1, again.code());
        assertTrue(again.err().contains("already holds a training run") && again.err().contains("--resume"), again.err());
        assertArrayEquals(before, Files.readAllBytes(out.resolve("adapter_model.safetensors")));

        CliTest.Result gen = CliTest.run("", "generate", "--model", model.toString(), "--adapter", out.toString(), "--prompt",
                "what is the cat number 3?", "--chat", "--max-new-tokens", "8");
        assertEquals(0, gen.code(), gen.err());
        assertTrue(gen.err().contains("adapter"), gen.err());
        CliTest.Result merged = CliTest.run("", "merge", "--model", model.toString(), "--adapter", out.toString(), "--output",
                dir.resolve("merged").toString());
        assertEquals(0, merged.code(), merged.err());
        CliTest.Result genMerged = CliTest.run("", "generate", "--model", dir.resolve("merged").toString(), "--prompt",
                "what is the cat number 3?", "--chat", "--max-new-tokens", "8");
        assertEquals(0, genMerged.code(), genMerged.err());
    }

    /** The first step's loss of a run, from its metrics.jsonl. */
    static double firstLoss(Path out) throws Exception {
        String line = Files.readAllLines(out.resolve("metrics.jsonl")).getFirst();
        return new com.fasterxml.jackson.databind.ObjectMapper().readTree(line).get("loss").asDouble();
    }

    @Test
    void packingGivesTheUnpackedLoss() throws Exception {
        // at step 1 LoRA's B is zero, so dropout does not touch the loss: packed and unpacked must agree
        Path plain = dir.resolve("unpacked"), packed = dir.resolve("packed");
        CliTest.Result a = CliTest.run("", trainArgs(plain, "--max-steps", "1"));
        assertEquals(0, a.code(), a.err());
        CliTest.Result b = CliTest.run("", trainArgs(packed, "--max-steps", "1", "--packing"));
        assertEquals(0, b.code(), b.err());
        assertEquals(firstLoss(plain), firstLoss(packed), 1e-6 * firstLoss(plain));
        assertTrue(Files.readString(packed.resolve("trainer_state.json")).contains("\"packing\" : 64"),
                Files.readString(packed.resolve("trainer_state.json")));
    }

    @Test
    void theMemoryFlagsTrainAndOffloadChangesNoBit() throws Exception {
        Path kept = dir.resolve("lean-kept"), offloaded = dir.resolve("lean-offloaded");
        CliTest.Result a = CliTest.run("", trainArgs(kept, "--activations", "bf16", "--mlp-tile", "4", "--max-steps", "2"));
        assertEquals(0, a.code(), a.err());
        CliTest.Result b = CliTest.run("", trainArgs(offloaded, "--activations", "bf16", "--mlp-tile", "4", "--max-steps", "2",
                "--offload-checkpoints"));
        assertEquals(0, b.code(), b.err());
        assertArrayEquals(Files.readAllBytes(kept.resolve("adapter_model.safetensors")),
                Files.readAllBytes(offloaded.resolve("adapter_model.safetensors")), "on the CPU offload is a copy: the same adapter");
        CliTest.Result bad = CliTest.run("", trainArgs(dir.resolve("never-lean"), "--activations", "fp8"));
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--activations fp8: choose bf16 or f32"), bad.err());
        assertFalse(Files.exists(dir.resolve("never-lean")));
    }

    @Test
    void qloraOnNf4BaseWeights() throws Exception {
        Path out = dir.resolve("qlora");
        CliTest.Result r = CliTest.run("", trainArgs(out, "--quantize", "nf4", "--max-steps", "3"));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("NF4"), r.err());
        assertTrue(Files.exists(out.resolve("adapter_model.safetensors")));
        // a bitsandbytes-style NF4 folder is read as NF4 by generate, with the adapter trained on NF4
        Path q = dir.resolve("tiny-nf4");
        CliTest.Result quant = CliTest.run("", "quantize", "--model", model.toString(), "--output", q.toString());
        assertEquals(0, quant.code(), quant.err());
        CliTest.Result gen = CliTest.run("", "generate", "--model", q.toString(), "--adapter", out.toString(), "--prompt", "hello",
                "--max-new-tokens", "4");
        assertEquals(0, gen.code(), gen.err());
        CliTest.Result bad = CliTest.run("", trainArgs(dir.resolve("x"), "--quantize", "int3"));
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--quantize int3"), bad.err());
    }

    @Test
    void initThenPretrainWithFull() throws Exception {
        Path cfg = dir.resolve("small.json");
        Files.writeString(cfg, TinyLlama.config(true, null, 285));
        Path init = dir.resolve("from-scratch");
        CliTest.Result r = CliTest.run("", "init", "--config", cfg.toString(), "--output", init.toString(), "--tokenizer",
                model.resolve("tokenizer.json").toString());
        assertEquals(0, r.code(), r.err());
        Path out = dir.resolve("pretrained");
        CliTest.Result t = CliTest.run("", "train", "--model", init.toString(), "--data", data.toString(), "--output", out.toString(),
                "--full", "--max-steps", "4", "--batch-size", "3", "--lr", "3e-3");
        assertEquals(0, t.code(), t.err());
        assertTrue(Files.exists(out.resolve("config.json")) && Files.exists(out.resolve("model.safetensors")));
        CliTest.Result g = CliTest.run("", "generate", "--model", out.toString(), "--prompt", "hello", "--max-new-tokens", "3");
        assertEquals(0, g.code(), g.err());
        CliTest.Result bad = CliTest.run("", "init", "--config", data.toString(), "--output", dir.resolve("y").toString());
        assertEquals(1, bad.code());
        assertTrue(bad.err().contains("train.jsonl"), bad.err());
    }

    @Test
    void badDataIsRefusedWithItsLineUnlessSkipped() throws Exception {
        Path bad = dir.resolve("bad.jsonl");
        Files.writeString(bad, Files.readString(data) + "{\"conversations\": [{\"role\": \"wizard\", \"content\": \"x\"}]}\n");
        CliTest.Result r = CliTest.run("", "train", "--model", model.toString(), "--data", bad.toString(), "--output",
                dir.resolve("bad-run").toString(), "--max-steps", "1");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("bad.jsonl:13"), r.err());
        assertFalse(Files.exists(dir.resolve("bad-run").resolve("adapter_model.safetensors")));
        CliTest.Result skipped = CliTest.run("", "train", "--model", model.toString(), "--data", bad.toString(), "--output",
                dir.resolve("bad-run").toString(), "--max-steps", "1", "--skip-bad-lines");
        assertEquals(0, skipped.code(), skipped.err());
    }

    @Test
    void aKilledRunResumesToTheSameAdapter() throws Exception {
        Path straight = dir.resolve("straight"), killed = dir.resolve("killed");
        CliTest.Result r = CliTest.run("", trainArgs(straight));
        assertEquals(0, r.code(), r.err());

        // the same run in another JVM, killed (SIGKILL) once a checkpoint is on disk
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(trainArgs(killed, "--step-delay-ms", "300")));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("killed.log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!Files.isDirectory(killed.resolve("checkpoint-4")) && p.isAlive() && System.nanoTime() < deadline) Thread.sleep(20);
        assertTrue(p.isAlive(), "the run ended before it could be killed:\n" + Files.readString(dir.resolve("killed.log")));
        p.destroyForcibly().waitFor();
        assertFalse(Files.exists(killed.resolve("adapter_model.safetensors")), "killed before the end");

        CliTest.Result resumed = CliTest.run("", trainArgs(killed, "--resume", killed.toString()));
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.err().contains("resumed at step"), resumed.err());
        assertArrayEquals(Files.readAllBytes(straight.resolve("adapter_model.safetensors")),
                Files.readAllBytes(killed.resolve("adapter_model.safetensors")), "bitwise identical adapters");
        assertEquals(Files.readAllLines(straight.resolve("metrics.jsonl")).size(), Files.readAllLines(killed.resolve("metrics.jsonl")).size());
        if (dev.tenfold.tools.charts.ChartSupport.available()) assertTrue(new File(killed.toFile(), "loss.png").length() > 0);
    }

    @Test
    void trainRunsInTheGpuBundlesRuntimeWithoutJavaDesktop() throws Exception {
        // the modules tools/bundle.sh links: no java.desktop, so no AWT; loss.png is skipped with a note
        Path out = dir.resolve("no-desktop");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--limit-modules", "java.base,jdk.incubator.vector,jdk.unsupported,java.management,jdk.management,java.logging,java.xml",
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(trainArgs(out, "--max-steps", "2")));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("no-desktop.log").toFile()).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "still running after 120 s");
        String log = Files.readString(dir.resolve("no-desktop.log"));
        assertEquals(0, p.exitValue(), log);
        assertTrue(log.contains("loss.png skipped: this Java runtime has no java.desktop"), log);
        assertTrue(Files.size(out.resolve("adapter_model.safetensors")) > 0);
        assertFalse(Files.exists(out.resolve("loss.png")));
    }

    @Test
    void theRecipeFillsWhatTheFlagsLeaveOpen() throws Exception {
        Path out = dir.resolve("recipe");
        CliTest.Result r = CliTest.run("", "train", "--model", model.toString(), "--data", data.toString(), "--output", out.toString(),
                "--recipe", "llama3-80k", "--lora-r", "4", "--lora-alpha", "8", "--max-steps", "1", "--max-length", "64");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("quantizing the base weights to NF4"), r.err()); // the recipe's NF4
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var adapter = json.readTree(out.resolve("adapter_config.json").toFile());
        assertEquals(4, adapter.get("r").asInt()); // the flag wins
        assertEquals(8.0, adapter.get("lora_alpha").asDouble());
        assertEquals("embed_tokens", adapter.get("modules_to_save").get(0).asText()); // the recipe's
        assertEquals(200e6, adapter.get("tenfold_rope_theta").asDouble());
        assertEquals(4, adapter.get("target_modules").size());
        var state = json.readTree(out.resolve("trainer_state.json").toFile());
        assertEquals(5e-5, state.get("settings").get("lr").asDouble());
        assertEquals(42, state.get("settings").get("seed").asInt()); // --seed's default
        assertEquals(List.of("nf4"), List.of(state.get("model").get("frozen_weights").get(0).asText()));

        CliTest.Result bad = CliTest.run("", "train", "--model", model.toString(), "--data", data.toString(), "--output",
                dir.resolve("never").toString(), "--recipe", "llama2");
        assertEquals(2, bad.code());
        assertTrue(bad.err().startsWith("tenfold train: --recipe: unknown recipe 'llama2' (known: llama3-80k)"), bad.err());
    }
}
