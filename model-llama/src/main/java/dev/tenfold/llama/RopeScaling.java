package dev.tenfold.llama;

import java.util.Arrays;
import java.util.Objects;

/**
 * RoPE inverse frequencies for every rope_scaling type that transformers knows, computed as
 * transformers computes them: one small value per type, made with the factories
 * ({@link #none()}, {@link #linear}, {@link #dynamic}, {@link #llama3}, {@link #yarn},
 * {@link #longrope}) or parsed from config.json ({@link #parse}). Each checks its fields where it
 * is made. The engine's RoPE op takes the resulting table plus explicit position ids, so position
 * skipping (PoSE) needs nothing here.
 */
public sealed interface RopeScaling
        permits RopeScaling.Default, RopeScaling.Linear, RopeScaling.Dynamic, RopeScaling.Llama3, RopeScaling.Yarn, RopeScaling.LongRope {

    /** The allowed values of the fields, as transformers documents them (a factor below 1 would shrink the context). */
    Range FACTOR = Range.atLeast(1), LOW_FREQ_FACTOR = Range.greaterThan(0), BETA = Range.greaterThan(0),
            ATTENTION_FACTOR = Range.greaterThan(0), MSCALE = Range.atLeast(0), EXTENSION_FACTOR = Range.greaterThan(0);

    /** The rope_type as config.json spells it: default, linear, dynamic, llama3, yarn or longrope. */
    String type();

    /** The scaling factor (1 for default). */
    double factor();

    /**
     * The inverse-frequency table (headDim / 2 entries) for RoPE base {@code theta} and sequences
     * of {@code seqLen} tokens (only dynamic and longrope depend on the length).
     */
    float[] inverseFrequencies(int headDim, double theta, int seqLen);

    /** The factor that multiplies cos and sin (1 except for yarn and longrope). */
    default float attentionScale() { return 1f; }

    default boolean isDefault() { return this instanceof Default; }

    // ------------------------------------------------------------------ factories

    /** No scaling: the plain RoPE of the base. */
    static RopeScaling none() { return Default.INSTANCE; }

    /** Positions divided by {@code factor} (position interpolation). */
    static Linear linear(double factor) { return new Linear(factor); }

    /** The base raised once a sequence grows beyond {@code originalMaxPositions} (dynamic NTK). */
    static Dynamic dynamic(double factor, int originalMaxPositions) { return new Dynamic(factor, originalMaxPositions); }

    /** Llama 3.1's scaling: low frequencies divided by the factor, high ones kept, a blend between. */
    static Llama3 llama3(double factor, int originalMaxPositions, double lowFreqFactor, double highFreqFactor) {
        return new Llama3(factor, originalMaxPositions, lowFreqFactor, highFreqFactor);
    }

    /** YaRN with transformers' defaults (beta_fast 32, beta_slow 1, no mscale, truncated ramp); the withers change them. */
    static Yarn yarn(double factor, int originalMaxPositions) {
        return new Yarn(factor, originalMaxPositions, 32, 1, null, 0, 0, true);
    }

    /** LongRoPE (Phi-3): per-frequency factors for short and long sequences. */
    static LongRope longrope(double factor, int originalMaxPositions, double[] longFactor, double[] shortFactor) {
        return new LongRope(factor, originalMaxPositions, null, longFactor, shortFactor);
    }

    /**
     * Parses a rope_scaling object in transformers' layout (JSON text; "null" means default), e.g.
     * the value of a command-line flag. {@code maxPositionEmbeddings} is the model's context (what
     * dynamic scales from); {@code originalMaxPositions} is config.json's top-level
     * original_max_position_embeddings, or null. Errors name the field that is missing, out of
     * range or that tenfold cannot honour.
     */
    static RopeScaling parse(String json, int maxPositionEmbeddings, Integer originalMaxPositions) {
        if (json == null || json.isBlank() || json.strip().equals("null")) return none();
        return RopeParsing.parse(JsonFields.parseObject(json, "rope_scaling."), maxPositionEmbeddings, originalMaxPositions);
    }

    // ------------------------------------------------------------------ the types

    /** No scaling. */
    final class Default implements RopeScaling {
        static final Default INSTANCE = new Default();

        private Default() {}

        @Override public String type() { return "default"; }

        @Override public double factor() { return 1; }

        @Override public float[] inverseFrequencies(int headDim, double theta, int seqLen) {
            return RopeParsing.toFloats(RopeParsing.plain(headDim, theta));
        }

        @Override public String toString() { return "default"; }
    }

    /** Linear position interpolation. */
    record Linear(double factor) implements RopeScaling {
        public Linear { FACTOR.check("rope factor", factor); }

        @Override public String type() { return "linear"; }

        @Override public float[] inverseFrequencies(int headDim, double theta, int seqLen) {
            double[] inv = RopeParsing.plain(headDim, theta);
            for (int i = 0; i < inv.length; i++) inv[i] /= factor;
            return RopeParsing.toFloats(inv);
        }

        @Override public String toString() { return "linear(factor " + factor + ")"; }
    }

    /** Dynamic NTK scaling: the base grows with the sequence beyond the original context. */
    record Dynamic(double factor, int originalMaxPositions) implements RopeScaling {
        public Dynamic {
            FACTOR.check("rope factor", factor);
            RopeParsing.checkOriginal(originalMaxPositions);
        }

        @Override public String type() { return "dynamic"; }

        @Override public float[] inverseFrequencies(int headDim, double theta, int seqLen) {
            double base = theta;
            if (seqLen > originalMaxPositions) {
                base = theta * Math.pow(factor * seqLen / originalMaxPositions - (factor - 1), (double) headDim / (headDim - 2));
            }
            return RopeParsing.toFloats(RopeParsing.plain(headDim, base));
        }

        @Override public String toString() { return "dynamic(factor " + factor + ", original " + originalMaxPositions + ")"; }
    }

    /** Llama 3.1's frequency-dependent scaling. */
    record Llama3(double factor, int originalMaxPositions, double lowFreqFactor, double highFreqFactor) implements RopeScaling {
        public Llama3 {
            FACTOR.check("rope factor", factor);
            RopeParsing.checkOriginal(originalMaxPositions);
            LOW_FREQ_FACTOR.check("low_freq_factor", lowFreqFactor);
            Range.greaterThan(lowFreqFactor).check("high_freq_factor (above low_freq_factor)", highFreqFactor);
        }

        @Override public String type() { return "llama3"; }

        @Override public float[] inverseFrequencies(int headDim, double theta, int seqLen) {
            double[] inv = RopeParsing.plain(headDim, theta);
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
            return RopeParsing.toFloats(inv);
        }

        @Override public String toString() { return "llama3(factor " + factor + ", original " + originalMaxPositions + ")"; }
    }

    /**
     * YaRN: frequencies blended between interpolation and extrapolation by a ramp between the
     * beta_fast and beta_slow rotations, and an attention factor. Made by {@link #yarn}, then changed
     * with the withers.
     */
    final class Yarn implements RopeScaling {
        private final double factor;
        private final int originalMaxPositions;
        private final double betaFast, betaSlow;
        private final Double attentionFactor;
        private final double mscale, mscaleAllDim;
        private final boolean truncate;

        private Yarn(double factor, int originalMaxPositions, double betaFast, double betaSlow, Double attentionFactor, double mscale,
                     double mscaleAllDim, boolean truncate) {
            this.factor = FACTOR.check("rope factor", factor);
            this.originalMaxPositions = RopeParsing.checkOriginal(originalMaxPositions);
            this.betaFast = BETA.check("beta_fast", betaFast);
            this.betaSlow = BETA.check("beta_slow", betaSlow);
            this.attentionFactor = attentionFactor == null ? null : ATTENTION_FACTOR.check("attention_factor", attentionFactor);
            this.mscale = MSCALE.check("mscale", mscale);
            this.mscaleAllDim = MSCALE.check("mscale_all_dim", mscaleAllDim);
            this.truncate = truncate;
        }

        /** The rotation counts that bound the ramp (transformers' beta_fast and beta_slow). */
        public Yarn withBetas(double fast, double slow) {
            return new Yarn(factor, originalMaxPositions, fast, slow, attentionFactor, mscale, mscaleAllDim, truncate);
        }

        /** The attention factor given outright (null: computed from the factor and the mscales). */
        public Yarn withAttentionFactor(Double f) {
            return new Yarn(factor, originalMaxPositions, betaFast, betaSlow, f, mscale, mscaleAllDim, truncate);
        }

        /** DeepSeek's mscale and mscale_all_dim (both 0: not used). */
        public Yarn withMscale(double m, double allDim) {
            return new Yarn(factor, originalMaxPositions, betaFast, betaSlow, attentionFactor, m, allDim, truncate);
        }

        /** Whether the ramp's bounds are rounded to whole dimensions (transformers' truncate). */
        public Yarn withTruncate(boolean t) {
            return new Yarn(factor, originalMaxPositions, betaFast, betaSlow, attentionFactor, mscale, mscaleAllDim, t);
        }

        @Override public String type() { return "yarn"; }

        @Override public double factor() { return factor; }

        public int originalMaxPositions() { return originalMaxPositions; }

        public double betaFast() { return betaFast; }

        public double betaSlow() { return betaSlow; }

        public Double attentionFactor() { return attentionFactor; }

        public double mscale() { return mscale; }

        public double mscaleAllDim() { return mscaleAllDim; }

        public boolean truncate() { return truncate; }

        @Override public float[] inverseFrequencies(int headDim, double theta, int seqLen) {
            double[] inv = RopeParsing.plain(headDim, theta);
            double low = correctionDim(betaFast, headDim, theta), high = correctionDim(betaSlow, headDim, theta);
            if (truncate) {
                low = Math.floor(low);
                high = Math.ceil(high);
            }
            low = Math.max(low, 0);
            high = Math.min(high, headDim - 1);
            if (low == high) high += 0.001; // avoid a zero-width ramp
            for (int i = 0; i < inv.length; i++) {
                double ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
                double extrapolationWeight = 1 - ramp;
                inv[i] = inv[i] / factor * (1 - extrapolationWeight) + inv[i] * extrapolationWeight;
            }
            return RopeParsing.toFloats(inv);
        }

        private double correctionDim(double rotations, int dim, double base) {
            return dim * Math.log(originalMaxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
        }

        @Override public float attentionScale() {
            if (attentionFactor != null) return (float) (double) attentionFactor;
            return (float) (mscale != 0 && mscaleAllDim != 0 ? mscale(factor, mscale) / mscale(factor, mscaleAllDim) : mscale(factor, 1));
        }

        private static double mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * Math.log(scale) + 1.0; }

        @Override public boolean equals(Object o) {
            return o instanceof Yarn y && factor == y.factor && originalMaxPositions == y.originalMaxPositions && betaFast == y.betaFast
                    && betaSlow == y.betaSlow && Objects.equals(attentionFactor, y.attentionFactor) && mscale == y.mscale
                    && mscaleAllDim == y.mscaleAllDim && truncate == y.truncate;
        }

        @Override public int hashCode() {
            return Objects.hash(factor, originalMaxPositions, betaFast, betaSlow, attentionFactor, mscale, mscaleAllDim, truncate);
        }

        @Override public String toString() { return "yarn(factor " + factor + ", original " + originalMaxPositions + ")"; }
    }

    /** LongRoPE: the short factors up to the original context, the long ones beyond it. */
    record LongRope(double factor, int originalMaxPositions, Double attentionFactor, double[] longFactor, double[] shortFactor)
            implements RopeScaling {
        public LongRope {
            FACTOR.check("rope factor", factor);
            RopeParsing.checkOriginal(originalMaxPositions);
            if (attentionFactor != null) ATTENTION_FACTOR.check("attention_factor", attentionFactor);
            if (longFactor == null || shortFactor == null) throw new IllegalArgumentException("longrope needs long_factor and short_factor");
            longFactor = longFactor.clone();
            shortFactor = shortFactor.clone();
            for (double f : longFactor) EXTENSION_FACTOR.check("long_factor entries", f);
            for (double f : shortFactor) EXTENSION_FACTOR.check("short_factor entries", f);
        }

        /** The attention factor given outright (null: sqrt(1 + ln(factor) / ln(original))). */
        public LongRope withAttentionFactor(Double f) { return new LongRope(factor, originalMaxPositions, f, longFactor, shortFactor); }

        @Override public double[] longFactor() { return longFactor.clone(); }

        @Override public double[] shortFactor() { return shortFactor.clone(); }

        @Override public String type() { return "longrope"; }

        @Override public float[] inverseFrequencies(int headDim, double theta, int seqLen) {
            double[] inv = RopeParsing.plain(headDim, theta);
            double[] ext = seqLen > originalMaxPositions ? longFactor : shortFactor;
            if (ext.length != inv.length) {
                throw new IllegalArgumentException("longrope factors must have head_dim/2 = " + inv.length + " entries, got " + ext.length);
            }
            for (int i = 0; i < inv.length; i++) inv[i] /= ext[i];
            return RopeParsing.toFloats(inv);
        }

        @Override public float attentionScale() {
            return (float) (attentionFactor != null ? attentionFactor
                    : factor <= 1 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositions)));
        }

        @Override public boolean equals(Object o) {
            return o instanceof LongRope r && factor == r.factor && originalMaxPositions == r.originalMaxPositions
                    && Objects.equals(attentionFactor, r.attentionFactor) && Arrays.equals(longFactor, r.longFactor)
                    && Arrays.equals(shortFactor, r.shortFactor);
        }

        @Override public int hashCode() {
            return Objects.hash(factor, originalMaxPositions, attentionFactor, Arrays.hashCode(longFactor), Arrays.hashCode(shortFactor));
        }

        @Override public String toString() { return "longrope(factor " + factor + ", original " + originalMaxPositions + ")"; }
    }
}
