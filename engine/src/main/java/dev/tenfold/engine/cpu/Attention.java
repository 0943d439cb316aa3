package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;

/** Causal grouped-query attention, flash-style: forward and backward. */
final class Attention {
    private Attention() {}

    static void forward(boolean fast, Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) { throw new UnsupportedOperationException("not implemented yet"); }

    static void backward(boolean fast, Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, float scale,
                         Tensor dq, Tensor dk, Tensor dv) { throw new UnsupportedOperationException("not implemented yet"); }
}
