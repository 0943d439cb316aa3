package dev.tenfold.qlora;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.Parameter;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A LoRA adapter around a frozen base projection, as PEFT defines it:
 * y = base(x) + s · (x A^T) B^T with A [r, in], B [out, r] and s = alpha / r (alpha / sqrt(r) for
 * rsLoRA). A starts kaiming-uniform (bound 1/sqrt(in), PEFT's init), B at zero, so training starts
 * from the base model exactly.
 *
 * <p>Dropout (PEFT applies it to the adapter's input only: B A dropout(x)) is active while a
 * dropout seed is set, i.e. during training. Its mask is a pure function of (seed, module, element),
 * so the recomputation of a checkpointed layer and its backward see exactly the forward's mask,
 * and a resumed run draws the same masks as an uninterrupted one. On a device the mask is drawn on
 * the host and uploaded (one transfer per adapter call while dropout is on).
 *
 * <p>A and B, their gradients and all scratch live on the device of the backend the adapter is
 * made for (A is drawn on the host and uploaded once).
 */
public final class LoraLinear implements Linear {
    private final Linear base;
    private final LoraConfig config;
    private final Parameter a;
    private final Parameter b;
    private final float scale;
    private final int rank;
    private final long moduleHash;
    private float dropout;
    private long dropoutSeed;
    private boolean dropoutActive;

    /** An adapter of {@code config}'s rank, scale and dropout on {@code base}; A drawn from {@code rng}. */
    public LoraLinear(Backend backend, String module, Linear base, LoraConfig config, SplittableRandom rng) {
        this.base = base;
        this.config = config;
        this.rank = config.rank();
        this.scale = config.scale();
        this.dropout = config.dropout();
        this.moduleHash = mix(module.hashCode() * 0x9E3779B97F4A7C15L);
        long in = base.inFeatures(), out = base.outFeatures();
        Tensor av = Tensor.allocate(DType.F32, rank, in);
        float bound = (float) (1.0 / Math.sqrt(in));
        for (long i = 0; i < av.numel(); i++) av.setFloat(i, (float) ((rng.nextDouble() * 2 - 1) * bound));
        if (Transfers.needsUpload(backend, av)) {
            try (Tensor host = av) {
                av = Transfers.upload(backend, host);
            }
        }
        this.a = Parameter.of(backend, module + ".lora_A.weight", av);
        this.b = Parameter.of(backend, module + ".lora_B.weight", backend.allocate(DType.F32, out, rank));
    }

    public Linear base() { return base; }

    public Parameter a() { return a; }

    public Parameter b() { return b; }

    public float scale() { return scale; }

    public int rank() { return rank; }

    /** The configuration the adapter was made from. */
    public LoraConfig config() { return config; }

    /** Another dropout probability on the adapter's input (tests). */
    void setDropout(float p) {
        if (!(p >= 0 && p < 1)) throw new IllegalArgumentException("LoRA dropout must be in [0, 1), got " + p);
        dropout = p;
    }

    public float dropout() { return dropout; }

    /** Turns dropout on with masks drawn from {@code seed} (one seed per sequence and step). */
    public void setDropoutSeed(long seed) {
        dropoutSeed = seed;
        dropoutActive = true;
    }

    /** Turns dropout off (evaluation, generation). */
    public void clearDropoutSeed() { dropoutActive = false; }

    private boolean dropping() { return dropoutActive && dropout > 0; }

    /**
     * x with dropout applied: each element kept with probability 1-p and scaled by 1/(1-p), or
     * zeroed. On the host directly; on a device as x * mask (see {@link #deviceMask}).
     */
    private Tensor dropped(Backend backend, Tensor x, Tensor deviceMask) {
        if (deviceMask != null) {
            Tensor out = backend.allocate(DType.F32, x.shape());
            backend.mul(x, deviceMask, out);
            return out;
        }
        Tensor out = Tensor.allocate(DType.F32, x.shape());
        float keepScale = 1f / (1f - dropout);
        long n = x.numel();
        for (long i = 0; i < n; i++) out.setFloat(i, kept(i) ? x.getFloat(i) * keepScale : 0f);
        return out;
    }

    /** For x on a device: the dropout mask (1/(1-p) where kept, 0 where dropped), drawn on the host and uploaded; null on the host. */
    private Tensor deviceMask(Backend backend, Tensor x) {
        if (x.device().isCpu()) return null;
        float keepScale = 1f / (1f - dropout);
        try (Tensor m = Tensor.allocate(DType.F32, x.shape())) {
            for (long i = 0; i < m.numel(); i++) m.setFloat(i, kept(i) ? keepScale : 0f);
            return Transfers.upload(backend, m);
        }
    }

    private boolean kept(long i) {
        long h = mix(dropoutSeed ^ moduleHash ^ (i * 0xBF58476D1CE4E5B9L));
        return (h >>> 11) * 0x1.0p-53 >= dropout;
    }

    /** SplitMix64's finaliser: a good 64-bit mix. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override public long inFeatures() { return base.inFeatures(); }

    @Override public long outFeatures() { return base.outFeatures(); }

    /** Whether a pass merges the adapter into the base weight: chosen by shape, or forced by tests. */
    enum Merge { AUTO, ALWAYS, NEVER }

    private Merge merge = Merge.AUTO;

    /** Forces the merged (or the unmerged) forward and input gradient where they apply (tests). */
    void setMerge(Merge m) { merge = m; }

    /**
     * Whether a pass over t rows computes y = x (W + s B A)^T and dx = dy (W + s B A) with the adapter merged into
     * a copy of the base weight, instead of the base product plus the adapter's own passes (x A^T, then y +=
     * (x A^T)(s B)^T; dx += (dy s B) A). Both are the same sums up to rounding; merged, the adapter's rank-r passes
     * over the t rows (memory-bound: 10% of a CPU step at hidden 256 and 1,024 tokens) give way to forming the
     * merged weight, whose cost grows with in x out instead of t: it pays from about t = max(in, out). Only for a
     * dense base on the host, and without dropout (which applies to the adapter's input alone).
     */
    private boolean merges(Backend backend, long t) {
        if (merge == Merge.NEVER || dropping() || !(base instanceof DenseLinear) || !backend.device().isCpu()) return false;
        return merge == Merge.ALWAYS || t >= Math.max(base.inFeatures(), base.outFeatures());
    }

    /** W + s B A, F32 [out, in]: the base weight with the adapter merged in. */
    private Tensor mergedWeight(Backend backend, Tensor sb) {
        Tensor w = ((DenseLinear) base).weight();
        Tensor merged = backend.allocate(DType.F32, w.shape());
        backend.matmul(sb, false, a.value(), false, merged, false); // s B A
        backend.add(w, merged, merged);
        return merged;
    }

    @Override
    public void forward(Backend backend, Tensor x, Tensor y) {
        if (merges(backend, x.dim(0))) {
            try (Tensor sb = scaledB(backend); Tensor w = mergedWeight(backend, sb)) {
                backend.matmul(x, false, w, true, y, false);
            }
            return;
        }
        base.forward(backend, x, y);
        boolean drop = dropping();
        Tensor mask = drop ? deviceMask(backend, x) : null;
        Tensor xd = drop ? dropped(backend, x, mask) : x;
        try (Tensor xa = backend.allocate(DType.F32, x.dim(0), rank); Tensor sb = scaledB(backend)) {
            backend.matmul(xd, false, a.value(), true, xa, false);  // x A^T   [T, r]
            backend.matmul(xa, false, sb, true, y, true);           // += (x A^T) (s B)^T
        } finally {
            if (xd != x) xd.close();
            if (mask != null) mask.close();
        }
    }

    @Override
    public void backward(Backend backend, Tensor x, Tensor dy, Tensor dx) {
        long t = x.dim(0);
        boolean merged = dx != null && merges(backend, t);
        if (!merged) base.backward(backend, x, dy, dx);
        boolean drop = dropping();
        Tensor mask = drop ? deviceMask(backend, x) : null;
        Tensor xd = drop ? dropped(backend, x, mask) : x;
        try (Tensor xa = backend.allocate(DType.F32, t, rank); Tensor dyb = backend.allocate(DType.F32, t, rank);
             Tensor sb = scaledB(backend)) {
            backend.matmul(xd, false, a.value(), true, xa, false);   // x A^T
            backend.matmul(dy, false, sb, false, dyb, false);        // s dy B       [T, r]
            if (dx != null) inputGradient(backend, dy, dyb, sb, merged, mask, dx); // null: the adapter's gradients only
            backend.matmul(dyb, true, xd, false, a.grad(), true);    // dA += s (dy B)^T x
            try (Tensor dB = backend.allocate(DType.F32, b.value().shape())) {
                backend.matmul(dy, true, xa, false, dB, false);      // dy^T (x A^T)
                backend.scale(dB, scale, dB);
                backend.add(b.grad(), dB, b.grad());                 // dB += s dy^T x A^T
            }
        } finally {
            if (xd != x) xd.close();
            if (mask != null) mask.close();
        }
    }

    /** dx = dy (W + s B A), the base's part already in dx unless merged; with dropout, the adapter's part through the mask. */
    private void inputGradient(Backend backend, Tensor dy, Tensor dyb, Tensor sb, boolean merged, Tensor mask, Tensor dx) {
        if (merged) {
            try (Tensor w = mergedWeight(backend, sb)) {
                backend.matmul(dy, false, w, false, dx, false);  // dx = dy (W + s B A)
            }
        } else if (dropping()) {
            // dx += mask/(1-p) * (s dy B A): the dropout's own backward
            try (Tensor d = backend.allocate(DType.F32, dx.shape())) {
                backend.matmul(dyb, false, a.value(), false, d, false);
                if (mask != null) {
                    backend.mul(d, mask, d);
                    backend.add(dx, d, dx);
                } else {
                    float keepScale = 1f / (1f - dropout);
                    for (long i = 0; i < d.numel(); i++) if (kept(i)) dx.setFloat(i, dx.getFloat(i) + d.getFloat(i) * keepScale);
                }
            }
        } else {
            backend.matmul(dyb, false, a.value(), false, dx, true); // dx += s dy B A
        }
    }

    private Tensor scaledB(Backend backend) {
        Tensor sb = backend.allocate(DType.F32, b.value().shape());
        backend.scale(b.value(), scale, sb);
        return sb;
    }

    @Override
    public void parameters(List<Parameter> out) {
        out.add(a);
        out.add(b);
    }
}
