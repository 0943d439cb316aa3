package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import java.util.List;

/** A frozen dense weight, F32 or BF16 [out, in]; may be a view into a memory-mapped checkpoint. */
public final class DenseLinear implements Linear {
    private final Tensor weight;

    public DenseLinear(Tensor weight) {
        Check.dtype("linear", "weight", weight, DType.F32, DType.BF16);
        Check.rank("linear", "weight", weight, 2);
        this.weight = weight;
    }

    public Tensor weight() { return weight; }

    @Override public long inFeatures() { return weight.dim(1); }

    @Override public long outFeatures() { return weight.dim(0); }

    @Override
    public Linear to(Backend backend, List<AutoCloseable> owned) {
        if (!Transfers.needsUpload(backend, weight)) return this;
        Tensor w = Transfers.upload(backend, weight);
        owned.add(w);
        return new DenseLinear(w);
    }

    @Override
    public void forward(Backend backend, Tensor x, Tensor y) {
        backend.matmul(x, false, weight, true, y, false);
    }

    @Override
    public void backward(Backend backend, Tensor x, Tensor dy, Tensor dx) {
        if (dx != null) backend.matmul(dy, false, weight, false, dx, false); // frozen: only the input gradient
    }
}
