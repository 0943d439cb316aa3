package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;

/** SwiGLU gate forward and backward. */
final class SwiGlu {
    private SwiGlu() {}

    static void forward(boolean fast, Tensor gate, Tensor up, Tensor out) { throw new UnsupportedOperationException("not implemented yet"); }

    static void backward(boolean fast, Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) { throw new UnsupportedOperationException("not implemented yet"); }
}
