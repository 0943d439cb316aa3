package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.io.SafeTensorsModel;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.PeftAdapter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `tenfold export gguf` read back field by field with {@link GgufReader}; the q/k reordering against both RoPE layouts. */
class GgufExportTest {
    @TempDir static Path dir;
    static Path base, adapter;

    static final int HD = TinyLlama.HEAD_DIM;

    @BeforeAll
    static void modelAndAdapter() throws Exception {
        base = TinyLlama.writeWithTokenizer(dir.resolve("base"), 5);
        adapter = dir.resolve("adapter");
        // an adapter on every projection and the embedding, trained with RoPE base 5e5 (the base has 1e4)
        try (LlamaModel m = LlamaLoader.load(base, LoadSpec.defaults().ropeTheta(5e5).backend(CpuBackend.fast()))) {
            Lora.attach(m, LoraConfig.of(4, 8f).targets("q,k,v,o,gate,up,down").trainEmbeddings(true).seed(3));
            SplittableRandom rng = new SplittableRandom(9);
            for (Parameter p : m.parameters()) {
                if (p.name().contains("lora_B") || p.name().contains("embed")) {
                    for (long i = 0; i < p.value().numel(); i++) p.value().setFloat(i, p.value().getFloat(i) + (float) (rng.nextDouble() - 0.5) * 0.1f);
                }
            }
            PeftAdapter.save(adapter, m);
        }
    }

    private static GgufReader export(String type, String... more) throws Exception {
        Path out = dir.resolve(type + more.length + ".gguf");
        List<String> args = new ArrayList<>(List.of("export", "gguf", "--model", base.toString(), "--type", type, "--output", out.toString()));
        args.addAll(List.of(more));
        CliTest.Result r = CliTest.run("", args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        return new GgufReader(out);
    }

    /** The GGUF row order of a q/k weight, written from llama.cpp's converter's description: within each head, row 2i from i, 2i+1 from i + hd/2. */
    private static float[] permuted(float[] hf, int cols) {
        float[] out = new float[hf.length];
        int rows = hf.length / cols;
        for (int h = 0; h < rows / HD; h++) {
            for (int i = 0; i < HD / 2; i++) {
                System.arraycopy(hf, (h * HD + i) * cols, out, (h * HD + 2 * i) * cols, cols);
                System.arraycopy(hf, (h * HD + HD / 2 + i) * cols, out, (h * HD + 2 * i + 1) * cols, cols);
            }
        }
        return out;
    }

    @Test
    void mergedModelReadsBackFieldByField() throws Exception {
        GgufReader g = export("f32", "--adapter", adapter.toString(), "--context-length", "1k", "--name", "tiny");
        // the reference: `tenfold merge` in F32, the q/k rows reordered here independently
        Path merged = dir.resolve("merged");
        CliTest.Result r = CliTest.run("", "merge", "--model", base.toString(), "--adapter", adapter.toString(), "--dtype", "f32", "--output",
                merged.toString());
        assertEquals(0, r.code(), r.err());

        Map<String, Object> expected = new java.util.LinkedHashMap<>();
        expected.put("general.architecture", "llama");
        expected.put("general.name", "tiny");
        expected.put("general.alignment", 32L);
        expected.put("general.file_type", 0L);
        expected.put("llama.context_length", 1024L);
        expected.put("llama.embedding_length", (long) TinyLlama.HIDDEN);
        expected.put("llama.block_count", (long) TinyLlama.LAYERS);
        expected.put("llama.feed_forward_length", (long) TinyLlama.INTER);
        expected.put("llama.attention.head_count", (long) TinyLlama.HEADS);
        expected.put("llama.attention.head_count_kv", (long) TinyLlama.KV_HEADS);
        expected.put("llama.attention.key_length", (long) HD);
        expected.put("llama.attention.value_length", (long) HD);
        expected.put("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        expected.put("llama.rope.dimension_count", (long) HD);
        expected.put("llama.rope.freq_base", 5e5f); // the adapter's, not the base's 1e4
        JsonNode tok = new ObjectMapper().readTree(base.resolve("tokenizer.json").toFile());
        int vocab = new ObjectMapper().readTree(base.resolve("config.json").toFile()).get("vocab_size").asInt();
        expected.put("llama.vocab_size", (long) vocab);
        expected.put("tokenizer.ggml.model", "gpt2");
        expected.put("tokenizer.ggml.pre", "llama-bpe");
        expected.put("tokenizer.ggml.bos_token_id", 1L); // config.json's (no tokenizer_config.json)
        expected.put("tokenizer.ggml.eos_token_id", 2L);
        int eot = -1;
        for (JsonNode a : tok.get("added_tokens")) if (a.get("content").asText().equals("<|eot_id|>")) eot = a.get("id").asInt();
        expected.put("tokenizer.ggml.eot_token_id", (long) eot);
        expected.put("tokenizer.ggml.add_bos_token", true);
        expected.put("tokenizer.ggml.add_eos_token", false);
        expected.put("tokenizer.chat_template", GgufExport.LLAMA3_CHAT_TEMPLATE);
        for (Map.Entry<String, Object> e : expected.entrySet()) assertEquals(e.getValue(), g.value(e.getKey()), e.getKey());
        // the types the specification and llama.cpp read them as
        assertEquals(8, g.metadata.get("general.architecture").type());
        assertEquals(4, g.metadata.get("llama.context_length").type());
        assertEquals(6, g.metadata.get("llama.rope.freq_base").type());
        assertEquals(7, g.metadata.get("tokenizer.ggml.add_bos_token").type());

        // tokens by id, their types, the merges as "left right"
        List<?> tokens = (List<?>) g.value("tokenizer.ggml.tokens"), types = (List<?>) g.value("tokenizer.ggml.token_type");
        assertEquals(8, g.metadata.get("tokenizer.ggml.tokens").elementType());
        assertEquals(5, g.metadata.get("tokenizer.ggml.token_type").elementType());
        assertEquals(vocab, tokens.size());
        assertEquals(vocab, types.size());
        Set<Integer> seen = new HashSet<>();
        for (var it = tok.get("model").get("vocab").fields(); it.hasNext(); ) {
            var e = it.next();
            assertEquals(e.getKey(), tokens.get(e.getValue().asInt()));
            assertEquals(1, types.get(e.getValue().asInt()));
            seen.add(e.getValue().asInt());
        }
        for (JsonNode a : tok.get("added_tokens")) {
            assertEquals(a.get("content").asText(), tokens.get(a.get("id").asInt()));
            assertEquals(a.get("special").asBoolean() ? 3 : 4, types.get(a.get("id").asInt()));
            seen.add(a.get("id").asInt());
        }
        for (int id = 0; id < vocab; id++) {
            if (!seen.contains(id)) {
                assertEquals("[PAD" + id + "]", tokens.get(id));
                assertEquals(5, types.get(id));
            }
        }
        List<?> merges = (List<?>) g.value("tokenizer.ggml.merges");
        JsonNode m = tok.get("model").get("merges");
        assertEquals(m.size(), merges.size());
        assertTrue(m.size() > 0);
        for (int i = 0; i < m.size(); i++) {
            String want = m.get(i).isArray() ? m.get(i).get(0).asText() + " " + m.get(i).get(1).asText() : m.get(i).asText();
            assertEquals(want, merges.get(i));
        }

        // every tensor, under llama.cpp's name, shape reversed, F32 norms, data equal to the merged checkpoint
        try (SafeTensorsModel hf = SafeTensorsModel.open(merged)) {
            List<String> names = new ArrayList<>(List.of("token_embd.weight"));
            Map<String, String> hfName = new java.util.HashMap<>(Map.of("token_embd.weight", "model.embed_tokens.weight",
                    "output_norm.weight", "model.norm.weight", "output.weight", "lm_head.weight"));
            String[][] blk = {{"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
                {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
                {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"}};
            for (int i = 0; i < TinyLlama.LAYERS; i++) {
                for (String[] b : blk) {
                    names.add("blk." + i + "." + b[0] + ".weight");
                    hfName.put("blk." + i + "." + b[0] + ".weight", "model.layers." + i + "." + b[1] + ".weight");
                }
            }
            names.add("output_norm.weight");
            names.add("output.weight");
            assertEquals(names, g.tensors.stream().map(GgufReader.Info::name).toList());
            for (String n : names) {
                var t = hf.tensor(hfName.get(n));
                long[] shape = t.shape();
                GgufReader.Info info = g.info(n);
                assertArrayEquals(shape.length == 1 ? new long[] {shape[0]} : new long[] {shape[1], shape[0]}, info.ne(), n);
                assertEquals(0, info.type(), n);
                float[] want = t.toFloatArray();
                if (n.contains("attn_q") || n.contains("attn_k")) want = permuted(want, (int) shape[1]);
                assertArrayEquals(want, g.floats(n), n);
            }
        }
    }

    @Test
    void eachTypeRoundsAsItsSpecificationSays() throws Exception {
        GgufReader f32 = export("f32");
        assertEquals(1e4f, f32.value("llama.rope.freq_base"));
        CliTest.Result noLength = CliTest.run("", "export", "gguf", "--model", base.toString(), "--adapter", adapter.toString(), "--output",
                dir.resolve("nolength.gguf").toString());
        assertEquals(0, noLength.code(), noLength.err());
        assertTrue(noLength.err().contains("llama.context_length is config.json's 64; give --context-length"), noLength.err());
        assertEquals(64L, f32.value("llama.context_length")); // config.json's max_position_embeddings
        Map<String, long[]> fileTypes = Map.of("bf16", new long[] {32, 30}, "f16", new long[] {1, 1}, "q8_0", new long[] {7, 8});
        for (var e : fileTypes.entrySet()) {
            GgufReader g = export(e.getKey());
            assertEquals(e.getValue()[0], g.value("general.file_type"), e.getKey());
            assertEquals(e.getKey().equals("q8_0"), g.metadata.containsKey("general.quantization_version"));
            for (GgufReader.Info info : g.tensors) {
                float[] want = f32.floats(info.name()), got = g.floats(info.name());
                if (info.ne().length == 1) {
                    assertEquals(0, info.type(), info.name() + ": norms stay F32");
                    assertArrayEquals(want, got);
                    continue;
                }
                // Q8_0 needs rows of whole blocks of 32: ffn_down's 48 columns are written F16 instead
                String kind = e.getKey().equals("q8_0") && info.ne()[0] % 32 != 0 ? "f16" : e.getKey();
                assertEquals(kind.equals("f16") ? 1 : e.getValue()[1], info.type(), info.name());
                for (int i = 0; i < want.length; i++) {
                    float x = want[i];
                    switch (kind) {
                        // the base is BF16, so BF16 is exact; F16 is the nearest F16 value
                        case "bf16" -> assertEquals(x, got[i], info.name());
                        case "f16" -> assertEquals(Float.float16ToFloat(Float.floatToFloat16(x)), got[i], info.name());
                        default -> {
                            float amax = 0;
                            for (int j = i / 32 * 32; j < i / 32 * 32 + 32; j++) amax = Math.max(amax, Math.abs(want[j]));
                            float d = g.q8Scale(info.name(), i / 32);
                            assertEquals(Float.float16ToFloat(Float.floatToFloat16(amax / 127)), d, info.name() + " scale");
                            // each int8 is the rounded x / (amax / 127): within half a step (plus the F16 rounding of the scale)
                            assertEquals(x, got[i], d * 0.5f + Math.abs(x) * 1e-3f, info.name() + "[" + i + "]");
                        }
                    }
                }
            }
        }
    }

    @Test
    void ropeScalingAsLlamaCppReadsIt() throws Exception {
        GgufReader linear = export("f32", "--rope-scaling", "{\"rope_type\":\"linear\",\"factor\":4}");
        assertEquals("linear", linear.value("llama.rope.scaling.type"));
        assertEquals(4f, linear.value("llama.rope.scaling.factor"));
        assertFalse(linear.tensors.stream().anyMatch(t -> t.name().equals("rope_freqs.weight")));

        GgufReader llama3 = export("bf16", "--rope-scaling", "{\"rope_type\":\"llama3\",\"factor\":8,\"original_max_position_embeddings\":16,"
                + "\"low_freq_factor\":1,\"high_freq_factor\":4}");
        assertFalse(llama3.metadata.containsKey("llama.rope.scaling.type"));
        GgufReader.Info f = llama3.info("rope_freqs.weight");
        assertArrayEquals(new long[] {HD / 2}, f.ne());
        assertEquals(0, f.type());
        // llama.cpp divides each angle by its factor: 1 for high frequencies, the factor for low ones, a blend between
        float[] factors = llama3.floats("rope_freqs.weight");
        for (int i = 0; i < HD / 2; i++) {
            double inv = Math.pow(1e4, -2.0 * i / HD), wavelength = 2 * Math.PI / inv;
            double want = wavelength < 16 / 4.0 ? 1 : wavelength > 16 / 1.0 ? 8 : Double.NaN;
            if (!Double.isNaN(want)) assertEquals(want, factors[i], 1e-5 * want, "factor " + i);
            else assertTrue(factors[i] > 1 && factors[i] < 8, "factor " + i + " " + factors[i]);
        }

        CliTest.Result r = CliTest.run("", "export", "gguf", "--model", base.toString(), "--output", dir.resolve("yarn.gguf").toString(),
                "--rope-scaling", "{\"rope_type\":\"yarn\",\"factor\":4,\"original_max_position_embeddings\":16}");
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("rope_scaling yarn") && r.err().contains("GGUF export writes none, linear or llama3"), r.err());
        assertFalse(Files.exists(dir.resolve("yarn.gguf")));
    }

    /** A Llama-3-Instruct-like folder: tokenizer_config.json names the special tokens and carries the chat template. */
    @Test
    void specialTokensAndTemplateFromTokenizerConfig() throws Exception {
        Path instruct = TinyLlama.writeWithTokenizer(dir.resolve("instruct"), 5);
        String template = "{% for m in messages %}{{ m['content'] }}{% endfor %}";
        Files.writeString(instruct.resolve("tokenizer_config.json"), "{\"bos_token\": \"<|begin_of_text|>\", \"eos_token\": {\"content\":"
                + " \"<|eot_id|>\"}, \"pad_token\": \"<|end_of_text|>\", \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"},"
                + " {\"name\": \"default\", \"template\": \"" + template + "\"}]}");
        Path out = dir.resolve("instruct.gguf");
        CliTest.Result r = CliTest.run("", "export", "gguf", "--model", instruct.toString(), "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        GgufReader g = new GgufReader(out);
        Map<String, Integer> id = new java.util.HashMap<>();
        for (JsonNode a : new ObjectMapper().readTree(instruct.resolve("tokenizer.json").toFile()).get("added_tokens")) {
            id.put(a.get("content").asText(), a.get("id").asInt());
        }
        assertEquals((long) id.get("<|begin_of_text|>"), g.value("tokenizer.ggml.bos_token_id"));
        assertEquals((long) id.get("<|eot_id|>"), g.value("tokenizer.ggml.eos_token_id"));
        assertEquals((long) id.get("<|eot_id|>"), g.value("tokenizer.ggml.eot_token_id"));
        assertEquals((long) id.get("<|end_of_text|>"), g.value("tokenizer.ggml.padding_token_id"));
        assertEquals(template, g.value("tokenizer.chat_template"));
    }

    @Test
    void badFlagsAreOneLineAndExitTwo() {
        String out = dir.resolve("bad.gguf").toString();
        String[][] cases = {
            {"--type", "q4_k", "--output", out}, {"--output", dir.resolve("bad.bin").toString()},
            {"--context-length", "0", "--output", out}, {"--context-length", "lots", "--output", out},
            {"--output", dir.resolve("no/such/folder/x.gguf").toString()}, {}, {"--device", "cuda", "--output", out},
        };
        String[] needles = {"--type q4_k: choose bf16, f16, f32 or q8_0", "--output", "--context-length", "--context-length", "does not exist",
            "--output", "--device cuda: export runs on the CPU"};
        for (int k = 0; k < cases.length; k++) {
            List<String> args = new ArrayList<>(List.of("export", "gguf", "--model", base.toString()));
            args.addAll(List.of(cases[k]));
            CliTest.Result r = CliTest.run("", args.toArray(String[]::new));
            assertEquals(2, r.code(), String.join(" ", cases[k]) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().startsWith("tenfold export gguf: ") && r.err().contains(needles[k]), r.err());
        }
        assertFalse(Files.exists(dir.resolve("bad.gguf")));
        CliTest.Result r = CliTest.run("", "export");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("gguf"), r.err());
    }

    @Test
    void refusesATokenizerLlamaCppWouldSplitDifferently() throws Exception {
        Path other = TinyLlama.writeWithTokenizer(dir.resolve("other"), 5);
        String json = Files.readString(other.resolve("tokenizer.json")).replace("\\\\p{N}{1,3}", "\\\\p{N}+");
        Files.writeString(other.resolve("tokenizer.json"), json);
        CliTest.Result r = CliTest.run("", "export", "gguf", "--model", other.toString(), "--output", dir.resolve("other.gguf").toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("the pre-tokenizer is not Llama-3's"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    /**
     * Why q and k are reordered: llama.cpp's RoPE (adjacent pairs 2i, 2i+1) applied to the reordered
     * vector gives the reordered result of Hugging Face's RoPE (pairs i, i + d/2), so every q.k in
     * attention is the same number.
     */
    @Test
    void reorderedRowsTurnRotateHalfIntoAdjacentPairs() {
        int d = 16;
        SplittableRandom rng = new SplittableRandom(4);
        double[] x = new double[d], inv = new double[d / 2];
        for (int i = 0; i < d; i++) x[i] = rng.nextDouble() - 0.5;
        for (int i = 0; i < d / 2; i++) inv[i] = Math.pow(5e5, -2.0 * i / d);
        int pos = 777;
        double[] hf = new double[d]; // rotate_half: x*cos + rotate_half(x)*sin, rotate_half(x) = (-x2, x1)
        for (int i = 0; i < d / 2; i++) {
            double a = pos * inv[i], c = Math.cos(a), s = Math.sin(a);
            hf[i] = x[i] * c - x[i + d / 2] * s;
            hf[i + d / 2] = x[i + d / 2] * c + x[i] * s;
        }
        double[] reordered = new double[d];
        for (int r = 0; r < d; r++) reordered[r] = x[(int) GgufExport.hfRow(r, d)];
        double[] cpp = new double[d]; // ggml's rope, mode 0: theta_i = pos * base^(-2i/d) on (2i, 2i+1)
        for (int i = 0; i < d / 2; i++) {
            double a = pos * inv[i], c = Math.cos(a), s = Math.sin(a);
            cpp[2 * i] = reordered[2 * i] * c - reordered[2 * i + 1] * s;
            cpp[2 * i + 1] = reordered[2 * i] * s + reordered[2 * i + 1] * c;
        }
        for (int r = 0; r < d; r++) assertEquals(hf[(int) GgufExport.hfRow(r, d)], cpp[r], 1e-15, "row " + r);
        // and rows of other heads keep their head
        assertEquals(3 * d + d / 2 + 1, GgufExport.hfRow(3 * d + 3, d));
    }
}
