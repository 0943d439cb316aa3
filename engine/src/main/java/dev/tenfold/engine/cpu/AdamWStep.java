package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.Elementwise.F;
import static dev.tenfold.engine.cpu.Elementwise.L;
import static dev.tenfold.engine.cpu.Elementwise.LE;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Check;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The AdamW update as PyTorch's torch.optim.AdamW does it: decoupled weight decay first
 * (p *= 1 - lr*wd), then the moments, then p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
 * with bc1 = 1 - b1^step, bc2 = 1 - b2^step (scalars in double, as Python computes them).
 */
final class AdamWStep {
    private AdamWStep() {}

    /** Shared checks; returns the element count. */
    static int check(Tensor param, Tensor grad, Tensor m, Tensor v, Backend.AdamW hp, long step) {
        return Check.intSize("adamw", OpChecks.adamw(param, grad, m, v, hp, step));
    }

    /**
     * The hyper-parameters arrive as floats; PyTorch holds them as Python (double) numbers. Reading
     * 0.999f back as the double 0.999 (its shortest decimal) makes 1 - b2 and the bias corrections
     * match PyTorch's instead of carrying the float's 1e-8 representation error, magnified in 1 - b2.
     */
    static double decimal(float f) { return Double.parseDouble(Float.toString(f)); }

    static void step(boolean fast, Tensor param, Tensor grad, Tensor m, Tensor v, Backend.AdamW hp, long step) {
        int n = check(param, grad, m, v, hp, step);
        MemorySegment ps = param.data(), gs = grad.data(), ms = m.data(), vs = v.data();
        double b1 = decimal(hp.beta1()), b2 = decimal(hp.beta2()), lr = decimal(hp.lr()), eps = decimal(hp.eps());
        double bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
        double decay = 1 - lr * decimal(hp.weightDecay());
        if (!fast) {
            for (long i = 0; i < n; i++) {
                double g = gs.getAtIndex(Tensor.F32, i);
                double p = ps.getAtIndex(Tensor.F32, i) * decay;
                double mi = b1 * ms.getAtIndex(Tensor.F32, i) + (1 - b1) * g;
                double vi = b2 * vs.getAtIndex(Tensor.F32, i) + (1 - b2) * g * g;
                p -= lr * (mi / bc1) / (Math.sqrt(vi / bc2) + eps);
                ms.setAtIndex(Tensor.F32, i, (float) mi);
                vs.setAtIndex(Tensor.F32, i, (float) vi);
                ps.setAtIndex(Tensor.F32, i, (float) p);
            }
            return;
        }
        float fb1 = (float) b1, fb2 = (float) b2, c1 = (float) (1 - b1), c2 = (float) (1 - b2);
        float fdecay = (float) decay, stepSize = (float) (lr / bc1), sqrtBc2 = (float) Math.sqrt(bc2), feps = (float) eps;
        Parallel.forRange(n, Elementwise.GRAIN, (start, end) -> {
            int i = start;
            for (int upper = start + F.loopBound(end - start); i < upper; i += L) {
                long off = 4L * i;
                FloatVector g = FloatVector.fromMemorySegment(F, gs, off, LE);
                FloatVector mi = FloatVector.fromMemorySegment(F, ms, off, LE).mul(fb1).add(g.mul(c1));
                FloatVector vi = FloatVector.fromMemorySegment(F, vs, off, LE).mul(fb2).add(g.mul(g).mul(c2));
                FloatVector denom = vi.lanewise(VectorOperators.SQRT).div(sqrtBc2).add(feps);
                FloatVector p = FloatVector.fromMemorySegment(F, ps, off, LE).mul(fdecay);
                p.sub(mi.div(denom).mul(stepSize)).intoMemorySegment(ps, off, LE);
                mi.intoMemorySegment(ms, off, LE);
                vi.intoMemorySegment(vs, off, LE);
            }
            for (; i < end; i++) {
                float g = gs.getAtIndex(Tensor.F32, i);
                float mi = ms.getAtIndex(Tensor.F32, i) * fb1 + g * c1;
                float vi = vs.getAtIndex(Tensor.F32, i) * fb2 + g * g * c2;
                float denom = (float) Math.sqrt(vi) / sqrtBc2 + feps;
                ps.setAtIndex(Tensor.F32, i, ps.getAtIndex(Tensor.F32, i) * fdecay - stepSize * (mi / denom));
                ms.setAtIndex(Tensor.F32, i, mi);
                vs.setAtIndex(Tensor.F32, i, vi);
            }
        });
    }
}
