package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;

/** Elementwise add, multiply, scale and casts: reference and fast (Vector API) paths. */
final class Elementwise {
    private Elementwise() {}

    static void add(boolean fast, Tensor a, Tensor b, Tensor out) { throw new UnsupportedOperationException("not implemented yet"); }

    static void mul(boolean fast, Tensor a, Tensor b, Tensor out) { throw new UnsupportedOperationException("not implemented yet"); }

    static void scale(boolean fast, Tensor a, float s, Tensor out) { throw new UnsupportedOperationException("not implemented yet"); }

    static void cast(boolean fast, Tensor src, Tensor dst) { throw new UnsupportedOperationException("not implemented yet"); }
}
