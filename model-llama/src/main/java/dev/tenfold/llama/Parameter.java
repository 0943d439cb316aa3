package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
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

    /** A host parameter holding {@code value} (taken over) with a zero gradient. */
    public static Parameter of(String name, Tensor value) {
        return new Parameter(name, value, Tensor.allocate(DType.F32, value.shape()));
    }

    /** A parameter holding {@code value} (taken over, on the backend's device) with a zero gradient beside it. */
    public static Parameter of(Backend backend, String name, Tensor value) {
        return new Parameter(name, value, backend.allocate(DType.F32, value.shape()));
    }

    /** Zeroes the gradient of a host parameter (the trainer uses {@code backend.fill}, which works on any device). */
    public void zeroGrad() { grad.fill(0f); }

    @Override
    public void close() {
        value.close();
        grad.close();
    }
}
