package dev.tenfold.llama;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;

/**
 * A trainable tensor and its gradient, both F32 and of the same shape, under the Hugging Face name
 * it is saved as (e.g. {@code model.layers.0.self_attn.q_proj.lora_A.weight}). Backward passes add
 * into {@link #grad()}; the optimizer reads it and the trainer zeroes it.
 */
public record Parameter(String name, Tensor value, Tensor grad) implements AutoCloseable {
    public Parameter {
        if (value.dtype() != DType.F32 || grad.dtype() != DType.F32
                || !java.util.Arrays.equals(value.shape(), grad.shape())) {
            throw new IllegalArgumentException("parameter " + name + ": value and grad must be F32 of one shape, got "
                    + value.describe() + " and " + grad.describe());
        }
    }

    /** A parameter holding {@code value} (taken over) with a zero gradient. */
    public static Parameter of(String name, Tensor value) {
        return new Parameter(name, value, Tensor.allocate(DType.F32, value.shape()));
    }

    public void zeroGrad() { grad.fill(0f); }

    @Override
    public void close() {
        value.close();
        grad.close();
    }
}
