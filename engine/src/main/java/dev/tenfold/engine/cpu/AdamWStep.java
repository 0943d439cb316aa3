package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;

/** The AdamW update. */
final class AdamWStep {
    private AdamWStep() {}

    static void step(boolean fast, Tensor param, Tensor grad, Tensor m, Tensor v, Backend.AdamW hp, long step) { throw new UnsupportedOperationException("not implemented yet"); }
}
