package dev.tenfold.qlora.nf4;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.FiniteScan;
import dev.tenfold.engine.io.SafeTensorsModel;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.engine.io.TensorInfo;
import dev.tenfold.llama.HfSchema;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.Quantization;
import dev.tenfold.llama.QuantizedLinears;
import dev.tenfold.qlora.ModelFolder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * bitsandbytes NF4 checkpoints: loading them (and quantizing dense ones on load) through
 * {@link LlamaLoader}, and writing them.
 *
 * <p>A quantized projection P (e.g. {@code model.layers.0.self_attn.q_proj}) is stored as
 * <ul>
 *   <li>{@code P.weight}: U8 [numel/2, 1], the packed codes;</li>
 *   <li>{@code P.weight.absmax}: U8 [blocks] (double quantization) or F32 [blocks];</li>
 *   <li>{@code P.weight.quant_map}: F32 [16], the NF4 codebook;</li>
 *   <li>{@code P.weight.nested_absmax}: F32 [ceil(blocks/256)] and {@code P.weight.nested_quant_map}:
 *       F32 [256] (double quantization only);</li>
 *   <li>{@code P.weight.quant_state.bitsandbytes__nf4}: U8, the bytes of a JSON object
 *       ({@code json.dumps} of quant_type, blocksize, dtype, shape and, when nested,
 *       nested_blocksize, nested_dtype, nested_offset).</li>
 * </ul>
 * config.json carries {@code quantization_config}; embeddings, norms and lm_head stay dense.
 */
public final class Nf4Checkpoint {
    private Nf4Checkpoint() {}

    public static final String QUANT_STATE_SUFFIX = ".quant_state.bitsandbytes__nf4";
    private static final String FP4_STATE_SUFFIX = ".quant_state.bitsandbytes__fp4";
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY);
    /** Largest quant_state JSON we read: the real ones are about 200 bytes. */
    private static final long MAX_STATE_BYTES = 1 << 16;
    /** Hugging Face's default shard limit for save_pretrained ("5GB"). */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

    /** The projections QLoRA quantizes (every Linear of a Llama decoder layer). */
    private static final Pattern PROJECTION = HfSchema.PROJECTION_WEIGHT;

    // ================================================================== loading

    /** Loads NF4 projections (double-quantizing dense ones on load, as QLoRA does). */
    public static final LlamaLoader.LinearFactory FACTORY = factory(true);

    /**
     * A LinearFactory for {@link LlamaLoader}: a projection stored in bitsandbytes' layout is read
     * as it is (views into the mapped checkpoint); a dense one (BF16, F16, F32) is quantized on
     * load, with or without double quantization.
     */
    public static LlamaLoader.LinearFactory factory(boolean doubleQuantOnLoad) {
        return new LlamaLoader.LinearFactory() {
            @Override
            public Linear create(String module, long out, long in, SafeTensorsModel weights, Set<String> used,
                                 List<AutoCloseable> owned) {
                String p = module + ".weight";
                if (isQuantized(weights, p)) return new Nf4Linear(read(weights, module, out, in, used));
                Tensor dense = new LlamaLoader.WeightReader(weights, used, owned).fetch(p, out, in);
                Nf4Tensor q;
                try {
                    q = Nf4Tensor.quantize(dense, doubleQuantOnLoad);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("tensor " + p + ": " + e.getMessage(), e);
                }
                owned.add(q);
                return new Nf4Linear(q);
            }

        };
    }

    /** NF4 for {@link LlamaLoader} (found through ServiceLoader: {@code LoadSpec.quantization(Quantization.NF4)}). */
    public static final class Provider implements QuantizedLinears {
        /** For ServiceLoader. */
        public Provider() {}

        @Override public Quantization quantization() { return Quantization.NF4; }

        @Override public LlamaLoader.LinearFactory linears(Map<String, Object> quantizationConfig) {
            checkQuantizationConfig(quantizationConfig);
            return FACTORY;
        }
    }

    /**
     * Checks a config.json quantization_config: none (a dense checkpoint) or bitsandbytes 4-bit
     * NF4 with uint8 storage. Anything else (FP4, 8-bit, another method) is an error that says so.
     */
    static void checkQuantizationConfig(Map<String, Object> qc) {
        if (qc == null) return;
        String where = "config.json quantization_config: ";
        // Old transformers versions wrote no quant_method; their configs are bitsandbytes ones.
        String method = text(qc, "quant_method", "bitsandbytes");
        if (!method.equals("bitsandbytes")) {
            throw new IllegalArgumentException(where + "quant_method '" + method + "' is not supported; tenfold reads bitsandbytes NF4 "
                    + "checkpoints (or dense ones, which it quantizes on load)");
        }
        if (Boolean.TRUE.equals(qc.get("load_in_8bit"))) {
            throw new IllegalArgumentException(where + "8-bit (LLM.int8) bitsandbytes checkpoints are not supported; "
                    + "use the dense checkpoint or an NF4 one");
        }
        if (!Boolean.TRUE.equals(qc.get("load_in_4bit"))) {
            throw new IllegalArgumentException(where + "load_in_4bit is not true; tenfold reads 4-bit NF4 bitsandbytes checkpoints");
        }
        // transformers' BitsAndBytesConfig defaults bnb_4bit_quant_type to fp4
        String type = text(qc, "bnb_4bit_quant_type", "fp4");
        if (!type.equals("nf4")) {
            throw new IllegalArgumentException(where + "bnb_4bit_quant_type '" + type + "' is not supported; tenfold reads NF4 only");
        }
        String storage = text(qc, "bnb_4bit_quant_storage", "uint8");
        if (!storage.equals("uint8")) {
            throw new IllegalArgumentException(where + "bnb_4bit_quant_storage '" + storage + "' is not supported (only uint8)");
        }
    }

    private static String text(Map<String, Object> o, String key, String dflt) {
        Object v = o.get(key);
        return v == null ? dflt : v.toString();
    }

    private static boolean isQuantized(SafeTensorsModel w, String p) {
        return w.has(p + QUANT_STATE_SUFFIX) || w.has(p + FP4_STATE_SUFFIX) || w.has(p + ".absmax")
                || (w.has(p) && w.info(p).dtype() == DType.U8);
    }

    /**
     * Reads one bitsandbytes-quantized projection (views into the mapped checkpoint), checking
     * every tensor and the quant_state JSON against the [out, in] that config.json implies.
     * Errors name the tensor at fault.
     */
    public static Nf4Tensor read(SafeTensorsModel w, String module, long out, long in, Set<String> used) {
        String p = module + ".weight";
        if (w.has(p + FP4_STATE_SUFFIX)) {
            throw new IllegalArgumentException("tensor " + p + FP4_STATE_SUFFIX + ": FP4 quantization is not supported; tenfold reads NF4 only");
        }
        String stateName = p + QUANT_STATE_SUFFIX;
        JsonNode state = readState(w, stateName);

        String type = state.path("quant_type").asText(null);
        if (!"nf4".equals(type)) fail(stateName, "quant_type is " + state.get("quant_type") + ", expected \"nf4\"");
        if (!state.path("blocksize").isIntegralNumber() || state.get("blocksize").asLong() != Nf4.BLOCK) {
            fail(stateName, "blocksize is " + state.get("blocksize") + "; tenfold reads blocksize " + Nf4.BLOCK + " only");
        }
        JsonNode shape = state.get("shape");
        if (shape == null || !shape.isArray() || shape.size() != 2 || !shape.get(0).isIntegralNumber() || !shape.get(1).isIntegralNumber()) {
            fail(stateName, "shape is " + shape + ", expected [out, in]");
        }
        if (shape.get(0).asLong() != out || shape.get(1).asLong() != in) {
            fail(stateName, "shape is " + shape + " but config.json implies [" + out + ", " + in + "]");
        }
        DType source = sourceDtype(stateName, state.get("dtype"));
        boolean nested = state.has("nested_offset") || state.has("nested_blocksize") || state.has("nested_dtype");

        long numel = out * in;
        if (numel % Nf4.BLOCK != 0) fail(p, "[" + out + ", " + in + "] is not a whole number of " + Nf4.BLOCK + "-element blocks");
        long blocks = numel / Nf4.BLOCK;

        Tensor packed = tensor(w, p, DType.U8);
        long[] ps = packed.shape();
        boolean packedShapeOk = packed.numel() == numel / 2 && (ps.length == 1 || ps.length == 2 && ps[1] == 1);
        if (!packedShapeOk) fail(p, "packed weight is " + packed.describe() + ", expected U8[" + numel / 2 + ", 1] for [" + out + ", " + in + "]");

        Tensor quantMap = tensor(w, p + ".quant_map", DType.F32);
        checkShape(p + ".quant_map", quantMap, 16);
        for (int i = 0; i < 16; i++) {
            float v = quantMap.getFloat(i);
            if (!(Math.abs(v - Nf4.CODE[i]) <= 1e-6f)) {
                fail(p + ".quant_map", "entry " + i + " is " + v + ", not the NF4 code " + Nf4.CODE[i]);
            }
        }
        Tensor absmax;
        Tensor nestedAbsmax = null;
        float[] nestedCode = null;
        float offset = 0f;
        if (!nested) {
            for (String extra : new String[] {".nested_absmax", ".nested_quant_map"}) {
                if (w.has(p + extra)) fail(stateName, "has no nested_* entries but the checkpoint holds " + p + extra);
            }
            absmax = tensor(w, p + ".absmax", DType.F32);
            checkShape(p + ".absmax", absmax, blocks);
            FiniteScan.requireFinite("tensor " + p + ".absmax", absmax);
        } else {
            if (!state.path("nested_blocksize").isIntegralNumber() || state.get("nested_blocksize").asLong() != Nf4.NESTED_BLOCK) {
                fail(stateName, "nested_blocksize is " + state.get("nested_blocksize") + "; tenfold reads " + Nf4.NESTED_BLOCK + " only");
            }
            if (!"float32".equals(state.path("nested_dtype").asText(null))) {
                fail(stateName, "nested_dtype is " + state.get("nested_dtype") + ", expected \"float32\"");
            }
            JsonNode off = state.get("nested_offset");
            if (off == null || !off.isNumber() || !Double.isFinite(off.asDouble())) {
                fail(stateName, "nested_offset is " + off + ", expected a finite number");
            }
            offset = (float) off.asDouble(); // the JSON holds a float32 value printed as a double
            absmax = tensor(w, p + ".absmax", DType.U8);
            checkShape(p + ".absmax", absmax, blocks);
            nestedAbsmax = tensor(w, p + ".nested_absmax", DType.F32);
            checkShape(p + ".nested_absmax", nestedAbsmax, (blocks + Nf4.NESTED_BLOCK - 1) / Nf4.NESTED_BLOCK);
            FiniteScan.requireFinite("tensor " + p + ".nested_absmax", nestedAbsmax);
            Tensor code = tensor(w, p + ".nested_quant_map", DType.F32);
            checkShape(p + ".nested_quant_map", code, 256);
            FiniteScan.requireFinite("tensor " + p + ".nested_quant_map", code);
            nestedCode = code.toFloatArray();
            used.add(p + ".nested_absmax");
            used.add(p + ".nested_quant_map");
        }
        used.add(p);
        used.add(p + ".absmax");
        used.add(p + ".quant_map");
        used.add(stateName);
        try {
            return Nf4Tensor.of(out, in, packed, absmax, nestedAbsmax, nestedCode, offset, source);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("tensor " + p + ": " + e.getMessage(), e);
        }
    }

    private static JsonNode readState(SafeTensorsModel w, String name) {
        if (!w.has(name)) {
            throw new IllegalArgumentException("checkpoint is missing tensor " + name
                    + " (the quant_state of a bitsandbytes NF4 projection)");
        }
        Tensor t = w.tensor(name);
        if (t.dtype() != DType.U8 || t.rank() != 1) fail(name, "quant_state must be U8 bytes of JSON, got " + t.describe());
        if (t.numel() > MAX_STATE_BYTES) fail(name, "quant_state is " + t.numel() + " bytes; that is not a quant_state");
        byte[] bytes = t.data().toArray(ValueLayout.JAVA_BYTE);
        JsonNode node;
        try {
            node = JSON.readTree(bytes);
        } catch (JacksonException e) {
            throw new IllegalArgumentException("tensor " + name + ": quant_state is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (node == null || !node.isObject()) fail(name, "quant_state is not a JSON object");
        return node;
    }

    private static DType sourceDtype(String name, JsonNode dtype) {
        String s = dtype == null ? null : dtype.asText(null);
        if (s == null) fail(name, "quant_state has no dtype");
        return switch (s) {
            case "bfloat16" -> DType.BF16;
            case "float16" -> DType.F16;
            case "float32" -> DType.F32;
            default -> throw new IllegalArgumentException("tensor " + name + ": quant_state dtype '" + s
                    + "' is not one of bfloat16, float16, float32");
        };
    }

    private static Tensor tensor(SafeTensorsModel w, String name, DType dtype) {
        if (!w.has(name)) throw new IllegalArgumentException("checkpoint is missing tensor " + name + " (part of a bitsandbytes NF4 projection)");
        TensorInfo info = w.info(name);
        if (info.dtype() != dtype) fail(name, "has dtype " + info.dtype() + ", expected " + dtype);
        return w.tensor(name);
    }

    private static void checkShape(String name, Tensor t, long n) {
        if (t.rank() != 1 || t.numel() != n) fail(name, "has shape " + Arrays.toString(t.shape()) + ", expected [" + n + "]");
    }

    private static void fail(String tensor, String message) {
        throw new IllegalArgumentException("tensor " + tensor + ": " + message);
    }

    // ================================================================== the tensors of one projection

    /** bitsandbytes' name for a dtype in quant_state (str(torch dtype) without "torch."). */
    static String torchName(DType d) {
        return switch (d) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            case F32 -> "float32";
            default -> throw new IllegalArgumentException("no bitsandbytes dtype name for " + d);
        };
    }

    /**
     * The quant_state JSON as bitsandbytes writes it ({@code json.dumps} of the non-tensor
     * entries of {@code QuantState.as_dict}, in that order, Python's separators and float repr).
     */
    public static String quantStateJson(Nf4Tensor t) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"quant_type\": \"nf4\", \"blocksize\": ").append(Nf4.BLOCK)
                .append(", \"dtype\": \"").append(torchName(t.sourceDtype()))
                .append("\", \"shape\": [").append(t.rows()).append(", ").append(t.cols()).append(']');
        if (t.doubleQuant()) {
            sb.append(", \"nested_blocksize\": ").append(Nf4.NESTED_BLOCK)
                    .append(", \"nested_dtype\": \"float32\", \"nested_offset\": ").append(Nf4.pythonRepr(t.offset()));
        }
        return sb.append('}').toString();
    }

    /**
     * The checkpoint tensors of projection {@code module} holding {@code t}, in the order
     * bitsandbytes' state dict lists them. Tensors made here (codebooks, the JSON bytes) are added
     * to {@code owned}; the others are views of t.
     */
    public static Map<String, Tensor> bitsandbytesTensors(String module, Nf4Tensor t, List<AutoCloseable> owned) {
        String p = module + ".weight";
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(p, t.packed().view(t.numel() / 2, 1));
        m.put(p + ".absmax", t.absmax());
        Tensor quantMap = Tensor.of(Nf4.CODE.clone(), 16);
        owned.add(quantMap);
        m.put(p + ".quant_map", quantMap);
        if (t.doubleQuant()) {
            m.put(p + ".nested_absmax", t.nestedAbsmax());
            Tensor code = Tensor.of(t.nestedCode(), 256);
            owned.add(code);
            m.put(p + ".nested_quant_map", code);
        }
        byte[] json = quantStateJson(t).getBytes(StandardCharsets.UTF_8);
        Tensor state = Tensor.allocate(DType.U8, json.length);
        owned.add(state);
        MemorySegment.copy(json, 0, state.data(), ValueLayout.JAVA_BYTE, 0, json.length);
        m.put(p + QUANT_STATE_SUFFIX, state);
        return m;
    }

    // ================================================================== writing

    /** What {@link #write} may do and where it reports progress. */
    public record WriteOptions(boolean force, long maxShardBytes, Consumer<String> progress) {
        public WriteOptions {
            if (maxShardBytes <= 0) throw new IllegalArgumentException("max shard size must be positive, got " + maxShardBytes);
            if (progress == null) progress = s -> {};
        }

        /** Refuse a non-empty output folder, 5 GB shards, no progress messages. */
        public static WriteOptions defaults() { return new WriteOptions(false, DEFAULT_MAX_SHARD_BYTES, null); }
    }

    /** What {@link #write} wrote. */
    public record WriteResult(int quantized, int copied, long bytes, List<Path> weightFiles) {}


    public static WriteResult write(Path outDir, Path modelDir) throws IOException {
        return write(outDir, modelDir, WriteOptions.defaults());
    }

    /**
     * Writes a bitsandbytes-style NF4 checkpoint of the dense Llama folder {@code modelDir} into
     * {@code outDir}: every q/k/v/o/gate/up/down projection double-quantized to NF4 (the tensors
     * in the class comment), every other tensor copied as it was, config.json with
     * quantization_config added, and the tokenizer and generation files copied when present.
     *
     * <p>Each file is written to a temporary name and renamed into place, and config.json is
     * written last: until it appears, the folder is not a loadable model, so a failure (or a
     * crash) never leaves something that looks complete. Weights go in shards of at most
     * {@code maxShardBytes} (one model.safetensors when they fit), and only one shard's quantized
     * tensors are in memory at a time. An existing non-empty output folder is refused unless
     * {@code force}; then its config.json and weight files are removed first.
     */
    public static WriteResult write(Path outDir, Path modelDir, WriteOptions options) throws IOException {
        Path configFile = modelDir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) throw new IllegalArgumentException("no config.json in " + modelDir + " (is it a Hugging Face model folder?)");
        ModelFolder.Config config = ModelFolder.Config.read(configFile);
        try {
            LlamaConfig.parse(config.text()); // a Llama we can run, or a clear error now rather than after quantizing
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configFile + ": " + e.getMessage(), e);
        }
        if (config.has("quantization_config")) {
            throw new IllegalArgumentException(configFile + ": the model is already quantized (quantization_config "
                    + config.text("quantization_config") + "); quantize its dense checkpoint");
        }
        ModelFolder.prepareOutput(outDir, options.force(), Map.of("model", modelDir));

        try (SafeTensorsModel weights = SafeTensorsModel.open(modelDir)) {
            // Plan: each source tensor is either quantized (a projection) or copied; estimate the
            // bytes each adds so the shards can be laid out before anything is quantized.
            List<String> names = weights.names();
            List<List<String>> shards = new ArrayList<>();
            List<String> current = new ArrayList<>();
            long currentBytes = 0;
            int toQuantize = 0;
            for (String name : names) {
                TensorInfo info = weights.info(name);
                boolean project = PROJECTION.matcher(name).matches();
                if (project) {
                    if (info.rank() != 2 || !(info.dtype() == DType.BF16 || info.dtype() == DType.F16 || info.dtype() == DType.F32)) {
                        throw new IllegalArgumentException("tensor " + name + " is " + info.dtype() + Arrays.toString(info.shape())
                                + "; expected a dense BF16, F16 or F32 matrix to quantize");
                    }
                    toQuantize++;
                }
                long bytes = project ? quantizedBytes(info.numel()) : info.byteSize();
                if (!current.isEmpty() && currentBytes + bytes > options.maxShardBytes()) {
                    shards.add(current);
                    current = new ArrayList<>();
                    currentBytes = 0;
                }
                current.add(name);
                currentBytes += bytes;
            }
            if (!current.isEmpty()) shards.add(current);
            if (toQuantize == 0) throw new IllegalArgumentException(weights.source() + ": no q/k/v/o/gate/up/down projection weights to quantize");

            List<Path> files = new ArrayList<>();
            long[] total = {0};
            int[] copied = {0};
            int quantized = toQuantize;
            ModelFolder.write(outDir, dir -> {
                Map<String, String> weightMap = new LinkedHashMap<>();
                int done = 0;
                for (int s = 0; s < shards.size(); s++) {
                    String file = shards.size() == 1 ? SafeTensorsModel.SINGLE_FILE
                            : String.format(Locale.ROOT, "model-%05d-of-%05d.safetensors", s + 1, shards.size());
                    Map<String, Tensor> tensors = new LinkedHashMap<>();
                    List<AutoCloseable> owned = new ArrayList<>();
                    try {
                        for (String name : shards.get(s)) {
                            if (PROJECTION.matcher(name).matches()) {
                                Tensor dense = weights.tensor(name);
                                options.progress().accept(String.format(Locale.ROOT, "[%d/%d] %s %s -> NF4", ++done, quantized,
                                        name, Arrays.toString(dense.shape())));
                                Nf4Tensor q;
                                try {
                                    q = Nf4Tensor.quantize(dense, true);
                                } catch (IllegalArgumentException e) {
                                    throw new IllegalArgumentException("tensor " + name + ": " + e.getMessage(), e);
                                }
                                owned.add(q);
                                tensors.putAll(bitsandbytesTensors(name.substring(0, name.length() - ".weight".length()), q, owned));
                            } else {
                                tensors.put(name, weights.tensor(name)); // copied as it is, straight from the mapped file
                                copied[0]++;
                            }
                        }
                        Path target = outDir.resolve(file);
                        SafeTensorsWriter.write(target, tensors, Map.of("format", "pt"));
                        long size = 0;
                        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                            size += e.getValue().byteSize();
                            weightMap.put(e.getKey(), file);
                        }
                        total[0] += size;
                        files.add(target);
                        options.progress().accept(String.format(Locale.ROOT, "wrote %s (%.1f MB)", file, Files.size(target) / 1e6));
                    } finally {
                        for (int i = owned.size() - 1; i >= 0; i--) {
                            try {
                                owned.get(i).close();
                            } catch (Exception ignored) {
                                // freeing memory does not fail in a way we could act on
                            }
                        }
                    }
                }
                if (shards.size() > 1) SafeTensorsWriter.writeIndex(outDir.resolve(SafeTensorsModel.INDEX_FILE), weightMap, total[0]);
            }, ModelFolder.sideFilesOf(modelDir), config.quantizationConfig(quantizationConfig()));
            options.progress().accept("wrote config.json: " + toQuantize + " projections in NF4, " + copied[0] + " tensors copied");
            return new WriteResult(toQuantize, copied[0], total[0], List.copyOf(files));
        }
    }

    /** The quantization_config a QLoRA NF4 checkpoint carries (double quantization, bf16 compute, uint8 storage). */
    static Map<String, Object> quantizationConfig() {
        Map<String, Object> q = new LinkedHashMap<>();
        q.put("quant_method", "bitsandbytes");
        q.put("load_in_4bit", true);
        q.put("bnb_4bit_quant_type", "nf4");
        q.put("bnb_4bit_use_double_quant", true);
        q.put("bnb_4bit_compute_dtype", "bfloat16");
        q.put("bnb_4bit_quant_storage", "uint8");
        return q;
    }

    /** Bytes a quantized projection adds: codes, U8 absmax, nested absmax, both code tables, the JSON. */
    static long quantizedBytes(long numel) {
        long blocks = numel / Nf4.BLOCK;
        return numel / 2 + blocks + 4 * ((blocks + Nf4.NESTED_BLOCK - 1) / Nf4.NESTED_BLOCK) + 16 * 4 + 256 * 4 + 256;
    }

    /** Writes bytes to a temporary file beside target, forces them to disk, renames into place. */
}
