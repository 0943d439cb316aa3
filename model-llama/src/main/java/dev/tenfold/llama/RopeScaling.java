package dev.tenfold.llama;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Locale;

/**
 * RoPE inverse frequencies for every rope_scaling type that transformers knows (default, linear,
 * dynamic, yarn, llama3, longrope), computed as transformers computes them. The engine's RoPE op
 * takes the resulting table plus explicit position ids, so position skipping (PoSE) needs nothing here.
 *
 * @param type          default | linear | dynamic | yarn | llama3 | longrope
 * @param factor        scaling factor (1 for default)
 * @param originalMaxPositions the pre-extension context (original_max_position_embeddings)
 */
public record RopeScaling(String type, double factor, int originalMaxPositions,
                          double lowFreqFactor, double highFreqFactor,
                          double betaFast, double betaSlow, Double attentionFactor,
                          double mscale, double mscaleAllDim, boolean truncate,
                          double[] longFactor, double[] shortFactor) {

    public static RopeScaling none() {
        return new RopeScaling("default", 1, 0, 0, 0, 0, 0, null, 0, 0, true, null, null);
    }

    public boolean isDefault() { return type.equals("default"); }

    /**
     * Parses config.json's rope_scaling object (null or missing means default). The error names
     * the field that is missing or that we cannot honour.
     */
    public static RopeScaling parse(JsonNode node, int maxPositionEmbeddings, Integer topLevelOriginalMax) {
        if (node == null || node.isNull()) return none();
        if (!node.isObject()) throw new IllegalArgumentException("rope_scaling must be an object or null, got " + node);
        String type = text(node, "rope_type");
        if (type == null) type = text(node, "type"); // older configs spell it "type"
        if (type == null) throw new IllegalArgumentException("rope_scaling has no rope_type: " + node);
        type = type.toLowerCase(Locale.ROOT);
        int origMax = node.has("original_max_position_embeddings")
                ? node.get("original_max_position_embeddings").asInt()
                : topLevelOriginalMax != null ? topLevelOriginalMax : maxPositionEmbeddings;
        return switch (type) {
            case "default" -> none();
            case "linear", "dynamic" -> new RopeScaling(type, need(node, "factor"), origMax, 0, 0, 0, 0, null, 0, 0, true, null, null);
            case "llama3" -> new RopeScaling(type, need(node, "factor"), need(node, "original_max_position_embeddings", type),
                    need(node, "low_freq_factor"), need(node, "high_freq_factor"), 0, 0, null, 0, 0, true, null, null);
            case "yarn" -> new RopeScaling(type, need(node, "factor"), origMax, 0, 0,
                    opt(node, "beta_fast", 32), opt(node, "beta_slow", 1),
                    node.hasNonNull("attention_factor") ? node.get("attention_factor").asDouble() : null,
                    opt(node, "mscale", 0), opt(node, "mscale_all_dim", 0),
                    !node.has("truncate") || node.get("truncate").asBoolean(), null, null);
            case "longrope" -> {
                int orig = topLevelOriginalMax != null ? topLevelOriginalMax : origMax;
                double factor = topLevelOriginalMax != null ? (double) maxPositionEmbeddings / topLevelOriginalMax
                        : opt(node, "factor", 1);
                yield new RopeScaling(type, factor, orig, 0, 0, 0, 0,
                        node.hasNonNull("attention_factor") ? node.get("attention_factor").asDouble() : null, 0, 0, true,
                        doubles(node, "long_factor"), doubles(node, "short_factor"));
            }
            default -> throw new IllegalArgumentException("rope_scaling type '" + type
                    + "' is not supported (supported: default, linear, dynamic, yarn, llama3, longrope)");
        };
    }

    /**
     * The inverse-frequency table (headDim / 2 entries) for sequences of {@code seqLen} tokens
     * (only dynamic and longrope depend on it).
     */
    public float[] inverseFrequencies(int headDim, double theta, int seqLen) {
        if (headDim <= 0 || headDim % 2 != 0) throw new IllegalArgumentException("head_dim must be even and positive, got " + headDim);
        int half = headDim / 2;
        double[] inv = new double[half];
        double base = theta;
        if (type.equals("dynamic") && seqLen > originalMaxPositions) {
            base = theta * Math.pow(factor * seqLen / originalMaxPositions - (factor - 1), (double) headDim / (headDim - 2));
        }
        for (int i = 0; i < half; i++) inv[i] = 1.0 / Math.pow(base, (2.0 * i) / headDim);
        switch (type) {
            case "default", "dynamic" -> { }
            case "linear" -> { for (int i = 0; i < half; i++) inv[i] /= factor; }
            case "llama3" -> llama3(inv);
            case "yarn" -> yarn(inv, headDim, theta);
            case "longrope" -> {
                double[] ext = seqLen > originalMaxPositions ? longFactor : shortFactor;
                if (ext == null || ext.length != half) {
                    throw new IllegalArgumentException("longrope factors must have head_dim/2 = " + half + " entries, got "
                            + (ext == null ? "none" : ext.length));
                }
                for (int i = 0; i < half; i++) inv[i] /= ext[i];
            }
            default -> throw new IllegalStateException(type);
        }
        float[] out = new float[half];
        for (int i = 0; i < half; i++) out[i] = (float) inv[i];
        return out;
    }

    /** The factor that multiplies cos and sin (1 except for yarn and longrope). */
    public float attentionScale() {
        return switch (type) {
            case "yarn" -> (float) (attentionFactor != null ? attentionFactor
                    : mscale != 0 && mscaleAllDim != 0 ? yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAllDim)
                    : yarnMscale(factor, 1));
            case "longrope" -> (float) (attentionFactor != null ? attentionFactor
                    : factor <= 1 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositions)));
            default -> 1f;
        };
    }

    private void llama3(double[] inv) {
        double lowWavelen = originalMaxPositions / lowFreqFactor;
        double highWavelen = originalMaxPositions / highFreqFactor;
        for (int i = 0; i < inv.length; i++) {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen < highWavelen) continue;          // high frequencies: kept
            if (wavelen > lowWavelen) {                   // low frequencies: interpolated
                inv[i] /= factor;
            } else {                                      // in between: a smooth blend
                double s = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                inv[i] = (1 - s) * inv[i] / factor + s * inv[i];
            }
        }
    }

    private void yarn(double[] inv, int dim, double base) {
        double low = correctionDim(betaFast, dim, base), high = correctionDim(betaSlow, dim, base);
        if (truncate) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, dim - 1);
        if (low == high) high += 0.001; // avoid a zero-width ramp
        for (int i = 0; i < inv.length; i++) {
            double ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
            double extrapolationWeight = 1 - ramp;
            inv[i] = inv[i] / factor * (1 - extrapolationWeight) + inv[i] * extrapolationWeight;
        }
    }

    private double correctionDim(double rotations, int dim, double base) {
        return dim * Math.log(originalMaxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    private static double yarnMscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * Math.log(scale) + 1.0; }

    private static String text(JsonNode n, String field) {
        JsonNode v = n.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }

    private static double need(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isNumber()) throw new IllegalArgumentException("rope_scaling." + field + " must be a number, got " + v);
        return v.asDouble();
    }

    private static int need(JsonNode n, String field, String type) {
        JsonNode v = n.get(field);
        if (v == null || !v.canConvertToInt()) {
            throw new IllegalArgumentException("rope_scaling type " + type + " needs an integer " + field + ", got " + v);
        }
        return v.asInt();
    }

    private static double opt(JsonNode n, String field, double dflt) {
        JsonNode v = n.get(field);
        return v == null || v.isNull() ? dflt : v.asDouble();
    }

    private static double[] doubles(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isArray()) throw new IllegalArgumentException("rope_scaling." + field + " must be a list of numbers");
        double[] out = new double[v.size()];
        for (int i = 0; i < out.length; i++) out[i] = v.get(i).asDouble();
        return out;
    }

    @Override
    public String toString() {
        return isDefault() ? "default" : type + "(factor " + factor + ", original " + originalMaxPositions + ")";
    }
}
