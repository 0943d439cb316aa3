package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;

/** Embedding lookup and its scatter-add backward. */
final class Embedding {
    private Embedding() {}

    static void forward(boolean fast, Tensor table, Tensor ids, Tensor out) { throw new UnsupportedOperationException("not implemented yet"); }

    static void backward(boolean fast, Tensor dOut, Tensor ids, Tensor dTable) { throw new UnsupportedOperationException("not implemented yet"); }
}
