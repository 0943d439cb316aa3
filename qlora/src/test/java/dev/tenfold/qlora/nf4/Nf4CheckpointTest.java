package dev.tenfold.qlora.nf4;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.io.SafeTensorsModel;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.engine.testing.TestTensors;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.KvCache;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Quantization;
import dev.tenfold.llama.testing.TinyLlama;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writing bitsandbytes NF4 checkpoints, loading them (and dense ones, quantized on load), and bad ones. */
class Nf4CheckpointTest {
    @TempDir static Path dir;
    static Path dense;     // a random BF16 TinyLlama
    static Path quantized; // written by Nf4Checkpoint.write

    static final int[] PROMPT = {1, 5, 9, 17, 33, 2, 40, 7, 12, 60, 3};
    static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void writeModels() throws Exception {
        dense = TinyLlama.write(dir.resolve("dense"), 31, DType.BF16, false);
        Files.writeString(dense.resolve("tokenizer.json"), "{\"model\": {}}");
        Files.writeString(dense.resolve("generation_config.json"), "{\"bos_token_id\": 1}");
        List<String> progress = new ArrayList<>();
        Nf4Checkpoint.WriteResult r = Nf4Checkpoint.write(dir.resolve("nf4"), dense,
                new Nf4Checkpoint.WriteOptions(false, Nf4Checkpoint.DEFAULT_MAX_SHARD_BYTES, progress::add));
        quantized = dir.resolve("nf4");
        assertEquals(7 * TinyLlama.LAYERS, r.quantized());
        assertEquals(1, r.weightFiles().size());
        assertTrue(progress.get(0).contains("model.layers.0.self_attn.q_proj.weight"), progress.toString());
    }

    static float[] logits(LlamaModel m) {
        try (KvCache cache = new KvCache(m.config(), PROMPT.length)) {
            return m.forward(PROMPT, cache, null);
        }
    }

    /** Every projection of the model, by module name. */
    static Map<String, Linear> linears(LlamaModel m) {
        Map<String, Linear> out = new LinkedHashMap<>();
        m.mapLinears((name, l) -> {
            out.put(name, l);
            return l;
        });
        return out;
    }

    @Test
    void writtenCheckpointHasTheBitsandbytesLayout() throws Exception {
        JsonNode config = JSON.readTree(quantized.resolve("config.json").toFile());
        JsonNode q = config.get("quantization_config");
        assertEquals("{\"quant_method\":\"bitsandbytes\",\"load_in_4bit\":true,\"bnb_4bit_quant_type\":\"nf4\","
                + "\"bnb_4bit_use_double_quant\":true,\"bnb_4bit_compute_dtype\":\"bfloat16\",\"bnb_4bit_quant_storage\":\"uint8\"}",
                q.toString());
        assertEquals(TinyLlama.HIDDEN, config.get("hidden_size").asInt(), "the rest of config.json is kept");
        assertEquals("{\"model\": {}}", Files.readString(quantized.resolve("tokenizer.json")));
        assertTrue(Files.exists(quantized.resolve("generation_config.json")));
        assertFalse(Files.exists(quantized.resolve("special_tokens_map.json")), "absent side files stay absent");

        try (SafeTensorsModel w = SafeTensorsModel.open(quantized); SafeTensorsModel src = SafeTensorsModel.open(dense)) {
            String p = "model.layers.1.mlp.down_proj.weight"; // [32, 48]: 1536 elements, 24 blocks
            assertEquals("U8[768, 1]", w.tensor(p).describe());
            assertEquals("U8[24]", w.tensor(p + ".absmax").describe());
            assertEquals("F32[16]", w.tensor(p + ".quant_map").describe());
            assertEquals("F32[1]", w.tensor(p + ".nested_absmax").describe());
            assertEquals("F32[256]", w.tensor(p + ".nested_quant_map").describe());
            String json = new String(w.tensor(p + Nf4Checkpoint.QUANT_STATE_SUFFIX).data().toArray(ValueLayout.JAVA_BYTE),
                    StandardCharsets.UTF_8);
            assertTrue(json.startsWith("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [32, 48], "
                    + "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": "), json);
            assertArrayEquals(Nf4.CODE, w.tensor(p + ".quant_map").toFloatArray());
            assertArrayEquals(Nf4.DYNAMIC_MAP, w.tensor(p + ".nested_quant_map").toFloatArray());
            // the stored bytes are what quantizing the source tensor gives
            try (Nf4Tensor expect = Nf4Tensor.quantize(src.tensor(p), true)) {
                assertEquals(-1L, expect.packed().data().mismatch(w.tensor(p).data()));
                assertEquals(-1L, expect.absmax().data().mismatch(w.tensor(p + ".absmax").data()));
                assertEquals(Nf4Checkpoint.quantStateJson(expect), json);
                float offset = (float) JSON.readTree(json).get("nested_offset").asDouble();
                assertEquals(expect.offset(), offset, 0f, "the JSON offset reads back to the same float");
            }
            // embeddings, norms and lm_head are copied bit for bit
            for (String name : List.of("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", "model.layers.0.input_layernorm.weight")) {
                assertEquals(src.tensor(name).describe(), w.tensor(name).describe(), name);
                assertEquals(-1L, src.tensor(name).data().mismatch(w.tensor(name).data()), name);
            }
        }
    }

    @Test
    void quantizedModelMatchesDenseOverDequantizedWeights() throws Exception {
        try (LlamaModel nf4 = LlamaLoader.load(quantized, LoadSpec.defaults().quantization(Quantization.NF4));
             LlamaModel deq = LlamaLoader.load(dense, CpuBackend.fast());
             LlamaModel original = LlamaLoader.load(dense, CpuBackend.fast())) {
            Map<String, Linear> q = linears(nf4);
            for (Linear l : q.values()) assertInstanceOf(Nf4Linear.class, l);
            deq.mapLinears((name, l) -> {
                Tensor w = ((Nf4Linear) q.get(name)).weight().dequantize();
                deq.own(w);
                return new DenseLinear(w);
            });
            float[] a = logits(nf4), b = logits(deq), c = logits(original);
            TestTensors.assertClose("NF4 layers vs dense over the dequantized weights", b, a, 1e-4, 1e-4);
            // Close to the unquantized model too. NF4 moves each weight by about 9% RMS of its
            // magnitude (for uniform and normal weights alike); through two random layers the
            // logits move by under a third, their direction by little.
            Map<String, Linear> orig = linears(original);
            for (Map.Entry<String, Linear> e : q.entrySet()) {
                float[] w = ((DenseLinear) orig.get(e.getKey())).weight().toFloatArray();
                float[] d = ((DenseLinear) linears(deq).get(e.getKey())).weight().toFloatArray();
                assertTrue(relativeError(w, d) < 0.11, e.getKey() + ": relative weight error " + relativeError(w, d));
            }
            double dot = 0, na = 0, nc = 0;
            for (int i = 0; i < c.length; i++) {
                dot += a[i] * (double) c[i];
                na += a[i] * (double) a[i];
                nc += c[i] * (double) c[i];
            }
            assertTrue(relativeError(c, a) < 0.3, "relative logit error " + relativeError(c, a));
            assertTrue(dot / Math.sqrt(na * nc) > 0.95, "logit cosine " + dot / Math.sqrt(na * nc));
        }
    }

    static double relativeError(float[] expected, float[] actual) {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.length; i++) {
            diff += (actual[i] - expected[i]) * (double) (actual[i] - expected[i]);
            norm += expected[i] * (double) expected[i];
        }
        return Math.sqrt(diff / norm);
    }

    @Test
    void quantizingOnLoadEqualsLoadingTheWrittenCheckpoint() throws Exception {
        try (LlamaModel onLoad = LlamaLoader.load(dense, LoadSpec.defaults().quantization(Quantization.NF4));
             LlamaModel written = LlamaLoader.load(quantized, LoadSpec.defaults().quantization(Quantization.NF4))) {
            Map<String, Linear> a = linears(onLoad), b = linears(written);
            for (String name : a.keySet()) {
                assertTrue(((Nf4Linear) a.get(name)).weight().sameContent(((Nf4Linear) b.get(name)).weight()), name);
            }
            assertArrayEquals(logits(onLoad), logits(written));
        }
        LlamaLoader.Loaded loaded = LlamaLoader.loadReporting(quantized, LoadSpec.defaults().quantization(Quantization.NF4));
        try (LlamaModel m = loaded.model()) {
            assertEquals(List.of(), loaded.unexpected(), "every NF4 tensor is consumed");
        }
    }

    @Test
    void singleQuantizedLayoutLoads() throws Exception {
        // The variant without double quantization: F32 absmax, no nested tensors, no nested_* JSON keys.
        Path out = dir.resolve("single");
        Files.createDirectories(out);
        List<AutoCloseable> owned = new ArrayList<>();
        try (SafeTensorsModel src = SafeTensorsModel.open(dense)) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : src.names()) {
                if (name.contains("_proj.")) {
                    Nf4Tensor q = Nf4Tensor.quantize(src.tensor(name), false);
                    owned.add(q);
                    tensors.putAll(Nf4Checkpoint.bitsandbytesTensors(name.substring(0, name.length() - 7), q, owned));
                } else {
                    tensors.put(name, src.tensor(name));
                }
            }
            SafeTensorsWriter.write(out.resolve("model.safetensors"), tensors, null);
        } finally {
            for (AutoCloseable a : owned) a.close();
        }
        JsonNode cfg = JSON.readTree(quantized.resolve("config.json").toFile());
        ((com.fasterxml.jackson.databind.node.ObjectNode) cfg.get("quantization_config")).put("bnb_4bit_use_double_quant", false);
        Files.writeString(out.resolve("config.json"), cfg.toString());
        try (SafeTensorsModel w = SafeTensorsModel.open(out)) {
            String json = new String(w.tensor("model.layers.0.self_attn.q_proj.weight" + Nf4Checkpoint.QUANT_STATE_SUFFIX).data()
                    .toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
            assertEquals("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [32, 32]}", json);
            assertEquals(DType.F32, w.info("model.layers.0.self_attn.q_proj.weight.absmax").dtype());
        }
        try (LlamaModel single = LlamaLoader.load(out, LoadSpec.defaults().quantization(Quantization.NF4));
             LlamaModel onLoad = LlamaLoader.loadReporting(dense, LoadSpec.defaults(),
                     Nf4Checkpoint.factory(false)).model()) {
            for (Linear l : linears(single).values()) assertFalse(((Nf4Linear) l).weight().doubleQuant());
            assertArrayEquals(logits(onLoad), logits(single));
        }
    }

    // ------------------------------------------------------------------ bad checkpoints

    /** A copy of the quantized checkpoint with one tensor replaced (or removed when the editor returns null). */
    static Path corrupt(String name, String tensor, UnaryOperator<Tensor> edit) throws Exception {
        Path out = dir.resolve(name);
        Files.createDirectories(out);
        List<Tensor> made = new ArrayList<>();
        try (SafeTensorsModel src = SafeTensorsModel.open(quantized)) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String n : src.names()) {
                Tensor t = src.tensor(n);
                if (n.equals(tensor)) {
                    t = edit.apply(t);
                    if (t == null) continue;
                    made.add(t);
                }
                tensors.put(n, t);
            }
            SafeTensorsWriter.write(out.resolve("model.safetensors"), tensors, null);
        } finally {
            made.forEach(Tensor::close);
        }
        Files.copy(quantized.resolve("config.json"), out.resolve("config.json"));
        return out;
    }

    static Tensor bytes(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        Tensor t = Tensor.allocate(DType.U8, b.length);
        MemorySegment.copy(b, 0, t.data(), ValueLayout.JAVA_BYTE, 0, b.length);
        return t;
    }

    static String loadError(Path folder) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LlamaLoader.load(folder, LoadSpec.defaults().quantization(Quantization.NF4)).close());
        return e.getMessage();
    }

    static final String Q = "model.layers.0.self_attn.q_proj.weight";
    static final String STATE = Q + Nf4Checkpoint.QUANT_STATE_SUFFIX;

    @Test
    void malformedQuantStateNamesTheTensor() throws Exception {
        String m = loadError(corrupt("bad-json", STATE, t -> bytes("{\"quant_type\": \"nf4\", \"blocksize\": 64,")));
        assertTrue(m.contains(STATE) && m.contains("not valid JSON"), m);

        m = loadError(corrupt("not-object", STATE, t -> bytes("[1, 2]")));
        assertTrue(m.contains(STATE) && m.contains("not a JSON object"), m);

        m = loadError(corrupt("fp4-state", STATE, t -> bytes("{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [32, 32]}")));
        assertTrue(m.contains(STATE) && m.contains("\"fp4\""), m);

        m = loadError(corrupt("blocksize", STATE, t -> bytes("{\"quant_type\": \"nf4\", \"blocksize\": 128, \"dtype\": \"bfloat16\", "
                + "\"shape\": [32, 32], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.1}")));
        assertTrue(m.contains(STATE) && m.contains("blocksize is 128"), m);

        m = loadError(corrupt("no-state", STATE, t -> null));
        assertTrue(m.contains("missing tensor " + STATE), m);
    }

    @Test
    void shapeMismatchNamesTheTensor() throws Exception {
        String m = loadError(corrupt("json-shape", STATE, t -> bytes("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", "
                + "\"shape\": [16, 32], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.1}")));
        assertTrue(m.contains(STATE) && m.contains("[16,32]") && m.contains("[32, 32]"), m);

        m = loadError(corrupt("packed-shape", Q, t -> Tensor.allocate(DType.U8, 100, 1)));
        assertTrue(m.contains("tensor " + Q + ":") && m.contains("U8[100, 1]"), m);

        m = loadError(corrupt("absmax-shape", Q + ".absmax", t -> Tensor.allocate(DType.U8, 15)));
        assertTrue(m.contains(Q + ".absmax") && m.contains("[16]"), m);

        m = loadError(corrupt("absmax-dtype", Q + ".absmax", t -> Tensor.allocate(DType.F32, 16)));
        assertTrue(m.contains(Q + ".absmax") && m.contains("F32") && m.contains("U8"), m);

        m = loadError(corrupt("nested-shape", Q + ".nested_absmax", t -> Tensor.allocate(DType.F32, 2)));
        assertTrue(m.contains(Q + ".nested_absmax"), m);

        m = loadError(corrupt("quant-map", Q + ".quant_map", t -> Tensor.of(new float[16])));
        assertTrue(m.contains(Q + ".quant_map") && m.contains("not the NF4 code"), m);
    }

    @Test
    void nonFiniteValuesAreRefusedNamingTheTensor() throws Exception {
        String m = loadError(corrupt("nan-nested-absmax", Q + ".nested_absmax", t -> {
            Tensor c = t.copy();
            c.setFloat(0, Float.NaN);
            return c;
        }));
        assertTrue(m.startsWith("tensor " + Q + ".nested_absmax holds NaN at index 0 (of 1 elements)"), m);
        m = loadError(corrupt("inf-nested-code", Q + ".nested_quant_map", t -> {
            Tensor c = t.copy();
            c.setFloat(200, Float.POSITIVE_INFINITY);
            return c;
        }));
        assertTrue(m.contains("tensor " + Q + ".nested_quant_map holds +Infinity at index 200"), m);
        // a dense tensor beside the NF4 ones (the embedding) is checked by the loader
        m = loadError(corrupt("nan-embedding", "model.embed_tokens.weight", t -> {
            Tensor c = t.copy();
            c.setFloat(33, Float.NaN);
            return c;
        }));
        assertTrue(m.contains("tensor model.embed_tokens.weight holds NaN at index 33 [1, 1]"), m);
    }

    @Test
    void otherQuantizationsAreRefusedClearly() throws Exception {
        Map<String, String> cases = new HashMap<>();
        cases.put("{\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"fp4\"}", "'fp4'");
        cases.put("{\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true}", "'fp4'"); // transformers' default type
        cases.put("{\"quant_method\": \"bitsandbytes\", \"load_in_8bit\": true}", "8-bit");
        cases.put("{\"quant_method\": \"gptq\", \"bits\": 4}", "'gptq'");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            Path folder = dir.resolve("cfg-" + Integer.toHexString(c.getKey().hashCode()));
            Files.createDirectories(folder);
            Files.copy(quantized.resolve("model.safetensors"), folder.resolve("model.safetensors"));
            Files.writeString(folder.resolve("config.json"), TinyLlama.config(false, "\"quantization_config\": " + c.getKey()));
            String m = loadError(folder);
            assertTrue(m.contains("quantization_config") && m.contains(c.getValue()), m);
        }
        // a quantized checkpoint is read in its format whatever the load spec says (the NF4 provider found by ServiceLoader)
        try (LlamaModel m = LlamaLoader.load(quantized, CpuBackend.fast())) {
            assertInstanceOf(Nf4Linear.class, m.layer(0).q);
        }
    }

    // ------------------------------------------------------------------ writing

    @Test
    void outputFolderRulesAndForce() throws Exception {
        Path out = dir.resolve("out-rules");
        Files.createDirectories(out);
        Files.writeString(out.resolve("notes.txt"), "mine");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Nf4Checkpoint.write(out, dense));
        assertTrue(e.getMessage().contains("not empty") && e.getMessage().contains("force replaces"), e.getMessage());
        assertFalse(Files.exists(out.resolve("config.json")));

        // stale shards from an earlier run are removed by --force so they cannot shadow the new weights
        Files.writeString(out.resolve(SafeTensorsModel.INDEX_FILE), "{\"weight_map\": {}}");
        Files.writeString(out.resolve("model-00001-of-00002.safetensors"), "stale");
        Nf4Checkpoint.write(out, dense, new Nf4Checkpoint.WriteOptions(true, Nf4Checkpoint.DEFAULT_MAX_SHARD_BYTES, null));
        assertFalse(Files.exists(out.resolve(SafeTensorsModel.INDEX_FILE)));
        assertFalse(Files.exists(out.resolve("model-00001-of-00002.safetensors")));
        assertEquals("mine", Files.readString(out.resolve("notes.txt")));
        try (LlamaModel m = LlamaLoader.load(out, LoadSpec.defaults().quantization(Quantization.NF4))) {
            assertEquals(TinyLlama.LAYERS, m.numLayers());
        }

        e = assertThrows(IllegalArgumentException.class, () -> Nf4Checkpoint.write(dense, dense,
                new Nf4Checkpoint.WriteOptions(true, Nf4Checkpoint.DEFAULT_MAX_SHARD_BYTES, null)));
        assertTrue(e.getMessage().contains("is the model folder"), e.getMessage());

        e = assertThrows(IllegalArgumentException.class, () -> Nf4Checkpoint.write(dir.resolve("again"), quantized));
        assertTrue(e.getMessage().contains("already quantized"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("again").resolve("config.json")));
    }

    @Test
    void smallShardsGetAnIndexAndLoadTheSame() throws Exception {
        Path out = dir.resolve("sharded");
        Nf4Checkpoint.WriteResult r = Nf4Checkpoint.write(out, dense, new Nf4Checkpoint.WriteOptions(false, 8000, null));
        assertTrue(r.weightFiles().size() > 2, "several shards: " + r.weightFiles());
        assertTrue(Files.exists(out.resolve(SafeTensorsModel.INDEX_FILE)));
        assertFalse(Files.exists(out.resolve(SafeTensorsModel.SINGLE_FILE)));
        try (LlamaModel a = LlamaLoader.load(out, LoadSpec.defaults().quantization(Quantization.NF4));
             LlamaModel b = LlamaLoader.load(quantized, LoadSpec.defaults().quantization(Quantization.NF4))) {
            assertArrayEquals(logits(b), logits(a));
        }
    }

    @Test
    void failedWriteLeavesNoConfig() throws Exception {
        // a projection with a NaN: quantization fails after the folder was created
        Path bad = dir.resolve("nan-model");
        Files.createDirectories(bad);
        Files.writeString(bad.resolve("config.json"), TinyLlama.config(false, null));
        Map<String, Tensor> w = TinyLlama.weights(5, DType.F32, false);
        try {
            w.get("model.layers.1.mlp.up_proj.weight").setFloat(77, Float.NaN);
            SafeTensorsWriter.write(bad.resolve("model.safetensors"), w, null);
        } finally {
            w.values().forEach(Tensor::close);
        }
        Path out = dir.resolve("nan-out");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Nf4Checkpoint.write(out, bad,
                new Nf4Checkpoint.WriteOptions(false, 6000, null)));
        assertTrue(e.getMessage().contains("model.layers.1.mlp.up_proj.weight") && e.getMessage().contains("NaN"), e.getMessage());
        assertFalse(Files.exists(out.resolve("config.json")), "a failed write never looks like a model");
    }
}
