package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.Elementwise.F;
import static dev.tenfold.engine.cpu.Elementwise.L;
import static dev.tenfold.engine.cpu.Elementwise.LE;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * SwiGLU gate: out = silu(g) * u with silu(g) = g * sigmoid(g).
 * Backward: silu'(g) = sigmoid(g) * (1 + g * (1 - sigmoid(g))).
 */
final class SwiGlu {
    private SwiGlu() {}

    /** Shared checks: every tensor F32 with the shape of gate; returns the element count. */
    static int check(String op, Tensor gate, String[] names, Tensor... others) {
        return Check.intSize(op, OpChecks.swiglu(op, gate, names, others));
    }

    static void forward(boolean fast, Tensor gate, Tensor up, Tensor out) {
        int n = check("swiglu", gate, new String[] {"up", "out"}, up, out);
        MemorySegment gs = gate.data(), us = up.data(), os = out.data();
        if (!fast) {
            for (long i = 0; i < n; i++) {
                double g = gs.getAtIndex(Tensor.F32, i);
                os.setAtIndex(Tensor.F32, i, (float) (g / (1 + Math.exp(-g)) * us.getAtIndex(Tensor.F32, i)));
            }
            return;
        }
        Parallel.forRange(n, Elementwise.GRAIN, (start, end) -> {
            int i = start;
            for (int upper = start + F.loopBound(end - start); i < upper; i += L) {
                FloatVector g = FloatVector.fromMemorySegment(F, gs, 4L * i, LE);
                FloatVector silu = g.div(VectorMath.exp(g.neg()).add(1f));
                silu.mul(FloatVector.fromMemorySegment(F, us, 4L * i, LE)).intoMemorySegment(os, 4L * i, LE);
            }
            for (; i < end; i++) {
                float g = gs.getAtIndex(Tensor.F32, i);
                os.setAtIndex(Tensor.F32, i, g / (1f + (float) Math.exp(-g)) * us.getAtIndex(Tensor.F32, i));
            }
        });
    }

    static void backward(boolean fast, Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        int n = check("swigluBackward", gate, new String[] {"dOut", "up", "dGate", "dUp"}, dOut, up, dGate, dUp);
        MemorySegment ds = dOut.data(), gs = gate.data(), us = up.data(), dgs = dGate.data(), dus = dUp.data();
        if (!fast) {
            for (long i = 0; i < n; i++) {
                double g = gs.getAtIndex(Tensor.F32, i), u = us.getAtIndex(Tensor.F32, i), d = ds.getAtIndex(Tensor.F32, i);
                double sig = 1 / (1 + Math.exp(-g));
                dgs.setAtIndex(Tensor.F32, i, (float) (d * u * sig * (1 + g * (1 - sig))));
                dus.setAtIndex(Tensor.F32, i, (float) (d * g * sig));
            }
            return;
        }
        Parallel.forRange(n, Elementwise.GRAIN, (start, end) -> {
            int i = start;
            for (int upper = start + F.loopBound(end - start); i < upper; i += L) {
                long off = 4L * i;
                FloatVector g = FloatVector.fromMemorySegment(F, gs, off, LE);
                FloatVector u = FloatVector.fromMemorySegment(F, us, off, LE);
                FloatVector d = FloatVector.fromMemorySegment(F, ds, off, LE);
                FloatVector sig = FloatVector.broadcast(F, 1f).div(VectorMath.exp(g.neg()).add(1f));
                FloatVector dsilu = sig.mul(g.mul(sig.neg().add(1f)).add(1f));
                // Every input is loaded before either store, so the gradients may alias the inputs.
                d.mul(u).mul(dsilu).intoMemorySegment(dgs, off, LE);
                d.mul(g).mul(sig).intoMemorySegment(dus, off, LE);
            }
            for (; i < end; i++) {
                float g = gs.getAtIndex(Tensor.F32, i), u = us.getAtIndex(Tensor.F32, i), d = ds.getAtIndex(Tensor.F32, i);
                float sig = 1f / (1f + (float) Math.exp(-g));
                dgs.setAtIndex(Tensor.F32, i, d * u * (sig * (1f + g * (1f - sig))));
                dus.setAtIndex(Tensor.F32, i, d * g * sig);
            }
        });
    }
}
