package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.GenerationSettings;
import dev.tenfold.llama.Generator;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.RopeScaling;
import dev.tenfold.llama.longcontext.Passkey;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.PeftAdapter;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A GGUF from `tenfold export gguf` run by a real llama.cpp (node-llama-cpp's prebuilt binaries,
 * through tools/gguf-check/check.mjs): the demo model with its RoPE base raised 400x and a LoRA
 * adapter merged, a prompt 2.5x its original 256-token context, and the same greedy tokens and text
 * as tenfold's. Skips, saying why, where node or the npm package is missing.
 */
class GgufLlamaCppTest {
    @TempDir static Path dir;
    static Path checkDir;

    /** The demo's RoPE base after extension: 400 x 10,000 (Demo.Settings' multiplier). */
    static final double EXTENDED_THETA = 4e6;

    /** Why the llama.cpp check cannot run here, or null when it can (node and node-llama-cpp found). */
    private static String missing;
    private static boolean looked;

    /** Skips the calling test, with the reason, where node or the npm package is missing. */
    private static synchronized void requireLlamaCpp() throws Exception {
        if (!looked) {
            looked = true;
            Path here = Path.of("").toAbsolutePath();
            checkDir = Files.isDirectory(here.resolve("gguf-check")) ? here.resolve("gguf-check") : here.resolve("tools/gguf-check");
            String node;
            try {
                Process p = new ProcessBuilder("node", "--version").redirectErrorStream(true).start();
                node = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
                p.waitFor(30, TimeUnit.SECONDS);
            } catch (java.io.IOException e) {
                node = null;
            }
            if (node == null) {
                missing = "node is not installed (the llama.cpp check runs llama.cpp through node-llama-cpp; install node 20+, then"
                        + " npm install in tools/gguf-check)";
            } else if (!Files.isDirectory(checkDir.resolve("node_modules/node-llama-cpp"))) {
                missing = "node " + node + " is here but node-llama-cpp is not: run npm install in " + checkDir;
            }
            if (missing != null) System.err.println("GgufLlamaCppTest skipped: " + missing);
        }
        Assumptions.assumeTrue(missing == null, missing);
    }

    /** Runs check.mjs and returns its JSON line. */
    private static JsonNode llamaCpp(Path gguf, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("node", "check.mjs", gguf.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(checkDir.toFile()).redirectError(dir.resolve("node.err").toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "node check.mjs took over 5 minutes");
        assertEquals(0, p.exitValue(), "node check.mjs failed:\n" + out + Files.readString(dir.resolve("node.err")));
        String last = out.strip().lines().reduce((a, b) -> b).orElse("");
        return new ObjectMapper().readTree(last);
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    private static String csv(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }

    private static synchronized Path shippedDemoModel() throws Exception {
        Path model = dir.resolve("demo");
        if (Files.exists(model.resolve("tokenizer.json"))) return model;
        Files.createDirectories(model);
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) {
            try (InputStream in = GgufLlamaCppTest.class.getResourceAsStream("/dev/tenfold/tools/demo/model/" + f)) {
                assertNotNull(in, "the demo model's " + f);
                Files.copy(in, model.resolve(f));
            }
        }
        return model;
    }

    /** The pass-key prompt with the key in the middle: about 660 tokens for the demo's tokenizer (a word is a token). */
    static String prompt() {
        StringBuilder haystack = new StringBuilder(Passkey.INSTRUCTION);
        for (int k = 0; k < 14; k++) haystack.append(' ').append(Passkey.FILLER);
        haystack.append(' ').append(Passkey.needle(47213));
        for (int k = 0; k < 14; k++) haystack.append(' ').append(Passkey.FILLER);
        return haystack + "\n\n" + Passkey.QUESTION + " " + Passkey.ANSWER_PREFIX;
    }

    static final int MAX_NEW = 12;

    /**
     * Exports the model (with flags such as --adapter, --rope-theta, --rope-scaling), runs llama.cpp
     * on the prompt and checks what it read and tokenized; returns llama.cpp's greedy tokens and text
     * beside tenfold's (tokens from the generator that `tenfold generate` runs, text from the command).
     */
    private static void compare(Path model, String type, int agreeing, String... flags) throws Exception {
        Path gguf = dir.resolve("demo-" + type + "-" + Math.abs(Arrays.hashCode(flags)) + ".gguf");
        List<String> args = new ArrayList<>(List.of("export", "gguf", "--model", model.toString(), "--type", type, "--context-length",
                "2560", "--output", gguf.toString()));
        args.addAll(List.of(flags));
        CliTest.Result r = CliTest.run("", args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());

        String prompt = prompt();
        Tokenizer tok = Tokenizer.load(model.resolve("tokenizer.json"));
        int[] textIds = tok.encode(prompt, false);
        int[] ids = GenerateCommand.withBos(tok, textIds);
        assertTrue(ids.length > 2 * 256, "the prompt (" + ids.length + " tokens) goes well past the demo's 256-token context");

        List<String> gen = new ArrayList<>(List.of("generate", "--model", model.toString(), "--prompt", prompt, "--max-new-tokens",
                Integer.toString(MAX_NEW)));
        gen.addAll(List.of(flags));
        CliTest.Result text = CliTest.run("", gen.toArray(String[]::new));
        assertEquals(0, text.code(), text.err());
        List<Integer> tenfold = tenfoldTokens(model, ids, flags);

        JsonNode cpp = llamaCpp(gguf, "--tokens", csv(ids), "--max-new", Integer.toString(MAX_NEW), "--context", "1024", "--text", prompt);
        assertEquals(2560, cpp.get("trainContextSize").asInt(), "llama.cpp's n_ctx_train is the extended context");
        assertEquals("bpe", cpp.get("vocabularyType").asText());
        assertArrayEquals(textIds, ints(cpp.get("tokenized")), "llama.cpp splits the prompt into tenfold's tokens");
        List<Integer> got = Arrays.stream(ints(cpp.get("tokens"))).boxed().toList();
        assertEquals(MAX_NEW, tenfold.size());
        String what = type + " " + String.join(" ", flags);
        if (agreeing == MAX_NEW) {
            assertEquals(tenfold, got, what + ": greedy tokens, llama.cpp against tenfold");
            assertEquals(text.out().strip(), cpp.get("text").asText().strip(), what + ": the text tenfold generate prints");
        } else {
            assertEquals(tenfold.subList(0, agreeing), got.subList(0, Math.min(agreeing, got.size())), what + ": the first tokens");
        }
    }

    /** The ids `tenfold generate` produces for the same flags, from the same loader and generator. */
    private static List<Integer> tenfoldTokens(Path model, int[] ids, String... flags) throws Exception {
        LoadSpec spec = LoadSpec.defaults().backend(CpuBackend.fast());
        Path adapter = null;
        for (int i = 0; i < flags.length; i += 2) {
            switch (flags[i]) {
                case "--adapter" -> adapter = Path.of(flags[i + 1]);
                case "--rope-theta" -> spec = spec.ropeTheta(Double.parseDouble(flags[i + 1]));
                case "--rope-scaling" -> spec = spec.ropeScaling(RopeScaling.parse(flags[i + 1], 256, null));
                default -> throw new IllegalArgumentException(flags[i]);
            }
        }
        if (adapter != null && spec.ropeTheta() == null) spec = spec.ropeTheta(PeftAdapter.readConfig(adapter).ropeTheta());
        try (LlamaModel m = LlamaLoader.load(model, spec)) {
            if (adapter != null) PeftAdapter.load(adapter, m);
            return Generator.generate(m, ids, GenerationSettings.greedy(MAX_NEW));
        }
    }

    /** The extension as the recipe does it: RoPE base raised, a LoRA adapter merged (perturbed, so every weight changes). */
    @Test
    void llamaCppGeneratesTenfoldsTokensBeyondTheOriginalContext() throws Exception {
        requireLlamaCpp();
        Path model = shippedDemoModel();
        Path adapter = dir.resolve("adapter");
        try (LlamaModel m = LlamaLoader.load(model, LoadSpec.defaults().ropeTheta(EXTENDED_THETA).backend(CpuBackend.fast()))) {
            Lora.attach(m, LoraConfig.of(4, 8f).targets("q,k,v,o,gate,up,down").seed(2));
            SplittableRandom rng = new SplittableRandom(6);
            for (Parameter p : m.parameters()) {
                if (!p.name().contains("lora_B")) continue;
                for (long i = 0; i < p.value().numel(); i++) p.value().setFloat(i, (float) (rng.nextDouble() - 0.5) * 0.02f);
            }
            PeftAdapter.save(adapter, m);
        }
        compare(model, "f32", MAX_NEW, "--adapter", adapter.toString());
        // rounded weights: llama.cpp computes with other numbers than tenfold, so only the first tokens (the key's digits) must agree
        compare(model, "bf16", 6, "--adapter", adapter.toString());
        compare(model, "q8_0", 6, "--adapter", adapter.toString());
    }

    /** The other extensions llama.cpp runs as transformers does: linear interpolation and Llama 3.1's per-frequency scaling (rope_freqs). */
    @Test
    void llamaCppRunsTheTrainedRopeScaling() throws Exception {
        requireLlamaCpp();
        Path model = shippedDemoModel();
        compare(model, "f32", MAX_NEW, "--rope-scaling", "{\"rope_type\":\"linear\",\"factor\":10}");
        compare(model, "f32", MAX_NEW, "--rope-theta", "1e5", "--rope-scaling", "{\"rope_type\":\"llama3\",\"factor\":10,"
                + "\"original_max_position_embeddings\":256,\"low_freq_factor\":1,\"high_freq_factor\":4}");
    }

    /** The tiny tokenizer has merges (the demo's has none): llama.cpp applies the exported merges as tenfold does. */
    @Test
    void llamaCppTokenizesWithTheExportedMerges() throws Exception {
        requireLlamaCpp();
        Path tiny = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 8);
        Path gguf = dir.resolve("tiny.gguf");
        CliTest.Result r = CliTest.run("", "export", "gguf", "--model", tiny.toString(), "--output", gguf.toString());
        assertEquals(0, r.code(), r.err());
        Tokenizer tok = Tokenizer.load(tiny.resolve("tokenizer.json"));
        String text = "Hello world! The the theme, in 2024: 12345 items.\n\n  Done<|eot_id|>";
        JsonNode cpp = llamaCpp(gguf, "--text", text);
        assertArrayEquals(tok.encode(text, true), ints(cpp.get("tokenized")), "special tokens parsed, no BOS");
        assertEquals(64, cpp.get("trainContextSize").asInt());
    }
}
