package dev.tenfold.qlora;

import java.util.Locale;

/** Learning rate per optimizer step, as transformers' get_scheduler computes it (step counts from 0). */
public record LrSchedule(Kind kind, double peak, int warmupSteps, int totalSteps) {
    public enum Kind { CONSTANT, LINEAR, COSINE }

    public LrSchedule {
        if (!(peak > 0)) throw new IllegalArgumentException("learning rate must be positive, got " + peak);
        if (warmupSteps < 0) throw new IllegalArgumentException("warmup steps must be >= 0, got " + warmupSteps);
        if (totalSteps <= 0) throw new IllegalArgumentException("total steps must be positive, got " + totalSteps);
    }

    public static Kind parse(String s) {
        try {
            return Kind.valueOf(s.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown learning-rate schedule '" + s + "' (constant, linear or cosine)");
        }
    }

    /** The rate for optimizer step {@code step} (0-based): linear warmup, then constant, linear decay to 0, or half a cosine. */
    public double at(int step) {
        if (step < warmupSteps) return peak * step / Math.max(1, warmupSteps);
        if (kind == Kind.CONSTANT) return peak;
        double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        return switch (kind) {
            case LINEAR -> peak * Math.max(0, 1 - progress);
            case COSINE -> peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
            case CONSTANT -> peak;
        };
    }
}
