package dev.tenfold.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector math whose results do not depend on the JIT. The Vector API's own EXP and floating-point
 * ADD reductions may give different bits in interpreted and compiled code (an SVML stub vs
 * Math.exp; an unspecified summation order), which would make a CPU training run depend on when
 * the JIT kicked in, and a resumed run differ from an uninterrupted one. Everything here is built
 * from exactly-rounded lane-wise operations in a fixed order, so it is reproducible bit for bit.
 */
public final class VectorMath {
    private VectorMath() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693145751953125f;      // ln 2 split so that n * LN2_HI is exact
    private static final float LN2_LO = 1.42860682030941723212e-6f;
    private static final float ROUNDER = 12582912f;              // 1.5 * 2^23: adding it rounds to an integer
    private static final float LOW = -87.3f, HIGH = 88.3f;       // where 2^n stays a normal float

    /**
     * e^x lane by lane: 2^n e^r with n = round(x log2 e), |r| <= ln2 / 2 and e^r by its Taylor
     * series to r^7; within 2 ulp of Math.exp. Below -87.3 (including -inf, a masked attention
     * score) the result is exactly 0, where Math.exp would give a float below 1.2e-38 or a
     * subnormal; lanes above 88.3 or NaN take Math.exp itself (a rare, branch-predicted path).
     *
     * <p>Written for latency as much as for the count of operations (a softmax waits on it): no
     * clamping (lanes out of range are replaced at the end), most of the polynomial by Estrin's scheme,
     * and 2^n straight from the bits of x log2 e + 1.5 * 2^23, whose low bits hold n, instead of a
     * float-to-int conversion.
     */
    public static FloatVector exp(FloatVector x) {
        FloatVector t = x.fma(LOG2E, ROUNDER);
        FloatVector n = t.sub(ROUNDER);
        FloatVector r = n.fma(x.broadcast(-LN2_HI), x);
        r = n.fma(x.broadcast(-LN2_LO), r);
        // e^r = 1 + r (1 + r q(r)), q(r) = 1/2 + r/6 + ... + r^5/7! by Estrin's scheme: five multiply-adds deep instead
        // of eight, and the last two steps (which set the rounding) as in Horner's. Written out here and in exp2:
        // a helper method would need the JIT to inline it, or every vector would be boxed.
        FloatVector r2 = r.mul(r), r4 = r2.mul(r2);
        FloatVector q = r.fma(x.broadcast(1f / 5040), x.broadcast(1f / 720)).fma(r4,
                r.fma(x.broadcast(1f / 120), x.broadcast(1f / 24)).fma(r2, r.fma(x.broadcast(1f / 6), x.broadcast(0.5f))));
        FloatVector p = q.fma(r, x.broadcast(1f)).fma(r, x.broadcast(1f));
        // 2^n from t's bits (see exp2)
        FloatVector twoToN = t.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(127 << 23).reinterpretAsFloats();
        FloatVector result = p.mul(twoToN).blend(0f, x.compare(VectorOperators.LT, LOW));
        VectorMask<Float> rare = x.compare(VectorOperators.LE, HIGH).not(); // above HIGH, or NaN
        if (rare.anyTrue()) {
            float[] lanes = x.toArray();
            float[] res = result.toArray();
            for (int i = 0; i < lanes.length; i++) {
                if (rare.laneIsSet(i)) res[i] = (float) Math.exp(lanes[i]);
            }
            result = FloatVector.fromArray(x.species(), res, 0);
        }
        return result;
    }

    private static final float EXP2_LOW = -126f;                 // 2^n stays a normal float down to here

    /**
     * 2^x lane by lane for x <= 127 (attention's scores, kept in base 2 and less than their row's maximum
     * or logsumexp): 2^n 2^r with n = round(x), |r| <= 1/2 and 2^r = e^(r ln 2) by its Taylor series to
     * r^7, within 2 ulp of Math.pow(2, x). Below -126 (including -inf, a masked score) exactly 0; NaN stays
     * NaN. Fewer operations than {@link #exp}: no reduction by ln 2 and no check for large arguments.
     */
    static FloatVector exp2(FloatVector x) {
        FloatVector t = x.add(ROUNDER);
        FloatVector r = x.sub(t.sub(ROUNDER));
        FloatVector r2 = r.mul(r), r4 = r2.mul(r2); // the polynomial as in exp: 1 + r (ln 2 + r q(r))
        FloatVector q = r.fma(x.broadcast(EXP2_C7), x.broadcast(EXP2_C6)).fma(r4,
                r.fma(x.broadcast(EXP2_C5), x.broadcast(EXP2_C4)).fma(r2, r.fma(x.broadcast(EXP2_C3), x.broadcast(EXP2_C2))));
        FloatVector p = q.fma(r, x.broadcast(LN2)).fma(r, x.broadcast(1f));
        // 2^n: t = x + 1.5 * 2^23 holds n = round(x) in its low bits; shifted left by 23 they are n << 23 (the bits of
        // 1.5 * 2^23 shift out), and adding 127 << 23 makes the float 2^n for -126 <= n <= 127 (other lanes are replaced)
        FloatVector twoToN = t.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(127 << 23).reinterpretAsFloats();
        return p.mul(twoToN).blend(0f, x.compare(VectorOperators.LT, EXP2_LOW));
    }

    private static final float LN2 = 0.693147180559945309f;
    // (ln 2)^k / k!
    private static final float EXP2_C2 = (float) (0.2402265069591007), EXP2_C3 = (float) (0.05550410866482158),
            EXP2_C4 = (float) (0.009618129107628477), EXP2_C5 = (float) (0.0013333558146428443),
            EXP2_C6 = (float) (1.5403530393381606e-4), EXP2_C7 = (float) (1.525273380405984e-5);

    /** The sum of the lanes, added in lane order (unlike reduceLanes(ADD), whose order is unspecified). */
    public static float sum(FloatVector v) {
        float[] lanes = v.toArray();
        float s = 0;
        for (float f : lanes) s += f;
        return s;
    }

    /** The sum of the lanes in double, in lane order. */
    public static double sumDouble(FloatVector v) {
        float[] lanes = v.toArray();
        double s = 0;
        for (float f : lanes) s += f;
        return s;
    }
}
