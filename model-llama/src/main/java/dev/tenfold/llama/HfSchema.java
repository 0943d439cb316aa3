package dev.tenfold.llama;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The tensors of a Hugging Face Llama checkpoint, by name and shape, in one place: the loader, the
 * model's trainable parameters, LoRA's targets, merging, quantizing, random initialisation and
 * the benchmarks all take the names from here. Shapes are [out, in] for a projection, as
 * torch.nn.Linear stores its weight.
 */
public final class HfSchema {
    private HfSchema() {}

    public static final String EMBEDDING = "model.embed_tokens.weight";
    public static final String FINAL_NORM = "model.norm.weight";
    public static final String LM_HEAD = "lm_head.weight";
    /** The module whose weight is the embedding (peft's modules_to_save entry). */
    public static final String EMBEDDING_MODULE = "embed_tokens";

    /** The seven projections of a decoder layer, in checkpoint order. */
    public enum Projection {
        Q("self_attn.q_proj"), K("self_attn.k_proj"), V("self_attn.v_proj"), O("self_attn.o_proj"),
        GATE("mlp.gate_proj"), UP("mlp.up_proj"), DOWN("mlp.down_proj");

        private final String path;

        Projection(String path) { this.path = path; }

        /** The module's name in layer {@code layer}, e.g. {@code model.layers.3.self_attn.q_proj}. */
        public String module(int layer) { return layerPrefix(layer) + path; }

        /** The name of its weight in layer {@code layer}. */
        public String weight(int layer) { return module(layer) + ".weight"; }

        /** The last part of the module name, as peft's target_modules give it: q_proj, ..., down_proj. */
        public String leaf() { return path.substring(path.indexOf('.') + 1); }

        /** The short name the CLI takes: q, k, v, o, gate, up, down. */
        public String shortName() { return name().toLowerCase(Locale.ROOT); }

        /** Output features (rows of the weight) for {@code c}. */
        public long out(LlamaConfig c) {
            return switch (this) {
                case Q -> (long) c.numHeads() * c.headDim();
                case K, V -> (long) c.numKvHeads() * c.headDim();
                case O, DOWN -> c.hiddenSize();
                case GATE, UP -> c.intermediateSize();
            };
        }

        /** Input features (columns of the weight) for {@code c}. */
        public long in(LlamaConfig c) {
            return switch (this) {
                case O -> (long) c.numHeads() * c.headDim();
                case DOWN -> c.intermediateSize();
                default -> c.hiddenSize();
            };
        }

        /** The projection of a short or peft name ("q" or "q_proj"), or null. */
        public static Projection named(String name) {
            String n = name.toLowerCase(Locale.ROOT);
            if (n.endsWith("_proj")) n = n.substring(0, n.length() - "_proj".length());
            for (Projection p : values()) if (p.shortName().equals(n)) return p;
            return null;
        }
    }

    /** Any layer's projection weight: model.layers.N.(self_attn.(q|k|v|o)|mlp.(gate|up|down))_proj.weight. */
    public static final Pattern PROJECTION_WEIGHT =
            Pattern.compile("model\\.layers\\.\\d+\\.(self_attn\\.(q|k|v|o)_proj|mlp\\.(gate|up|down)_proj)\\.weight");

    /** "model.layers.N." */
    public static String layerPrefix(int layer) { return "model.layers." + layer + "."; }

    /** The RMSNorm weight before attention in layer {@code layer}. */
    public static String attnNorm(int layer) { return layerPrefix(layer) + "input_layernorm.weight"; }

    /** The RMSNorm weight before the MLP in layer {@code layer}. */
    public static String mlpNorm(int layer) { return layerPrefix(layer) + "post_attention_layernorm.weight"; }

    /** Every tensor of a dense checkpoint for {@code c}, name to shape, in checkpoint order (lm_head only when untied). */
    public static Map<String, long[]> tensors(LlamaConfig c) {
        long h = c.hiddenSize();
        Map<String, long[]> out = new LinkedHashMap<>();
        out.put(EMBEDDING, new long[] {c.vocabSize(), h});
        for (int i = 0; i < c.numLayers(); i++) {
            out.put(attnNorm(i), new long[] {h});
            for (Projection p : new Projection[] {Projection.Q, Projection.K, Projection.V, Projection.O}) {
                out.put(p.weight(i), new long[] {p.out(c), p.in(c)});
            }
            out.put(mlpNorm(i), new long[] {h});
            for (Projection p : new Projection[] {Projection.GATE, Projection.UP, Projection.DOWN}) {
                out.put(p.weight(i), new long[] {p.out(c), p.in(c)});
            }
        }
        out.put(FINAL_NORM, new long[] {h});
        if (!c.tieWordEmbeddings()) out.put(LM_HEAD, new long[] {c.vocabSize(), h});
        return out;
    }
}
