package dev.tenfold.engine.testing;

import static org.junit.jupiter.api.Assertions.fail;

import dev.tenfold.engine.Tensor;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;

/**
 * Finite-difference gradient checks. The loss is any scalar function of the tensor's current
 * contents (usually sum(output * fixed random weights), computed with the reference backend);
 * each checked element is nudged by +-eps and the central difference is compared with the
 * analytic gradient.
 */
public final class GradCheck {
    private GradCheck() {}

    /**
     * Checks {@code analytic} (same shape as {@code input}) against central differences of
     * {@code loss} at up to {@code samples} elements of {@code input} (all when fewer).
     * Passes when |fd - an| <= tol * max(1, |fd|, |an|) holds at every checked element.
     */
    public static void check(String what, Tensor input, Tensor analytic, DoubleSupplier loss,
                             double eps, double tol, int samples, long seed) {
        long n = input.numel();
        SplittableRandom rng = new SplittableRandom(seed);
        int count = (int) Math.min(n, samples);
        double worst = 0;
        String worstMsg = null;
        for (int s = 0; s < count; s++) {
            long i = count == n ? s : rng.nextLong(n);
            float orig = input.getFloat(i);
            input.setFloat(i, (float) (orig + eps));
            double up = loss.getAsDouble();
            input.setFloat(i, (float) (orig - eps));
            double down = loss.getAsDouble();
            input.setFloat(i, orig);
            double fd = (up - down) / (2 * eps);
            double an = analytic.getFloat(i);
            double err = Math.abs(fd - an) / Math.max(1.0, Math.max(Math.abs(fd), Math.abs(an)));
            if (!Double.isFinite(an) || err > worst) {
                worst = Double.isFinite(an) ? err : Double.POSITIVE_INFINITY;
                worstMsg = "element " + i + ": finite difference " + fd + ", analytic " + an;
            }
        }
        if (worst > tol) fail(what + ": gradient check failed (relative error " + worst + " > " + tol + ") at " + worstMsg);
    }

    /** sum(t * w) in double: a scalar loss whose gradient with respect to t is w. */
    public static double weightedSum(Tensor t, Tensor w) {
        double s = 0;
        for (long i = 0; i < t.numel(); i++) s += (double) t.getFloat(i) * w.getFloat(i);
        return s;
    }
}
