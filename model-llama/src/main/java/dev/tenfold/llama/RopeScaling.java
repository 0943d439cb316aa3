package dev.tenfold.llama;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;

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

    /** The allowed values of the fields, as transformers documents them (a factor below 1 would shrink the context). */
    static final Range FACTOR = Range.atLeast(1), LOW_FREQ_FACTOR = Range.greaterThan(0), BETA = Range.greaterThan(0),
            ATTENTION_FACTOR = Range.greaterThan(0), MSCALE = Range.atLeast(0), EXTENSION_FACTOR = Range.greaterThan(0);
    static final long MAX_POSITIONS = 1L << 30;
    static final List<String> TYPES = List.of("default", "linear", "dynamic", "yarn", "llama3", "longrope");

    /** Checks the fields the type uses (the parser has already named the JSON field at fault). */
    public RopeScaling {
        if (!TYPES.contains(type)) throw new IllegalArgumentException("rope type '" + type + "' is not supported (supported: "
                + String.join(", ", TYPES) + ")");
        if (!type.equals("default")) {
            FACTOR.check("rope factor", factor);
            if (originalMaxPositions < 1 && !type.equals("linear")) {
                throw new IllegalArgumentException("original_max_position_embeddings must be positive, got " + originalMaxPositions);
            }
        }
        if (type.equals("llama3")) {
            LOW_FREQ_FACTOR.check("low_freq_factor", lowFreqFactor);
            Range.greaterThan(lowFreqFactor).check("high_freq_factor (above low_freq_factor)", highFreqFactor);
        }
        if (type.equals("yarn")) {
            BETA.check("beta_fast", betaFast);
            BETA.check("beta_slow", betaSlow);
            MSCALE.check("mscale", mscale);
            MSCALE.check("mscale_all_dim", mscaleAllDim);
        }
        if (attentionFactor != null) ATTENTION_FACTOR.check("attention_factor", attentionFactor);
        if (type.equals("longrope")) {
            if (longFactor == null || shortFactor == null) throw new IllegalArgumentException("longrope needs long_factor and short_factor");
            longFactor = longFactor.clone();
            shortFactor = shortFactor.clone();
            for (double f : longFactor) EXTENSION_FACTOR.check("long_factor entries", f);
            for (double f : shortFactor) EXTENSION_FACTOR.check("short_factor entries", f);
        }
    }

    public static RopeScaling none() {
        return new RopeScaling("default", 1, 0, 0, 0, 0, 0, null, 0, 0, true, null, null);
    }

    public boolean isDefault() { return type.equals("default"); }

    /**
     * Parses a rope_scaling object (transformers 4's layout; null or missing means default), e.g.
     * the JSON of a --rope-scaling flag. The error names the field that is missing, out of range or
     * that we cannot honour.
     */
    public static RopeScaling parse(JsonNode node, int maxPositionEmbeddings, Integer topLevelOriginalMax) {
        if (node == null || node.isNull()) return none();
        return parse(new JsonFields(node, "rope_scaling."), maxPositionEmbeddings, topLevelOriginalMax);
    }

    /**
     * Parses config.json's rope_scaling or rope_parameters (transformers 5; its rope_theta is read by
     * LlamaConfig) as transformers 5 reads them: a missing rope_type means default only when nothing
     * else is given; original_max_position_embeddings at the top level of config.json wins over the
     * one inside (as for Phi-3); dynamic scales from max_position_embeddings.
     */
    static RopeScaling parse(JsonFields s, int maxPositionEmbeddings, Integer topLevelOriginalMax) {
        String type = s.text("rope_type", null);
        if (type == null) type = s.text("type", null); // older configs spell it "type"
        if (type == null) {
            Set<String> given = new LinkedHashSet<>(s.names());
            given.removeAll(Set.of("rope_theta", "partial_rotary_factor"));
            if (!given.isEmpty()) throw new IllegalArgumentException(s.name("rope_type") + " is missing (the object gives " + given + ")");
            type = "default";
        }
        type = type.toLowerCase(Locale.ROOT);
        if (!TYPES.contains(type)) {
            throw new IllegalArgumentException(s.name("rope_type") + " '" + type + "' is not supported (supported: "
                    + String.join(", ", TYPES) + ")");
        }
        double partial = s.number("partial_rotary_factor", Range.openClosed(0, 1), 1.0);
        if (partial != 1.0) throw new IllegalArgumentException(s.name("partial_rotary_factor") + " " + partial + " is not supported (only 1)");
        Integer inner = s.has("original_max_position_embeddings")
                ? (int) s.integer("original_max_position_embeddings", 1, MAX_POSITIONS) : null;
        int origMax = topLevelOriginalMax != null ? topLevelOriginalMax : inner != null ? inner : maxPositionEmbeddings;
        Double attention = s.numberOrNull("attention_factor", ATTENTION_FACTOR);
        return switch (type) {
            case "default" -> none();
            case "linear" -> new RopeScaling(type, s.number("factor", FACTOR), origMax, 0, 0, 0, 0, null, 0, 0, true, null, null);
            case "dynamic" -> new RopeScaling(type, s.number("factor", FACTOR), maxPositionEmbeddings, 0, 0, 0, 0, null, 0, 0, true,
                    null, null);
            case "llama3" -> {
                double low = s.number("low_freq_factor", LOW_FREQ_FACTOR);
                double high = s.number("high_freq_factor", LOW_FREQ_FACTOR);
                if (!(high > low)) {
                    throw new IllegalArgumentException(s.name("high_freq_factor") + " (" + high + ") must be greater than "
                            + s.name("low_freq_factor") + " (" + low + ")");
                }
                yield new RopeScaling(type, s.number("factor", FACTOR), origMax, low, high, 0, 0, null, 0, 0, true, null, null);
            }
            case "yarn" -> new RopeScaling(type, s.number("factor", FACTOR), origMax, 0, 0,
                    s.number("beta_fast", BETA, 32), s.number("beta_slow", BETA, 1), attention,
                    s.number("mscale", MSCALE, 0), s.number("mscale_all_dim", MSCALE, 0), s.bool("truncate", true), null, null);
            case "longrope" -> {
                double factor = s.has("factor") ? s.number("factor", FACTOR) : Math.max(1.0, (double) maxPositionEmbeddings / origMax);
                yield new RopeScaling(type, factor, origMax, 0, 0, 0, 0, attention, 0, 0, true,
                        s.numbers("long_factor", EXTENSION_FACTOR), s.numbers("short_factor", EXTENSION_FACTOR));
            }
            default -> throw new IllegalStateException(type);
        };
    }

    /** Checks what depends on the head size: longrope's factors have one entry per frequency. */
    void checkHeadDim(int headDim) {
        if (!type.equals("longrope")) return;
        for (double[] f : new double[][] {longFactor, shortFactor}) {
            if (f.length != headDim / 2) {
                throw new IllegalArgumentException("longrope " + (f == longFactor ? "long_factor" : "short_factor") + " has " + f.length
                        + " entries; head_dim/2 = " + headDim / 2 + " are needed");
            }
        }
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

    @Override
    public boolean equals(Object o) {
        return o instanceof RopeScaling r && type.equals(r.type) && factor == r.factor && originalMaxPositions == r.originalMaxPositions
                && lowFreqFactor == r.lowFreqFactor && highFreqFactor == r.highFreqFactor && betaFast == r.betaFast
                && betaSlow == r.betaSlow && Objects.equals(attentionFactor, r.attentionFactor) && mscale == r.mscale
                && mscaleAllDim == r.mscaleAllDim && truncate == r.truncate && Arrays.equals(longFactor, r.longFactor)
                && Arrays.equals(shortFactor, r.shortFactor);
    }

    @Override
    public int hashCode() { return Objects.hash(type, factor, originalMaxPositions, Arrays.hashCode(longFactor)); }

    @Override
    public String toString() {
        return isDefault() ? "default" : type + "(factor " + factor + ", original " + originalMaxPositions + ")";
    }
}
