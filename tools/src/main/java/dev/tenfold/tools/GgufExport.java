package dev.tenfold.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Numerics;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.io.SafeTensorsModel;
import dev.tenfold.llama.HfSchema;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.RopeScaling;
import dev.tenfold.qlora.Merge;
import dev.tenfold.tools.GgufWriter.TensorType;
import dev.tenfold.tools.GgufWriter.ValueType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A Llama model (with its LoRA adapter merged) as the GGUF file llama.cpp runs: the "llama"
 * architecture's metadata, every tensor under llama.cpp's name, and the byte-level BPE tokenizer.
 *
 * <p>llama.cpp rotates the query and key dimensions in adjacent pairs (2i, 2i+1); Hugging Face
 * Llama checkpoints, and tenfold, pair dimension i with i + headDim/2 (rotate_half). The rows of
 * q_proj and k_proj are therefore reordered within each head, row 2i from i and row 2i+1 from
 * i + headDim/2, which makes the two rotations the same computation.
 */
final class GgufExport {
    private GgufExport() {}

    /** The GGUF tensor types of the --type flag and llama.cpp's file type code (general.file_type) for each. */
    enum Type {
        F32(TensorType.F32, 0), F16(TensorType.F16, 1), Q8_0(TensorType.Q8_0, 7), BF16(TensorType.BF16, 32);

        final TensorType tensorType;
        final int fileType;

        Type(TensorType tensorType, int fileType) {
            this.tensorType = tensorType;
            this.fileType = fileType;
        }

        static Type parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "f32", "float32" -> F32;
                case "f16", "float16" -> F16;
                case "bf16", "bfloat16" -> BF16;
                case "q8_0", "q8" -> Q8_0;
                default -> throw new Flags.BadFlag("--type " + s + ": choose bf16, f16, f32 or q8_0");
            };
        }
    }

    /** Llama-3's pre-tokenizer pattern, which llama.cpp implements under the name "llama-bpe". */
    static final String LLAMA3_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /**
     * The chat template tenfold's ChatTemplate renders (Llama-3's, content trimmed), for a tokenizer
     * that has Llama-3's header tokens but no chat_template of its own.
     */
    static final String LLAMA3_CHAT_TEMPLATE = "{{- bos_token }}{%- for message in messages %}"
            + "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
            + "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

    /** llama.cpp's token types. */
    static final int NORMAL = 1, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5;

    /** What was written, for the command's summary. */
    record Summary(int tensors, int contextLength, double ropeTheta, String ropeScaling, List<String> notes) {}

    /**
     * Writes {@code model} (loaded from {@code modelDir}, with any adapter attached) to {@code output}.
     *
     * @param contextLength llama.context_length: the length the model was trained to
     */
    static Summary write(Path modelDir, LlamaModel model, String name, Type type, int contextLength, Path output) throws IOException {
        LlamaConfig c = model.config();
        if (c.quantizationConfig() != null) {
            throw new IllegalArgumentException("--model " + modelDir + " holds quantized (NF4) weights; export needs the dense BF16/F16/F32"
                    + " checkpoint");
        }
        List<String> notes = new ArrayList<>();
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", "llama");
        w.putString("general.name", name);
        w.putUint32("general.alignment", GgufWriter.ALIGNMENT);
        w.putUint32("general.file_type", type.fileType);
        if (type == Type.Q8_0) w.putUint32("general.quantization_version", 2);
        w.putUint32("llama.context_length", contextLength);
        w.putUint32("llama.embedding_length", c.hiddenSize());
        w.putUint32("llama.block_count", c.numLayers());
        w.putUint32("llama.feed_forward_length", c.intermediateSize());
        w.putUint32("llama.attention.head_count", c.numHeads());
        w.putUint32("llama.attention.head_count_kv", c.numKvHeads());
        w.putUint32("llama.attention.key_length", c.headDim());
        w.putUint32("llama.attention.value_length", c.headDim());
        w.putFloat32("llama.attention.layer_norm_rms_epsilon", c.rmsNormEps());
        w.putUint32("llama.rope.dimension_count", c.headDim());
        w.putFloat32("llama.rope.freq_base", c.ropeTheta());
        w.putUint32("llama.vocab_size", c.vocabSize());
        float[] ropeFactors = rope(w, c);

        Tokens tokens = tokenizer(w, modelDir, c, notes);
        if (tokens.size() > c.vocabSize()) {
            throw new IllegalArgumentException("tokenizer.json has " + tokens.size() + " tokens, more than config.json's vocab_size "
                    + c.vocabSize());
        }

        List<Tensor> held = new ArrayList<>(); // tensors read once for the whole write (the embedding)
        try (SafeTensorsModel base = SafeTensorsModel.open(modelDir)) {
            Map<String, String> gguf = ggufNames(c, base);
            for (String hf : base.names()) {
                if (!gguf.containsKey(hf) && !hf.endsWith("rotary_emb.inv_freq")) {
                    throw new IllegalArgumentException(modelDir + ": tensor " + hf + " has no place in llama.cpp's llama architecture");
                }
            }
            // token embedding: a trained one from the adapter replaces the checkpoint's
            addTensor(w, "token_embd.weight", () -> {
                if (model.embeddingParameter() == null) return base.tensor(HfSchema.EMBEDDING);
                return Transfers.onHost(model.backend(), model.embeddingParameter().value(), held);
            }, type, 0, notes);
            if (ropeFactors != null) {
                w.tensor("rope_freqs.weight", new long[] {ropeFactors.length}, TensorType.F32, out -> out.row(ropeFactors, TensorType.F32));
            }
            for (int layerNo = 0; layerNo < c.numLayers(); layerNo++) {
                int i = layerNo;
                String blk = "blk." + i + ".";
                addTensor(w, blk + "attn_norm.weight", () -> base.tensor(HfSchema.attnNorm(i)), type, 0, notes);
                LlamaModel.Layer layer = model.layer(i);
                for (HfSchema.Projection p : HfSchema.Projection.values()) {
                    if (p == HfSchema.Projection.GATE) addTensor(w, blk + "ffn_norm.weight", () -> base.tensor(HfSchema.mlpNorm(i)), type, 0, notes);
                    int permuteHeadDim = p == HfSchema.Projection.Q || p == HfSchema.Projection.K ? c.headDim() : 0;
                    addMerged(w, blk + projectionName(p), base, model, layer, i, p, type, permuteHeadDim, notes);
                }
            }
            addTensor(w, "output_norm.weight", () -> base.tensor(HfSchema.FINAL_NORM), type, 0, notes);
            // a tied model has no output.weight: llama.cpp then uses token_embd for the output too
            if (base.has(HfSchema.LM_HEAD)) addTensor(w, "output.weight", () -> base.tensor(HfSchema.LM_HEAD), type, 0, notes);
            w.write(output);
        } finally {
            held.forEach(Tensor::close);
        }
        return new Summary(w.tensors().size(), contextLength, c.ropeTheta(), c.ropeScaling().toString(), notes);
    }

    /** The HF names the export reads, each with its GGUF name (for the check that nothing is left behind). */
    private static Map<String, String> ggufNames(LlamaConfig c, SafeTensorsModel base) {
        Map<String, String> m = new HashMap<>();
        m.put(HfSchema.EMBEDDING, "token_embd.weight");
        m.put(HfSchema.FINAL_NORM, "output_norm.weight");
        m.put(HfSchema.LM_HEAD, "output.weight");
        for (int i = 0; i < c.numLayers(); i++) {
            m.put(HfSchema.attnNorm(i), "blk." + i + ".attn_norm.weight");
            m.put(HfSchema.mlpNorm(i), "blk." + i + ".ffn_norm.weight");
            for (HfSchema.Projection p : HfSchema.Projection.values()) m.put(p.weight(i), "blk." + i + "." + projectionName(p));
        }
        return m;
    }

    /** llama.cpp's name of a projection's weight within a block. */
    static String projectionName(HfSchema.Projection p) {
        return switch (p) {
            case Q -> "attn_q.weight";
            case K -> "attn_k.weight";
            case V -> "attn_v.weight";
            case O -> "attn_output.weight";
            case GATE -> "ffn_gate.weight";
            case UP -> "ffn_up.weight";
            case DOWN -> "ffn_down.weight";
        };
    }

    /**
     * The RoPE scaling that was trained, in llama.cpp's terms: linear as rope.scaling.type/factor;
     * llama3 (Llama 3.1's per-frequency scaling) as the rope_freqs.weight tensor of divisors, the
     * way llama.cpp runs Llama 3.1, which this returns. Scalings llama.cpp computes otherwise than
     * transformers are refused rather than written approximately.
     */
    private static float[] rope(GgufWriter w, LlamaConfig c) {
        RopeScaling s = c.ropeScaling();
        return switch (s) {
            case RopeScaling.Default d -> null;
            case RopeScaling.Linear l -> {
                w.putString("llama.rope.scaling.type", "linear");
                w.putFloat32("llama.rope.scaling.factor", l.factor());
                yield null;
            }
            case RopeScaling.Llama3 l -> {
                // divisor i = plain inverse frequency / scaled one (llama.cpp divides the angle by it)
                float[] plain = RopeScaling.none().inverseFrequencies(c.headDim(), c.ropeTheta(), 1);
                float[] scaled = s.inverseFrequencies(c.headDim(), c.ropeTheta(), 1);
                float[] factors = new float[plain.length];
                for (int i = 0; i < plain.length; i++) factors[i] = (float) ((double) plain[i] / scaled[i]);
                yield factors;
            }
            default -> throw new IllegalArgumentException("rope_scaling " + s + ": GGUF export writes none, linear or llama3 (llama.cpp"
                    + " computes " + s.type() + " differently from transformers); export the model trained with a RoPE base instead");
        };
    }

    /** A tensor source opened when the file is written. */
    @FunctionalInterface
    interface Source {
        Tensor open() throws IOException;
    }

    /** A checkpoint tensor: 1-D ones (norms) in F32 as llama.cpp keeps them, 2-D ones in the chosen type. */
    private static void addTensor(GgufWriter w, String name, Source source, Type type, int permuteHeadDim, List<String> notes)
            throws IOException {
        Tensor probe = source.open();
        long[] shape = probe.shape();
        TensorType t = tensorType(name, shape, type, notes);
        w.tensor(name, ne(shape), t, out -> writeRows(out, source.open(), t, permuteHeadDim));
    }

    /** A projection weight: merged with its LoRA adapter (in F32, one at a time) when it has one. */
    private static void addMerged(GgufWriter w, String name, SafeTensorsModel base, LlamaModel model, LlamaModel.Layer layer, int i,
                                  HfSchema.Projection p, Type type, int permuteHeadDim, List<String> notes) throws IOException {
        long[] shape = base.tensor(p.weight(i)).shape();
        TensorType t = tensorType(name, shape, type, notes);
        w.tensor(name, ne(shape), t, out -> {
            List<Tensor> temporaries = new ArrayList<>();
            try {
                Tensor merged = Merge.mergedWeight(model.backend(), p.module(i), layer.get(p), DType.F32, temporaries);
                writeRows(out, merged != null ? merged : base.tensor(p.weight(i)), t, permuteHeadDim);
            } finally {
                temporaries.forEach(Tensor::close);
            }
        });
    }

    private static TensorType tensorType(String name, long[] shape, Type type, List<String> notes) {
        if (shape.length == 1) return TensorType.F32;
        if (type == Type.Q8_0 && shape[shape.length - 1] % 32 != 0) {
            notes.add(name + " in F16: its rows of " + shape[shape.length - 1] + " are not whole Q8_0 blocks of 32");
            return TensorType.F16;
        }
        return type.tensorType;
    }

    /** GGUF's ne: the shape reversed, the contiguous dimension first. */
    private static long[] ne(long[] shape) {
        long[] ne = new long[shape.length];
        for (int k = 0; k < shape.length; k++) ne[k] = shape[shape.length - 1 - k];
        return ne;
    }

    /**
     * Writes a host tensor [rows, cols] (or [n]) row by row in {@code type}; with permuteHeadDim
     * &gt; 0 the rows of each head are taken in llama.cpp's pair order (see the class comment).
     */
    static void writeRows(GgufWriter.Out out, Tensor t, TensorType type, int permuteHeadDim) throws IOException {
        long[] shape = t.shape();
        int cols = (int) shape[shape.length - 1];
        long rows = t.numel() / cols;
        if (permuteHeadDim > 0 && rows % permuteHeadDim != 0) {
            throw new IllegalArgumentException(t.describe() + ": rows are not whole heads of " + permuteHeadDim);
        }
        if (t.dtype() != DType.F32 && t.dtype() != DType.BF16 && t.dtype() != DType.F16) {
            throw new IllegalArgumentException(t.describe() + ": export reads F32, BF16 or F16 weights");
        }
        MemorySegment data = t.data();
        float[] row = new float[cols];
        short[] halves = new short[cols];
        for (long r = 0; r < rows; r++) {
            long src = permuteHeadDim > 0 ? hfRow(r, permuteHeadDim) : r;
            // a whole row at a time: about twice as fast as Tensor.getFloat per element
            switch (t.dtype()) {
                case F32 -> MemorySegment.copy(data, Tensor.F32, src * cols * 4, row, 0, cols);
                case BF16 -> {
                    MemorySegment.copy(data, Tensor.I16, src * cols * 2, halves, 0, cols);
                    for (int j = 0; j < cols; j++) row[j] = Numerics.bf16ToFloat(halves[j]);
                }
                default -> {
                    MemorySegment.copy(data, Tensor.I16, src * cols * 2, halves, 0, cols);
                    for (int j = 0; j < cols; j++) row[j] = Numerics.f16ToFloat(halves[j]);
                }
            }
            out.row(row, type);
        }
    }

    /** The Hugging Face row that becomes row r of llama.cpp's pair-ordered layout. */
    static long hfRow(long r, int headDim) {
        long head = r / headDim;
        int k = (int) (r % headDim);
        int half = headDim / 2;
        return head * headDim + (k % 2 == 0 ? k / 2 : half + k / 2);
    }

    // ------------------------------------------------------------------ tokenizer

    /** The tokens written, in id order. */
    record Tokens(List<String> texts) {
        int size() { return texts.size(); }
    }

    /**
     * Llama-3's byte-level BPE from tokenizer.json (and tokenizer_config.json for the special
     * tokens and the chat template): every id up to the model's vocab_size gets a token (ids the
     * tokenizer does not use become unused "[PAD{id}]" tokens, as llama.cpp's converter writes
     * them), the merges as "left right", and the pre-tokenizer llama.cpp knows as "llama-bpe".
     */
    private static Tokens tokenizer(GgufWriter w, Path modelDir, LlamaConfig c, List<String> notes) throws IOException {
        Path file = modelDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("no tokenizer.json in " + modelDir);
        ObjectMapper json = new ObjectMapper();
        JsonNode root = json.readTree(file.toFile());
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText())) {
            throw new IllegalArgumentException(file + ": model type " + model.path("type") + "; GGUF export writes Llama-3's byte-level"
                    + " BPE");
        }
        String pattern = llama3Pattern(root.path("pre_tokenizer"));
        if (pattern == null || !pattern.equals(LLAMA3_PATTERN)) {
            throw new IllegalArgumentException(file + ": the pre-tokenizer is not Llama-3's (a Split on its pattern, then ByteLevel"
                    + " without regex); llama.cpp knows Llama-3's as \"llama-bpe\" and tenfold writes no other");
        }
        Map<Integer, String> byId = new HashMap<>();
        Map<Integer, Integer> typeById = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = model.path("vocab").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            byId.put(e.getValue().asInt(), e.getKey());
            typeById.put(e.getValue().asInt(), NORMAL);
        }
        for (JsonNode a : root.path("added_tokens")) {
            int id = a.path("id").asInt();
            byId.put(id, a.path("content").asText());
            typeById.put(id, a.path("special").asBoolean(false) ? CONTROL : USER_DEFINED);
        }
        int n = Math.max(c.vocabSize(), byId.keySet().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1);
        List<String> texts = new ArrayList<>(n);
        List<Integer> types = new ArrayList<>(n);
        Map<String, Integer> idOf = new LinkedHashMap<>();
        for (int id = 0; id < n; id++) {
            String t = byId.get(id);
            if (t == null) {
                texts.add("[PAD" + id + "]");
                types.add(UNUSED);
            } else {
                texts.add(t);
                types.add(typeById.get(id));
                idOf.putIfAbsent(t, id);
            }
        }
        List<String> merges = new ArrayList<>();
        for (JsonNode m : model.path("merges")) {
            merges.add(m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText());
        }
        w.putString("tokenizer.ggml.model", "gpt2");
        w.putString("tokenizer.ggml.pre", "llama-bpe");
        w.putArray("tokenizer.ggml.tokens", ValueType.STRING, texts);
        w.putArray("tokenizer.ggml.token_type", ValueType.INT32, types);
        w.putArray("tokenizer.ggml.merges", ValueType.STRING, merges);

        JsonNode tc = readJson(modelDir.resolve("tokenizer_config.json"));
        Integer bos = special(tc, "bos_token", idOf, c.bosTokenId());
        Integer eos = special(tc, "eos_token", idOf, c.eosTokenIds().isEmpty() ? null : c.eosTokenIds().get(0));
        Integer eot = idOf.get("<|eot_id|>");
        Integer pad = special(tc, "pad_token", idOf, null);
        if (bos != null) w.putUint32("tokenizer.ggml.bos_token_id", bos);
        if (eos != null) w.putUint32("tokenizer.ggml.eos_token_id", eos);
        if (eot != null) w.putUint32("tokenizer.ggml.eot_token_id", eot);
        if (pad != null) w.putUint32("tokenizer.ggml.padding_token_id", pad);
        // tenfold puts the BOS before every prompt (generate, eval, training), so llama.cpp should too
        w.putBool("tokenizer.ggml.add_bos_token", bos != null);
        w.putBool("tokenizer.ggml.add_eos_token", false);
        String template = chatTemplate(tc);
        if (template == null && idOf.containsKey("<|start_header_id|>") && idOf.containsKey("<|end_header_id|>") && eot != null) {
            template = LLAMA3_CHAT_TEMPLATE;
            notes.add("chat template: Llama-3's, as tenfold's --chat renders it (tokenizer_config.json has none)");
        }
        if (template != null) w.putString("tokenizer.chat_template", template);
        return new Tokens(texts);
    }

    /** The Regex of Llama-3's pre-tokenizer layout (Sequence [Split(Regex), ByteLevel(use_regex false)]), or null. */
    private static String llama3Pattern(JsonNode pre) {
        if (!"Sequence".equals(pre.path("type").asText())) return null;
        JsonNode steps = pre.path("pretokenizers");
        if (steps.size() != 2) return null;
        JsonNode split = steps.get(0), byteLevel = steps.get(1);
        if (!"Split".equals(split.path("type").asText()) || !"ByteLevel".equals(byteLevel.path("type").asText())) return null;
        if (byteLevel.path("use_regex").asBoolean(true)) return null;
        return split.path("pattern").path("Regex").asText(null);
    }

    private static JsonNode readJson(Path file) throws IOException {
        return Files.isRegularFile(file) ? new ObjectMapper().readTree(file.toFile()) : null;
    }

    /** A special token's id: tokenizer_config.json's (a string or {"content": ...}) when it names a token, else the fallback. */
    private static Integer special(JsonNode tc, String field, Map<String, Integer> idOf, Integer fallback) {
        if (tc != null) {
            JsonNode v = tc.path(field);
            String text = v.isTextual() ? v.asText() : v.path("content").isTextual() ? v.path("content").asText() : null;
            if (text != null && idOf.containsKey(text)) return idOf.get(text);
        }
        return fallback;
    }

    /** tokenizer_config.json's chat_template: the string, or the one named "default" of a list. */
    private static String chatTemplate(JsonNode tc) {
        if (tc == null) return null;
        JsonNode t = tc.path("chat_template");
        if (t.isTextual()) return t.asText();
        for (JsonNode named : t) if ("default".equals(named.path("name").asText())) return named.path("template").asText();
        return null;
    }
}
