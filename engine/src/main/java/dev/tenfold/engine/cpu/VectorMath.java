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

    /** e^x lane by lane, within 2 ulp of Math.exp (lanes outside [-87.3, 88.3] use Math.exp itself). */
    public static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(LOW).min(HIGH);
        FloatVector t = xc.fma(FloatVector.broadcast(x.species(), LOG2E), FloatVector.broadcast(x.species(), ROUNDER));
        FloatVector n = t.sub(ROUNDER);                          // round(x / ln 2)
        FloatVector r = n.fma(FloatVector.broadcast(x.species(), -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(x.species(), -LN2_LO), r); // r in [-ln2/2, ln2/2]
        // e^r by its Taylor series to r^7 (error below 1e-8 relative on this interval), Horner with fma
        FloatVector p = FloatVector.broadcast(x.species(), 1f / 5040);
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f / 720));
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f / 120));
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f / 24));
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f / 6));
        p = p.fma(r, FloatVector.broadcast(x.species(), 0.5f));
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f));
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f));
        IntVector bits = ((IntVector) n.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
        FloatVector result = p.mul(bits.reinterpretAsFloats());
        VectorMask<Float> outside = x.compare(VectorOperators.LT, LOW).or(x.compare(VectorOperators.GT, HIGH))
                .or(x.test(VectorOperators.IS_NAN));
        if (outside.anyTrue()) {
            float[] lanes = x.toArray();
            float[] res = result.toArray();
            for (int i = 0; i < lanes.length; i++) {
                if (outside.laneIsSet(i)) res[i] = (float) Math.exp(lanes[i]);
            }
            result = FloatVector.fromArray(x.species(), res, 0);
        }
        return result;
    }

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
