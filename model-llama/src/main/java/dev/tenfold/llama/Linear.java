package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;
import java.util.List;

/**
 * A linear layer y = x W^T as Hugging Face stores it (W is [out, in]). The model holds its
 * projections through this interface so that qlora can swap a dense base for an NF4 one and wrap
 * either with a LoRA adapter, without the model graph knowing.
 */
public interface Linear {

    long inFeatures();

    long outFeatures();

    /** y = x W^T (+ whatever the implementation adds). x [T, in] F32, y [T, out] F32 (written). */
    void forward(Backend backend, Tensor x, Tensor y);

    /**
     * Backward: dx = dy W (written) and, for trainable parameters, their gradients accumulated.
     * x is the forward input (recomputed or saved by the caller). dx null: the input's gradient is not
     * wanted (the first layer under a frozen embedding), only the parameters' gradients.
     */
    void backward(Backend backend, Tensor x, Tensor dy, Tensor dx);

    /** Adds this layer's trainable parameters (none for a frozen base) to {@code out}. */
    default void parameters(java.util.List<Parameter> out) {}

    /**
     * This projection with its weights where {@code backend} computes: this when they are there
     * already, else a copy whose weights were uploaded once (the device tensors go to
     * {@code owned}, closed with the model). The model calls it when it is made for a device.
     */
    default Linear to(Backend backend, List<AutoCloseable> owned) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot move its weights to " + backend.device());
    }
}
