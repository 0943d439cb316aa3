package dev.tenfold.qlora;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.Parameter;
import java.util.List;

/** A projection whose whole weight trains (full fine-tuning): an F32 master copy and its gradient. */
public final class TrainableLinear implements Linear {
    private final Parameter weight;

    public TrainableLinear(Parameter weight) { this.weight = weight; }

    public Parameter weight() { return weight; }

    @Override public long inFeatures() { return weight.value().dim(1); }

    @Override public long outFeatures() { return weight.value().dim(0); }

    @Override
    public void forward(Backend backend, Tensor x, Tensor y) {
        backend.matmul(x, false, weight.value(), true, y, false);
    }

    @Override
    public void backward(Backend backend, Tensor x, Tensor dy, Tensor dx) {
        if (dx != null) backend.matmul(dy, false, weight.value(), false, dx, false); // dx = dy W
        backend.matmul(dy, true, x, false, weight.grad(), true);     // dW += dy^T x
    }

    @Override
    public void parameters(List<Parameter> out) { out.add(weight); }
}
