package dev.tenfold.llama;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** Reading {@link RopeScaling} from config.json's rope_scaling or rope_parameters, and the helpers its types share. */
final class RopeParsing {
    private RopeParsing() {}

    static final long MAX_POSITIONS = 1L << 30;
    static final List<String> TYPES = List.of("default", "linear", "dynamic", "yarn", "llama3", "longrope");

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
        Double attention = s.numberOrNull("attention_factor", RopeScaling.ATTENTION_FACTOR);
        return switch (type) {
            case "default" -> RopeScaling.none();
            case "linear" -> RopeScaling.linear(s.number("factor", RopeScaling.FACTOR));
            case "dynamic" -> RopeScaling.dynamic(s.number("factor", RopeScaling.FACTOR), maxPositionEmbeddings);
            case "llama3" -> {
                double low = s.number("low_freq_factor", RopeScaling.LOW_FREQ_FACTOR);
                double high = s.number("high_freq_factor", RopeScaling.LOW_FREQ_FACTOR);
                if (!(high > low)) {
                    throw new IllegalArgumentException(s.name("high_freq_factor") + " (" + high + ") must be greater than "
                            + s.name("low_freq_factor") + " (" + low + ")");
                }
                yield RopeScaling.llama3(s.number("factor", RopeScaling.FACTOR), origMax, low, high);
            }
            case "yarn" -> RopeScaling.yarn(s.number("factor", RopeScaling.FACTOR), origMax)
                    .withBetas(s.number("beta_fast", RopeScaling.BETA, 32), s.number("beta_slow", RopeScaling.BETA, 1))
                    .withAttentionFactor(attention)
                    .withMscale(s.number("mscale", RopeScaling.MSCALE, 0), s.number("mscale_all_dim", RopeScaling.MSCALE, 0))
                    .withTruncate(s.bool("truncate", true));
            case "longrope" -> {
                double factor = s.has("factor") ? s.number("factor", RopeScaling.FACTOR) : Math.max(1.0, (double) maxPositionEmbeddings / origMax);
                yield RopeScaling.longrope(factor, origMax, s.numbers("long_factor", RopeScaling.EXTENSION_FACTOR),
                        s.numbers("short_factor", RopeScaling.EXTENSION_FACTOR)).withAttentionFactor(attention);
            }
            default -> throw new IllegalStateException(type);
        };
    }

    /** Checks what depends on the head size: longrope's factors have one entry per frequency. */
    static void checkHeadDim(RopeScaling scaling, int headDim) {
        if (!(scaling instanceof RopeScaling.LongRope r)) return;
        for (String which : new String[] {"long_factor", "short_factor"}) {
            int n = (which.equals("long_factor") ? r.longFactor() : r.shortFactor()).length;
            if (n != headDim / 2) {
                throw new IllegalArgumentException("longrope " + which + " has " + n + " entries; head_dim/2 = " + headDim / 2 + " are needed");
            }
        }
    }

    static int checkOriginal(int originalMaxPositions) {
        if (originalMaxPositions < 1) {
            throw new IllegalArgumentException("original_max_position_embeddings must be positive, got " + originalMaxPositions);
        }
        return originalMaxPositions;
    }

    /** The unscaled table 1 / theta^(2i/d), in double. */
    static double[] plain(int headDim, double theta) {
        if (headDim <= 0 || headDim % 2 != 0) throw new IllegalArgumentException("head_dim must be even and positive, got " + headDim);
        double[] inv = new double[headDim / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = 1.0 / Math.pow(theta, (2.0 * i) / headDim);
        return inv;
    }

    static float[] toFloats(double[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) out[i] = (float) v[i];
        return out;
    }
}
