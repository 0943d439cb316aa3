package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;

/** Softmax over the last dimension, forward and backward. */
final class Softmax {
    private Softmax() {}

    static void forward(boolean fast, Tensor x, Tensor out) { throw new UnsupportedOperationException("not implemented yet"); }

    static void backward(boolean fast, Tensor dOut, Tensor y, Tensor dx) { throw new UnsupportedOperationException("not implemented yet"); }
}
