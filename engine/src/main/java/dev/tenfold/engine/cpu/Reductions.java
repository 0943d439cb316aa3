package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;

/** Sum, max and sum of squares. */
final class Reductions {
    private Reductions() {}

    static double sum(boolean fast, Tensor x) { throw new UnsupportedOperationException("not implemented yet"); }

    static float max(boolean fast, Tensor x) { throw new UnsupportedOperationException("not implemented yet"); }

    static double sumOfSquares(boolean fast, Tensor x) { throw new UnsupportedOperationException("not implemented yet"); }
}
