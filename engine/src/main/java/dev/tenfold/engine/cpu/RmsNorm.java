package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;

/** RMSNorm forward and backward. */
final class RmsNorm {
    private RmsNorm() {}

    static void forward(boolean fast, Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) { throw new UnsupportedOperationException("not implemented yet"); }

    static void backward(boolean fast, Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) { throw new UnsupportedOperationException("not implemented yet"); }
}
