package dev.tenfold.engine;

import java.util.List;

/**
 * The op set. One interface, implemented by the CPU reference backend (plain loops, double
 * accumulation: the oracle), the fast CPU backend (Vector API, all cores) and, later, CUDA.
 *
 * <p>Conventions: row-major tensors; outputs are passed in (memory is planned by the caller) and
 * fully overwritten unless the method says it accumulates; an output may be the same tensor as
 * an input only where the method says so. Gradients of parameters and optimizer state are F32;
 * weights may be BF16 where noted. Activations are F32, or BF16 where a training step stores them
 * so (a GPU's lean step): the ops marked "activations F32 or BF16" take either, each tensor on its
 * own, and compute in F32 (a BF16 input widened exactly, a BF16 output rounded once to nearest
 * even), so their result is the F32 op's rounded. A wrong dtype or shape is an
 * {@link IllegalArgumentException} naming the op and the shapes.
 */
public interface Backend {

    String name();

    // ------------------------------------------------------------------ device and memory

    /** The device this backend computes on; its ops take tensors on this device only. */
    default Device device() { return Device.CPU; }

    /** A zero-filled tensor on this backend's device that owns its memory (freed on close). */
    default Tensor allocate(DType dtype, long... shape) { return Tensor.allocate(dtype, shape); }

    /**
     * dst = src: same dtype and element count (shapes may differ), each on the host or on this
     * backend's device, so this is also host-to-device and device-to-host transfer. When it returns,
     * dst may be read and src may be changed.
     */
    default void copy(Tensor src, Tensor dst) {
        OpChecks.copy(src, dst);
        if (!src.device().isCpu() || !dst.device().isCpu()) {
            throw new IllegalArgumentException("copy: " + name() + " handles host tensors only, got "
                    + src.describe() + " into " + dst.describe());
        }
        java.lang.foreign.MemorySegment.copy(src.data(), 0, dst.data(), 0, src.byteSize());
    }

    /**
     * A strided copy of bytes: {@code rows} blocks of {@code widthBytes} bytes, block i from byte
     * {@code srcOffsetBytes + i * srcPitchBytes} of src to byte {@code dstOffsetBytes + i * dstPitchBytes} of dst
     * (the re-layouts of context-parallel attention: head groups, sequence chunks). src and dst: any dtypes
     * (bytes are moved), both on the host or both on this backend's device (use {@link #copy} between them),
     * different memory. Pitches are at least the width; every block lies inside its tensor. Ordered with
     * the ops as {@link #copy} is. The default copies host tensors with a loop of
     * {@link java.lang.foreign.MemorySegment#copy}.
     */
    default void copy2d(Tensor src, long srcOffsetBytes, long srcPitchBytes, Tensor dst, long dstOffsetBytes, long dstPitchBytes,
                        long widthBytes, long rows) {
        OpChecks.copy2d(src, srcOffsetBytes, srcPitchBytes, dst, dstOffsetBytes, dstPitchBytes, widthBytes, rows);
        if (!src.device().isCpu() || !dst.device().isCpu()) {
            throw new IllegalArgumentException("copy2d: " + name() + " handles host tensors only, got "
                    + src.describe() + " into " + dst.describe());
        }
        OpChecks.copy2dOnHost(src.data(), srcOffsetBytes, srcPitchBytes, dst.data(), dstOffsetBytes, dstPitchBytes, widthBytes, rows);
    }

    /** Blocks until every op queued on this backend's device has finished (a no-op on the CPU). */
    default void synchronize() {}

    /**
     * Gives the memory this backend keeps for reuse back to the device (a GPU's caching allocator keeps freed
     * blocks); a no-op elsewhere. After it, what is allocated next starts from what is in use, as in a new process.
     */
    default void releaseCachedMemory() {}

    /**
     * Brings this backend's kernels to their steady speed before a run's first step, once per process,
     * and returns the seconds it took (0 where there is nothing to do: a GPU's kernels are compiled ahead).
     * On the CPU the JIT needs to see each kernel run many times before its vector code is compiled;
     * without this, the first steps of a run are many times slower than the later ones.
     */
    default double warmUp() { return 0; }

    /**
     * The dtype a training step stores its activations in unless told otherwise: F32 where memory is
     * plentiful and the step is the reference (the CPU), BF16 on a GPU.
     */
    default DType activationDtype() { return DType.F32; }

    /**
     * A zero-filled host tensor for {@link #copyAsync} to and from this device, freed on close: pinned
     * (page-locked) memory on a GPU, so that copies run asynchronously at full speed; ordinary host
     * memory elsewhere.
     */
    default Tensor allocateHost(DType dtype, long... shape) { return Tensor.allocate(dtype, shape); }

    /**
     * dst = src as {@link #copy}, one of them on the host (from {@link #allocateHost}) and the other on this
     * device, started after the work queued so far and possibly still running when this returns: a GPU
     * copies on a second stream while the ops queued next compute. Until {@link Pending#await} the copy
     * may still be reading src and writing dst: neither may be touched by ops or the host, nor freed
     * before a {@link #synchronize}. The default copies at once.
     */
    default Pending copyAsync(Tensor src, Tensor dst) {
        copy(src, dst);
        return Pending.DONE;
    }

    /** A copy started by {@link #copyAsync}. */
    interface Pending {
        /** One that is already done. */
        Pending DONE = () -> {};

        /**
         * Orders every op queued after this call behind the copy (a GPU waits on the device, not the host);
         * after it, the copy's tensors may be used again. Idempotent.
         */
        void await();
    }

    /**
     * Sets every element of t (F32, on the host or this backend's device) to {@code value}; the
     * trainer zeroes gradients with it. The default works for any backend: a host tensor is filled
     * in place, a device tensor through {@link #copy} from a host block, a megabyte at a time; a
     * device backend overrides it with a kernel (or a memset for zero).
     */
    default void fill(Tensor t, float value) {
        Check.dtype("fill", "t", t, DType.F32);
        if (t.device().isCpu()) {
            t.fill(value);
            return;
        }
        long n = t.numel(), chunk = Math.min(n, 1 << 18);
        if (n == 0) return;
        try (Tensor block = Tensor.allocate(DType.F32, chunk)) {
            block.fill(value);
            Tensor flat = t.view(n);
            for (long i = 0; i < n; i += chunk) {
                long m = Math.min(chunk, n - i);
                copy(block.slice(0, m), flat.slice(i, i + m));
            }
        }
    }

    // ------------------------------------------------------------------ NF4

    /**
     * Dequantizes a bitsandbytes NF4 weight of n elements: two 4-bit codes per byte (element 2j in the
     * high nibble of packed[j]), one absmax per 64-element block; out[e] = NF4[code(e)] * absmax(e / 64).
     * packed U8 [n / 2]; absmax F32 [n / 64], or U8 [n / 64] when double-quantized, in which case
     * absmax(i) = nestedCode[absmax[i]] * nestedAbsmax[i / 256] + offset (float ops in this order,
     * as bitsandbytes), nestedAbsmax F32 [ceil(blocks / 256)], nestedCode F32 [256]; both null
     * otherwise. out F32 or BF16 (round to nearest even) with n elements, any shape.
     */
    void dequantizeNf4(Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode, float offset, Tensor out);

    // ------------------------------------------------------------------ matrix product

    /**
     * {@code out = op(a) · op(b)} (or {@code out += ...} when {@code accumulate}), f32 accumulation.
     * {@code a}: [M, K] ([K, M] when transA) or batched [batch, M, K]; {@code b}: [K, N] ([N, K] when
     * transB) or batched [batch, K, N] with the same batch as {@code a}; a rank-2 {@code b} is shared by
     * every batch of {@code a}. {@code a} and {@code b}: F32 or BF16, independently. {@code out}:
     * [M, N] or [batch, M, N], F32 or BF16 (computed in f32 and rounded once, {@code accumulate} included).
     */
    void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate);

    // ------------------------------------------------------------------ elementwise (out may alias an input)

    /** out = a + b, same shapes; activations F32 or BF16. */
    void add(Tensor a, Tensor b, Tensor out);

    /** out = a * b elementwise, same shapes; activations F32 or BF16. */
    void mul(Tensor a, Tensor b, Tensor out);

    /** out = a * s, F32. */
    void scale(Tensor a, float s, Tensor out);

    /** dst = src converted between F32, BF16 and F16 (round to nearest even), same shapes. */
    void cast(Tensor src, Tensor dst);

    // ------------------------------------------------------------------ embedding

    /** out[t, :] = table[ids[t], :]. table [V, H] F32 or BF16; ids I32 of any shape, T elements; out [T, H] F32 or BF16. */
    void embedding(Tensor table, Tensor ids, Tensor out);

    /** dTable[ids[t], :] += dOut[t, :] (accumulates). dOut [T, H] F32; dTable [V, H] F32. */
    void embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable);

    // ------------------------------------------------------------------ RMSNorm

    /**
     * out = x * rstd * weight with rstd = 1 / sqrt(mean(x^2) + eps) per row. x, out [..., H], activations
     * F32 or BF16; weight [H] F32; rstd (saved for the backward) F32 with one element per row.
     */
    void rmsnorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd);

    /** dx written; dWeight accumulated when not null. Shapes as in {@link #rmsnorm}; dOut, x, dx F32 or BF16. */
    void rmsnormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight);

    // ------------------------------------------------------------------ RoPE

    /**
     * Rotary embedding, Hugging Face "rotate_half" convention: for each row position p and pair
     * (j, j + d/2), angle = f32(p * invFreq[j]), c = cos(angle) * attnScale, s = sin(angle) * attnScale,
     * out[j] = x[j] c - x[j+d/2] s, out[j+d/2] = x[j+d/2] c + x[j] s.
     * x, out: [T, heads, d] or [B, T, heads, d], activations F32 or BF16 (out may alias x); invFreq [d/2] F32;
     * positions I32 with B*T elements (explicit ids, so any scaling variant or skipped positions work);
     * attnScale multiplies cos and sin (1 except for yarn/longrope).
     */
    void rope(Tensor x, Tensor invFreq, Tensor positions, float attnScale, Tensor out);

    /** The transpose of {@link #rope}: rotation by the negative angle. dx may alias dOut. */
    void ropeBackward(Tensor dOut, Tensor invFreq, Tensor positions, float attnScale, Tensor dx);

    // ------------------------------------------------------------------ SwiGLU

    /** out = silu(gate) * up, silu(g) = g / (1 + exp(-g)). Same shapes; activations F32 or BF16. */
    void swiglu(Tensor gate, Tensor up, Tensor out);

    /** dGate = dOut * up * silu'(gate); dUp = dOut * silu(gate). Both written. */
    void swigluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp);

    // ------------------------------------------------------------------ softmax

    /** Softmax over the last dimension (numerically stable). out may alias x. */
    void softmax(Tensor x, Tensor out);

    /** dx = y * (dOut - sum(dOut * y)) per row, where y is the softmax output. */
    void softmaxBackward(Tensor dOut, Tensor y, Tensor dx);

    // ------------------------------------------------------------------ attention

    /**
     * Causal attention with grouped-query heads, flash-style: nothing of size Tq x Tk is allocated.
     * q [B, Tq, Hq, d]; k, v [B, Tk, Hkv, d] with Tk >= Tq and Hq % Hkv == 0 (query head h reads kv
     * head h / (Hq / Hkv)). Query i sits at absolute position Tk - Tq + i and sees keys j <= that
     * position (so Tq = Tk is ordinary causal training, Tq = 1 is decoding against a KV cache).
     * out [B, Tq, Hq, d]; q, k, v and out activations F32 or BF16; lse [B, Hq, Tq] F32 receives the
     * natural-log logsumexp of the scaled scores of each query row (saved for the backward).
     */
    void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse);

    /**
     * Backward of {@link #attention}: D = rowsum(dOut * out); P recomputed from lse;
     * dv = P^T dOut; dP = dOut v^T; dS = P (dP - D); dq = scale dS k; dk = scale dS^T q; dk and dv
     * summed over each kv group. dq, dk, dv written (same shapes as q, k, v); every tensor but lse F32 or BF16.
     */
    void attentionBackward(Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, float scale,
                           Tensor dq, Tensor dk, Tensor dv);

    // ------------------------------------------------------------------ loss

    /**
     * Cross-entropy of the logits hidden · weight^T against targets, computed in vocabulary (and token)
     * chunks so that nothing of size T x V is allocated. hidden [T, H] and dHidden activations F32 or
     * BF16; weight [V, H] F32 or BF16;
     * targets I32 [T], -100 = ignored, any other value must be in [0, V).
     * When dHidden is not null it is written with gradScale * d(lossSum)/d(hidden); when dWeight
     * (F32 [V, H]) is not null, gradScale * d(lossSum)/d(weight) is added to it.
     * Returns the summed loss (natural log) and the count of non-ignored targets.
     */
    LossSum crossEntropy(Tensor hidden, Tensor weight, Tensor targets, float gradScale, Tensor dHidden, Tensor dWeight);

    /** Summed loss and the number of targets it covers; mean() = sum / count (NaN when count is 0). */
    record LossSum(double sum, long count) {
        public double mean() { return count == 0 ? Double.NaN : sum / count; }
    }

    // ------------------------------------------------------------------ optimizer

    /**
     * One AdamW step (PyTorch's decoupled weight decay), F32 everywhere, same shapes:
     * p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     * p -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps). {@code step} counts from 1.
     */
    void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp, long step);

    /** AdamW hyper-parameters. */
    record AdamW(float lr, float beta1, float beta2, float eps, float weightDecay) {
        public AdamW withLr(float newLr) { return new AdamW(newLr, beta1, beta2, eps, weightDecay); }
    }

    // ------------------------------------------------------------------ reductions

    /** Sum of all elements (F32), accumulated in double. */
    double sum(Tensor x);

    /** Largest element (F32); NaN if any element is NaN. */
    float max(Tensor x);

    /** Sum of squares of all elements (F32), accumulated in double. */
    double sumOfSquares(Tensor x);

    /** sqrt of the summed squares of all the tensors: the global norm used for gradient clipping. */
    default double globalNorm(List<Tensor> tensors) {
        double s = 0;
        for (Tensor t : tensors) s += sumOfSquares(t);
        return Math.sqrt(s);
    }
}
