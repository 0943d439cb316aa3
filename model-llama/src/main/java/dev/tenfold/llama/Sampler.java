package dev.tenfold.llama;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Picks the next token from logits: greedy at temperature 0, else temperature + top-p (nucleus) with a seed. */
public final class Sampler {
    private final float temperature;
    private final float topP;
    private final SplittableRandom rng;

    public Sampler(float temperature, float topP, long seed) {
        if (!(temperature >= 0)) throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        this.temperature = temperature;
        this.topP = topP;
        this.rng = new SplittableRandom(seed);
    }

    public static Sampler greedy() { return new Sampler(0, 1, 0); }

    public int sample(float[] logits) {
        if (temperature == 0) return argmax(logits);
        int n = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double[] p = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            p[i] = Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Double.compare(p[b], p[a]));
        // keep the smallest prefix of the sorted distribution whose mass reaches top-p
        double kept = 0;
        int cut = 0;
        while (cut < n && (cut == 0 || kept < topP * sum)) kept += p[order[cut++]];
        double r = rng.nextDouble() * kept;
        for (int i = 0; i < cut; i++) {
            r -= p[order[i]];
            if (r <= 0) return order[i];
        }
        return order[cut - 1];
    }

    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
