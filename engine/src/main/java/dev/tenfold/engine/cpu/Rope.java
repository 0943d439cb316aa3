package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;

/** Rotary position embedding (rotate_half) forward and backward. */
final class Rope {
    private Rope() {}

    static void forward(boolean fast, Tensor x, Tensor invFreq, Tensor positions, float attnScale, Tensor out) { throw new UnsupportedOperationException("not implemented yet"); }

    static void backward(boolean fast, Tensor dOut, Tensor invFreq, Tensor positions, float attnScale, Tensor dx) { throw new UnsupportedOperationException("not implemented yet"); }
}
