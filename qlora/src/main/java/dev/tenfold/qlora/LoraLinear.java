package dev.tenfold.qlora;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.Parameter;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A LoRA adapter around a frozen base projection, as PEFT defines it:
 * y = base(x) + s · (x A^T) B^T with A [r, in], B [out, r] and s = alpha / r (alpha / sqrt(r) for
 * rsLoRA). A starts kaiming-uniform (bound 1/sqrt(in), PEFT's init), B at zero, so training starts
 * from the base model exactly. Dropout is not applied here (the recipe uses 0).
 */
public final class LoraLinear implements Linear {
    private final Linear base;
    private final Parameter a;
    private final Parameter b;
    private final float scale;
    private final int rank;

    public LoraLinear(String module, Linear base, int rank, float alpha, boolean rsLora, SplittableRandom rng) {
        if (rank <= 0) throw new IllegalArgumentException("LoRA rank must be positive, got " + rank);
        this.base = base;
        this.rank = rank;
        this.scale = (float) (rsLora ? alpha / Math.sqrt(rank) : alpha / rank);
        long in = base.inFeatures(), out = base.outFeatures();
        Tensor av = Tensor.allocate(DType.F32, rank, in);
        float bound = (float) (1.0 / Math.sqrt(in));
        for (long i = 0; i < av.numel(); i++) av.setFloat(i, (float) ((rng.nextDouble() * 2 - 1) * bound));
        this.a = Parameter.of(module + ".lora_A.weight", av);
        this.b = Parameter.of(module + ".lora_B.weight", Tensor.allocate(DType.F32, out, rank));
    }

    public Linear base() { return base; }

    public Parameter a() { return a; }

    public Parameter b() { return b; }

    public float scale() { return scale; }

    public int rank() { return rank; }

    @Override public long inFeatures() { return base.inFeatures(); }

    @Override public long outFeatures() { return base.outFeatures(); }

    @Override
    public void forward(Backend backend, Tensor x, Tensor y) {
        base.forward(backend, x, y);
        try (Tensor xa = Tensor.allocate(DType.F32, x.dim(0), rank); Tensor sb = scaledB(backend)) {
            backend.matmul(x, false, a.value(), true, xa, false);   // x A^T   [T, r]
            backend.matmul(xa, false, sb, true, y, true);           // += (x A^T) (s B)^T
        }
    }

    @Override
    public void backward(Backend backend, Tensor x, Tensor dy, Tensor dx) {
        base.backward(backend, x, dy, dx);
        long t = x.dim(0);
        try (Tensor xa = Tensor.allocate(DType.F32, t, rank); Tensor dyb = Tensor.allocate(DType.F32, t, rank);
             Tensor sb = scaledB(backend)) {
            backend.matmul(x, false, a.value(), true, xa, false);    // x A^T
            backend.matmul(dy, false, sb, false, dyb, false);        // s dy B       [T, r]
            backend.matmul(dyb, false, a.value(), false, dx, true);  // dx += s dy B A
            backend.matmul(dyb, true, x, false, a.grad(), true);     // dA += s (dy B)^T x
            try (Tensor dB = Tensor.allocate(DType.F32, b.value().shape())) {
                backend.matmul(dy, true, xa, false, dB, false);      // dy^T (x A^T)
                backend.scale(dB, scale, dB);
                backend.add(b.grad(), dB, b.grad());                 // dB += s dy^T x A^T
            }
        }
    }

    private Tensor scaledB(Backend backend) {
        Tensor sb = Tensor.allocate(DType.F32, b.value().shape());
        backend.scale(b.value(), scale, sb);
        return sb;
    }

    @Override
    public void parameters(List<Parameter> out) {
        out.add(a);
        out.add(b);
    }
}
