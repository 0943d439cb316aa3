package dev.tenfold.engine.cuda;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * Runs every kernel (and the cuBLAS products) once through {@link CudaBackend} against the CPU reference
 * backend on random inputs (never zeros), with the GPU's outputs poisoned (NaN) first so that an element
 * a kernel forgets to write fails. `tenfold doctor` prints the results as a table; the GPU tests run the
 * same cases at awkward sizes ({@link Sizes#AWKWARD}).
 *
 * <p>Each case reports its largest absolute error and its worst error relative to the tolerance
 * (atol * max|expected| + rtol * |expected| per element, max over the tensor; at most 1 passes). Tolerances are f32's
 * where only f32 is involved and bf16's where an operand is rounded to bf16.
 *
 * <p>A sticky CUDA error (a kernel faulted: the context is unusable and every later call fails the same way) stops
 * the run: its case is reported with the error, and the cases after it as not run, so that the first failing
 * kernel is the one named. With CUDA_LAUNCH_BLOCKING=1 the error surfaces at the faulting launch itself.
 */
public final class KernelSelfCheck {
    private KernelSelfCheck() {}

    /** Problem sizes: elementwise length, rows and width, vocabulary/hidden/tokens of the loss, attention shape. */
    public record Sizes(int n, int rows, int width, int vocab, int hidden, int tokens, int batch, int seqQ, int seqK,
                        int heads, int kvHeads, int nf4Blocks) {
        /** Small and quick: what doctor runs. */
        public static final Sizes QUICK = new Sizes(1_003, 5, 67, 300, 24, 9, 2, 37, 45, 4, 2, 300);
        /**
         * Awkward: lengths that are not multiples of any block or tile, a vocabulary spanning two of the loss's
         * chunks, sequences crossing the flash tiles, more blocks than the reduction grid.
         */
        public static final Sizes AWKWARD = new Sizes(300_007, 33, 257, CudaBackend.CE_VOCAB_CHUNK + 77, 40, 37, 2, 131, 200,
                4, 2, 517);
    }

    /** How far a case got: checked (passed or failed), stopped by a sticky CUDA error, or not run after one. */
    public enum Outcome { CHECKED, STICKY_ERROR, NOT_RUN }

    /** One case's outcome; failure is null unless something threw or a value was not finite (or why it did not run). */
    public record Result(String op, String kernels, double maxAbsError, double worstRatio, String failure, Outcome outcome) {
        public Result(String op, String kernels, double maxAbsError, double worstRatio, String failure) {
            this(op, kernels, maxAbsError, worstRatio, failure, Outcome.CHECKED);
        }

        public boolean passed() { return outcome == Outcome.CHECKED && failure == null && worstRatio <= 1.0; }

        public boolean ran() { return outcome != Outcome.NOT_RUN; }
    }

    /** Told about each case as it starts and ends (doctor prints rows as they come, so a hang shows where it is). */
    public interface Listener {
        default void starting(String op, String kernels) {}

        default void finished(Result result) {}
    }

    record Tol(double atol, double rtol) {}

    static final Tol EXACT = new Tol(0, 0);
    static final Tol F32 = new Tol(1e-5, 1e-5);
    static final Tol F32_LOOSE = new Tol(1e-4, 1e-4);
    static final Tol DOUBLE = new Tol(1e-9, 1e-9);
    static final Tol BF16 = new Tol(2e-2, 2e-2);
    static final Tol BF16_GRAD = new Tol(3e-2, 5e-2);

    @FunctionalInterface
    interface Body { void run(Ctx c); }

    record Case(String kernels, Body body) {}

    private static final Map<String, Case> CASES = new LinkedHashMap<>();

    private static void add(String op, String kernels, Body body) { CASES.put(op, new Case(kernels, body)); }

    /** The cases' names, in order. */
    public static List<String> cases() { return List.copyOf(CASES.keySet()); }

    /** Every case at {@code sizes}, until a sticky CUDA error (the cases after it are reported as not run). */
    public static List<Result> run(CudaBackend gpu, Sizes sizes, long seed) { return run(gpu, sizes, seed, new Listener() {}); }

    /** {@link #run(CudaBackend, Sizes, long)}, telling {@code listener} about each case. */
    public static List<Result> run(CudaBackend gpu, Sizes sizes, long seed, Listener listener) {
        List<Result> out = new ArrayList<>();
        String stoppedBy = null;
        for (Map.Entry<String, Case> e : CASES.entrySet()) {
            Result r;
            if (stoppedBy != null) {
                r = new Result(e.getKey(), e.getValue().kernels(), Double.NaN, Double.NaN,
                        "the sticky CUDA error in " + stoppedBy + " made the GPU unusable", Outcome.NOT_RUN);
            } else {
                listener.starting(e.getKey(), e.getValue().kernels());
                r = run(e.getKey(), gpu, sizes, seed);
                if (r.outcome() == Outcome.STICKY_ERROR) stoppedBy = r.op();
            }
            listener.finished(r);
            out.add(r);
        }
        return out;
    }

    /** One case. */
    public static Result run(String op, CudaBackend gpu, Sizes sizes, long seed) {
        Case k = CASES.get(op);
        if (k == null) throw new IllegalArgumentException("no self-check case " + op + "; cases: " + cases());
        Ctx c = new Ctx(gpu, sizes, new SplittableRandom(seed ^ op.hashCode()));
        Result r;
        try {
            k.body().run(c);
            gpu.synchronize();
            r = new Result(op, k.kernels(), c.maxAbs, c.worst, c.failure);
        } catch (RuntimeException | AssertionError e) {
            r = failed(op, k.kernels(), c.maxAbs, e);
        }
        try {
            c.close();
        } catch (RuntimeException e) {
            if (r.passed()) r = failed(op, k.kernels(), c.maxAbs, e);
        }
        return r;
    }

    private static Result failed(String op, String kernels, double maxAbs, Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof CudaException ce && ce.isSticky()) {
                return new Result(op, kernels, maxAbs, Double.POSITIVE_INFINITY, "sticky CUDA error, the GPU is unusable from here on: "
                        + ce.getMessage(), Outcome.STICKY_ERROR);
            }
        }
        return new Result(op, kernels, maxAbs, Double.POSITIVE_INFINITY, e.toString());
    }

    /** The first case that ran and did not pass. */
    public static Optional<Result> firstFailure(List<Result> results) {
        return results.stream().filter(r -> r.ran() && !r.passed()).findFirst();
    }

    /** The table's header line. */
    public static String header() {
        return String.format("%-26s %-72s %12s %10s  %s%n", "op", "kernels", "max |error|", "err/tol", "result");
    }

    /** The start of a case's row: its op and kernels (printed before the case runs). */
    public static String rowStart(String op, String kernels) { return String.format("%-26s %-72s ", op, kernels); }

    /** The rest of a case's row: max |error|, error / tolerance, pass, FAIL (and why) or not run (and why). */
    public static String rowEnd(Result r) {
        if (!r.ran()) return String.format("%12s %10s  not run (%s)%n", "-", "-", r.failure());
        return String.format("%12.3e %10.3f  %s%n", r.maxAbsError(), r.worstRatio(),
                r.passed() ? "pass" : "FAIL" + (r.failure() != null ? " (" + r.failure() + ")" : ""));
    }

    /** The results as a table: op, kernels, max |error|, error / tolerance, pass, FAIL (and why) or not run. */
    public static String table(List<Result> results) {
        StringBuilder sb = new StringBuilder(header());
        for (Result r : results) sb.append(rowStart(r.op(), r.kernels())).append(rowEnd(r));
        return sb.toString();
    }

    // =================================================================== the cases

    static {
        add("add", "tf_add_f32", c -> {
            Tensor a = c.rand(c.s.n()), b = c.rand(c.s.n());
            Tensor e = c.hostOut(DType.F32, c.s.n()), o = c.poison(DType.F32, c.s.n());
            c.ref.add(a, b, e);
            c.gpu.add(c.dev(a), c.dev(b), o);
            c.compare("out", e, o, EXACT);
        });
        add("mul", "tf_mul_f32", c -> {
            Tensor a = c.rand(c.s.n()), b = c.rand(c.s.n());
            Tensor e = c.hostOut(DType.F32, c.s.n()), o = c.poison(DType.F32, c.s.n());
            c.ref.mul(a, b, e);
            c.gpu.mul(c.dev(a), c.dev(b), o);
            c.compare("out", e, o, EXACT);
        });
        add("scale", "tf_scale_f32", c -> {
            Tensor a = c.rand(c.s.n());
            Tensor e = c.hostOut(DType.F32, c.s.n()), o = c.poison(DType.F32, c.s.n());
            c.ref.scale(a, -1.7f, e);
            c.gpu.scale(c.dev(a), -1.7f, o);
            c.compare("out", e, o, EXACT);
        });
        add("cast f32<->bf16", "tf_cast_f32_bf16 tf_cast_bf16_f32", c -> castRoundTrip(c, DType.F32, DType.BF16));
        add("cast f32<->f16", "tf_cast_f32_f16 tf_cast_f16_f32", c -> castRoundTrip(c, DType.F32, DType.F16));
        add("cast bf16<->f16", "tf_cast_bf16_f16 tf_cast_f16_bf16", c -> castRoundTrip(c, DType.BF16, DType.F16));
        add("sum", "tf_sum_partial_f32 tf_sum_final_f64", c -> {
            Tensor x = c.rand(c.s.n());
            c.compare("sum", c.ref.sum(x), c.gpu.sum(c.dev(x)), DOUBLE);
        });
        add("sumOfSquares, globalNorm", "tf_sumsq_partial_f32 tf_sum_final_f64", c -> {
            Tensor x = c.rand(c.s.n()), y = c.rand(c.s.rows(), c.s.width()), empty = c.rand(0);
            c.compare("sumOfSquares", c.ref.sumOfSquares(x), c.gpu.sumOfSquares(c.dev(x)), DOUBLE);
            c.compare("globalNorm", c.ref.globalNorm(List.of(x, empty, y)),
                    c.gpu.globalNorm(List.of(c.dev(x), c.dev(empty), c.dev(y))), DOUBLE);
        });
        add("max", "tf_max_partial_f32 tf_max_final_f32", c -> {
            Tensor x = c.rand(c.s.n());
            c.compare("max", c.ref.max(x), c.gpu.max(c.dev(x)), EXACT);
        });
        add("embedding", "tf_embedding_fwd_f32 tf_embedding_fwd_bf16", c -> {
            int v = c.s.rows() * 3, h = c.s.width(), t = c.s.tokens();
            Tensor ids = c.ints(v, t);
            for (DType dt : new DType[] {DType.F32, DType.BF16}) {
                Tensor table = c.rand(dt, 1f, v, h);
                Tensor e = c.hostOut(DType.F32, t, h), o = c.poison(DType.F32, t, h);
                c.ref.embedding(table, ids, e);
                c.gpu.embedding(c.dev(table), c.dev(ids), o);
                c.compare("out (" + dt + " table)", e, o, EXACT);
            }
        });
        add("embeddingBackward", "tf_embedding_bwd_f32", c -> {
            int v = 7, h = c.s.width(), t = c.s.tokens() * 3; // few rows: ids repeat, the adds collide
            Tensor ids = c.ints(v, t), dOut = c.rand(t, h), dTable = c.rand(v, h);
            Tensor d = c.dev(dTable);
            c.ref.embeddingBackward(dOut, ids, dTable);
            c.gpu.embeddingBackward(c.dev(dOut), c.dev(ids), d);
            c.compare("dTable", dTable, d, F32);
        });
        add("rmsnorm", "tf_rmsnorm_fwd_f32", c -> {
            int r = c.s.rows(), h = c.s.width();
            Tensor x = c.rand(r, h), w = c.rand(h);
            Tensor e = c.hostOut(DType.F32, r, h), er = c.hostOut(DType.F32, r), o = c.poison(DType.F32, r, h), or = c.poison(DType.F32, r);
            c.ref.rmsnorm(x, w, 1e-5f, e, er);
            c.gpu.rmsnorm(c.dev(x), c.dev(w), 1e-5f, o, or);
            c.compare("out", e, o, F32);
            c.compare("rstd", er, or, F32);
        });
        add("rmsnormBackward", "tf_rmsnorm_bwd_f32 tf_rmsnorm_dweight_f32", c -> {
            int r = c.s.rows(), h = c.s.width();
            Tensor x = c.rand(r, h), w = c.rand(h), dOut = c.rand(r, h), dw = c.rand(h);
            Tensor y = c.hostOut(DType.F32, r, h), rstd = c.hostOut(DType.F32, r);
            c.ref.rmsnorm(x, w, 1e-5f, y, rstd);
            Tensor e = c.hostOut(DType.F32, r, h), o = c.poison(DType.F32, r, h), dwDev = c.dev(dw);
            c.gpu.rmsnormBackward(c.dev(dOut), c.dev(x), c.dev(w), c.dev(rstd), o, dwDev);
            c.ref.rmsnormBackward(dOut, x, w, rstd, e, dw);
            c.compare("dx", e, o, F32);
            c.compare("dWeight", dw, dwDev, F32);
        });
        add("rope, ropeBackward", "tf_rope_f32", c -> {
            int b = c.s.batch(), t = c.s.seqQ(), heads = c.s.heads(), d = 64;
            Tensor x = c.rand(b, t, heads, d), inv = invFreq(c, d), pos = c.ints(5000, (long) b * t);
            for (boolean backward : new boolean[] {false, true}) {
                Tensor e = c.hostOut(DType.F32, b, t, heads, d), o = c.poison(DType.F32, b, t, heads, d);
                if (backward) {
                    c.ref.ropeBackward(x, inv, pos, 0.9f, e);
                    c.gpu.ropeBackward(c.dev(x), c.dev(inv), c.dev(pos), 0.9f, o);
                } else {
                    c.ref.rope(x, inv, pos, 0.9f, e);
                    c.gpu.rope(c.dev(x), c.dev(inv), c.dev(pos), 0.9f, o);
                }
                c.compare(backward ? "dx" : "out", e, o, F32);
            }
        });
        add("rope q and k in place", "tf_rope_qk_f32", c -> {
            int rows = c.s.seqQ(), hq = c.s.heads(), hkv = c.s.kvHeads(), d = 128;
            Tensor q = c.rand(rows, hq, d), k = c.rand(rows, hkv, d), inv = invFreq(c, d), pos = c.ints(5000, rows);
            Tensor eq = c.hostOut(DType.F32, rows, hq, d), ek = c.hostOut(DType.F32, rows, hkv, d);
            c.ref.rope(q, inv, pos, 1f, eq);
            c.ref.rope(k, inv, pos, 1f, ek);
            Tensor dq = c.dev(q), dk = c.dev(k);
            c.gpu.ropeInPlace(dq, dk, c.dev(inv), c.dev(pos), 1f, false);
            c.compare("q", eq, dq, F32);
            c.compare("k", ek, dk, F32);
        });
        add("swiglu", "tf_swiglu_fwd_f32", c -> {
            Tensor g = c.rand(DType.F32, 6f, c.s.n()), u = c.rand(c.s.n());
            Tensor e = c.hostOut(DType.F32, c.s.n()), o = c.poison(DType.F32, c.s.n());
            c.ref.swiglu(g, u, e);
            c.gpu.swiglu(c.dev(g), c.dev(u), o);
            c.compare("out", e, o, F32_LOOSE);
        });
        add("swigluBackward", "tf_swiglu_bwd_f32", c -> {
            int n = c.s.n();
            Tensor g = c.rand(DType.F32, 6f, n), u = c.rand(n), dOut = c.rand(n);
            Tensor eg = c.hostOut(DType.F32, n), eu = c.hostOut(DType.F32, n), og = c.poison(DType.F32, n), ou = c.poison(DType.F32, n);
            c.ref.swigluBackward(dOut, g, u, eg, eu);
            c.gpu.swigluBackward(c.dev(dOut), c.dev(g), c.dev(u), og, ou);
            c.compare("dGate", eg, og, F32_LOOSE);
            c.compare("dUp", eu, ou, F32_LOOSE);
        });
        add("softmax", "tf_softmax_fwd_f32", c -> {
            int r = c.s.rows(), w = c.s.width() * 3;
            Tensor x = c.rand(DType.F32, 8f, r, w);
            Tensor e = c.hostOut(DType.F32, r, w), o = c.poison(DType.F32, r, w);
            c.ref.softmax(x, e);
            c.gpu.softmax(c.dev(x), o);
            c.compare("out", e, o, F32_LOOSE);
        });
        add("softmaxBackward", "tf_softmax_bwd_f32", c -> {
            int r = c.s.rows(), w = c.s.width() * 3;
            Tensor x = c.rand(DType.F32, 8f, r, w), dOut = c.rand(r, w), y = c.hostOut(DType.F32, r, w);
            c.ref.softmax(x, y);
            Tensor e = c.hostOut(DType.F32, r, w), o = c.poison(DType.F32, r, w);
            c.ref.softmaxBackward(dOut, y, e);
            c.gpu.softmaxBackward(c.dev(dOut), c.dev(y), o);
            c.compare("dx", e, o, F32_LOOSE);
        });
        add("crossEntropy (F32 weight)", "tf_fill_f32 tf_ce_stats_f32 tf_ce_loss_f32 tf_ce_grad_f32 cublasGemmEx", c -> crossEntropy(c, DType.F32));
        add("crossEntropy (BF16 weight)", "tf_ce_* tf_cast_f32_bf16 cublasGemmEx (bf16)", c -> crossEntropy(c, DType.BF16));
        add("adamw", "tf_adamw_f32", c -> {
            int n = c.s.n();
            Tensor p = c.rand(n), g = c.rand(n), m = c.rand(DType.F32, 0.1f, n), v = c.rand(DType.F32, 0.01f, n);
            for (long i = 0; i < n; i++) v.setFloat(i, Math.abs(v.getFloat(i)) + 1e-4f);
            Tensor dp = c.dev(p), dm = c.dev(m), dv = c.dev(v);
            Backend.AdamW hp = new Backend.AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
            c.gpu.adamw(dp, c.dev(g), dm, dv, hp, 3);
            c.ref.adamw(p, g, m, v, hp, 3);
            c.compare("param", p, dp, F32);
            c.compare("m", m, dm, F32);
            c.compare("v", v, dv, F32);
        });
        add("dequantizeNf4", "tf_nf4_dequant_f32 tf_nf4_dequant_bf16", c -> {
            int blocks = c.s.nf4Blocks(), n = blocks * 64;
            Tensor packed = c.own(Tensor.allocate(DType.U8, n / 2));
            for (long i = 0; i < n / 2; i++) packed.data().set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) c.rng.nextInt(256));
            Tensor absmax = c.rand(blocks);
            Tensor absmaxU8 = c.own(Tensor.allocate(DType.U8, blocks));
            for (long i = 0; i < blocks; i++) absmaxU8.data().set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) c.rng.nextInt(256));
            Tensor nestedAbsmax = c.rand((blocks + 255) / 256), code = c.rand(256);
            for (DType dt : new DType[] {DType.F32, DType.BF16}) {
                for (boolean nested : new boolean[] {false, true}) {
                    Tensor e = c.hostOut(dt, n), o = c.poison(dt, n);
                    if (nested) {
                        c.ref.dequantizeNf4(packed, absmaxU8, nestedAbsmax, code, 0.25f, e);
                        c.gpu.dequantizeNf4(c.dev(packed), c.dev(absmaxU8), c.dev(nestedAbsmax), c.dev(code), 0.25f, o);
                    } else {
                        c.ref.dequantizeNf4(packed, absmax, null, null, 0f, e);
                        c.gpu.dequantizeNf4(c.dev(packed), c.dev(absmax), null, null, 0f, o);
                    }
                    c.compare("out (" + dt + (nested ? ", double-quantized)" : ")"), e, o, EXACT);
                }
            }
        });
        add("matmul F32", "cublasGemmEx cublasGemmStridedBatchedEx (f32)", c -> matmuls(c, DType.F32, DType.F32, F32));
        add("matmul BF16", "cublasGemmEx cublasGemmStridedBatchedEx (bf16)", c -> matmuls(c, DType.BF16, DType.BF16, BF16));
        add("matmul F32 x BF16", "tf_cast_f32_bf16 cublasGemmEx (bf16)", c -> matmuls(c, DType.F32, DType.BF16, BF16));
        add("attention d64", "tf_flash_fwd_d64 tf_flash_bwd_pre tf_flash_bwd_d64 tf_flash_bwd_post", c -> attention(c, 64));
        add("attention d128", "tf_flash_fwd_d128 tf_flash_bwd_pre tf_flash_bwd_d128 tf_flash_bwd_post", c -> attention(c, 128));
    }

    private static void castRoundTrip(Ctx c, DType a, DType b) {
        Tensor x = c.rand(a, 100f, c.s.n());
        Tensor e = c.hostOut(b, c.s.n()), o = c.poison(b, c.s.n());
        c.ref.cast(x, e);
        c.gpu.cast(c.dev(x), o);
        c.compare(a + " -> " + b, e, o, EXACT);
        Tensor y = c.rand(b, 100f, c.s.n());
        Tensor e2 = c.hostOut(a, c.s.n()), o2 = c.poison(a, c.s.n());
        c.ref.cast(y, e2);
        c.gpu.cast(c.dev(y), o2);
        c.compare(b + " -> " + a, e2, o2, EXACT);
    }

    private static Tensor invFreq(Ctx c, int d) {
        Tensor inv = c.own(Tensor.allocate(DType.F32, d / 2));
        for (int i = 0; i < d / 2; i++) inv.setFloat(i, (float) (1 / Math.pow(500_000, 2.0 * i / d)));
        return inv;
    }

    private static void crossEntropy(Ctx c, DType weightType) {
        int t = c.s.tokens(), h = c.s.hidden(), v = c.s.vocab();
        Tensor hidden = c.rand(t, h), weight = c.rand(weightType, 1f, v, h), targets = c.ints(v, t);
        targets.setInt(0, -100);
        targets.setInt(t / 2, -100);
        Tensor dWeight = c.rand(DType.F32, 0.01f, v, h), dwDev = c.dev(dWeight);
        Tensor eh = c.hostOut(DType.F32, t, h), oh = c.poison(DType.F32, t, h);
        Backend.LossSum expected = c.ref.crossEntropy(hidden, weight, targets, 0.5f, eh, dWeight);
        Backend.LossSum actual = c.gpu.crossEntropy(c.dev(hidden), c.dev(weight), c.dev(targets), 0.5f, oh, dwDev);
        Tol tol = weightType == DType.BF16 ? BF16 : F32_LOOSE;
        c.compare("loss", expected.sum(), actual.sum(), tol);
        c.compare("count", expected.count(), actual.count(), EXACT);
        c.compare("dHidden", eh, oh, tol);
        c.compare("dWeight", dWeight, dwDev, tol);
    }

    private static void matmuls(Ctx c, DType ta, DType tb, Tol tol) {
        int m = c.s.rows() + 2, n = c.s.width() / 2 + 1, k = c.s.width(), batch = 3;
        for (boolean transA : new boolean[] {false, true}) {
            for (boolean transB : new boolean[] {false, true}) {
                Tensor a = transA ? c.rand(ta, 1f, k, m) : c.rand(ta, 1f, m, k);
                Tensor b = transB ? c.rand(tb, 1f, n, k) : c.rand(tb, 1f, k, n);
                Tensor e = c.hostOut(DType.F32, m, n), o = c.poison(DType.F32, m, n);
                c.ref.matmul(a, transA, b, transB, e, false);
                c.gpu.matmul(c.dev(a), transA, c.dev(b), transB, o, false);
                c.compare("out (transA=" + transA + ", transB=" + transB + ")", e, o, tol);
            }
        }
        // batched a with a shared b (folded into one product, and strided with transA), batched b, accumulation
        for (boolean transA : new boolean[] {false, true}) {
            Tensor a = transA ? c.rand(ta, 1f, batch, k, m) : c.rand(ta, 1f, batch, m, k), b = c.rand(tb, 1f, k, n);
            Tensor e = c.hostOut(DType.F32, batch, m, n), o = c.poison(DType.F32, batch, m, n);
            c.ref.matmul(a, transA, b, false, e, false);
            c.gpu.matmul(c.dev(a), transA, c.dev(b), false, o, false);
            c.compare("out (batched a, shared b, transA=" + transA + ")", e, o, tol);
        }
        Tensor a = c.rand(ta, 1f, batch, m, k), b = c.rand(tb, 1f, batch, n, k), acc = c.rand(batch, m, n);
        Tensor o = c.dev(acc);
        c.ref.matmul(a, false, b, true, acc, true);
        c.gpu.matmul(c.dev(a), false, c.dev(b), true, o, true);
        c.compare("out (batched a and b, accumulate)", acc, o, tol);
    }

    private static void attention(Ctx c, int d) {
        int b = c.s.batch(), tq = c.s.seqQ(), tk = c.s.seqK(), hq = c.s.heads(), hkv = c.s.kvHeads();
        float scale = (float) (1 / Math.sqrt(d));
        Tensor q = c.rand(b, tq, hq, d), k = c.rand(b, tk, hkv, d), v = c.rand(b, tk, hkv, d), dOut = c.rand(b, tq, hq, d);
        Tensor eo = c.hostOut(DType.F32, b, tq, hq, d), el = c.hostOut(DType.F32, b, hq, tq);
        c.ref.attention(q, k, v, scale, eo, el);
        Tensor dq = c.dev(q), dk = c.dev(k), dv = c.dev(v), oo = c.poison(DType.F32, b, tq, hq, d), ol = c.poison(DType.F32, b, hq, tq);
        c.gpu.attention(dq, dk, dv, scale, oo, ol);
        c.compare("out", eo, oo, BF16);
        c.compare("lse", el, ol, BF16);
        Tensor eq = c.hostOut(DType.F32, b, tq, hq, d), ek = c.hostOut(DType.F32, b, tk, hkv, d), ev = c.hostOut(DType.F32, b, tk, hkv, d);
        c.ref.attentionBackward(dOut, q, k, v, eo, el, scale, eq, ek, ev);
        Tensor gq = c.poison(DType.F32, b, tq, hq, d), gk = c.poison(DType.F32, b, tk, hkv, d), gv = c.poison(DType.F32, b, tk, hkv, d);
        c.gpu.attentionBackward(c.dev(dOut), dq, dk, dv, oo, ol, scale, gq, gk, gv);
        c.compare("dq", eq, gq, BF16_GRAD);
        c.compare("dk", ek, gk, BF16_GRAD);
        c.compare("dv", ev, gv, BF16_GRAD);
    }

    // =================================================================== the case context

    /** Inputs, outputs and the running comparison of one case; closes every tensor it made. */
    static final class Ctx implements AutoCloseable {
        final CudaBackend gpu;
        final CpuBackend ref = CpuBackend.reference();
        final Sizes s;
        final SplittableRandom rng;
        final List<Tensor> owned = new ArrayList<>();
        double maxAbs, worst;
        String failure;

        Ctx(CudaBackend gpu, Sizes s, SplittableRandom rng) {
            this.gpu = gpu;
            this.s = s;
            this.rng = rng;
        }

        Tensor own(Tensor t) {
            owned.add(t);
            return t;
        }

        /** F32 host tensor, uniform in [-1, 1). */
        Tensor rand(long... shape) { return rand(DType.F32, 1f, shape); }

        /** Host tensor of a float dtype, uniform in [-amplitude, amplitude). */
        Tensor rand(DType dtype, float amplitude, long... shape) {
            Tensor t = own(Tensor.allocate(dtype, shape));
            for (long i = 0; i < t.numel(); i++) t.setFloat(i, (float) ((rng.nextDouble() * 2 - 1) * amplitude));
            return t;
        }

        /** I32 host tensor of values in [0, bound). */
        Tensor ints(int bound, long... shape) {
            Tensor t = own(Tensor.allocate(DType.I32, shape));
            for (long i = 0; i < t.numel(); i++) t.setInt(i, rng.nextInt(bound));
            return t;
        }

        /** A device copy. */
        Tensor dev(Tensor host) { return own(gpu.toDevice(host)); }

        /** A device tensor full of NaN. */
        Tensor poison(DType dtype, long... shape) {
            Tensor h = hostOut(dtype, shape);
            return dev(h);
        }

        /** A host tensor full of NaN (the reference's output). */
        Tensor hostOut(DType dtype, long... shape) {
            Tensor t = own(Tensor.allocate(dtype, shape));
            t.fill(Float.NaN);
            return t;
        }

        /** Compares a host expectation with a device (or host) result. */
        void compare(String what, Tensor expected, Tensor actual, Tol tol) {
            Tensor a = actual.device().isCpu() ? actual : own(gpu.toHost(actual));
            if (!Arrays.equals(expected.shape(), a.shape())) {
                fail(what + ": shape " + Arrays.toString(a.shape()) + " != " + Arrays.toString(expected.shape()));
                return;
            }
            compare(what, expected.toFloatArray(), a.toFloatArray(), tol);
        }

        void compare(String what, double expected, double actual, Tol tol) {
            compare(what, new double[] {expected}, new double[] {actual}, tol);
        }

        private void compare(String what, float[] e, float[] a, Tol tol) {
            double[] de = new double[e.length], da = new double[a.length];
            for (int i = 0; i < e.length; i++) {
                de[i] = e[i];
                da[i] = a[i];
            }
            compare(what, de, da, tol);
        }

        private void compare(String what, double[] e, double[] a, Tol tol) {
            double scale = 0; // atol is relative to the tensor's largest magnitude
            for (double x : e) if (Double.isFinite(x)) scale = Math.max(scale, Math.abs(x));
            if (scale == 0) scale = 1;
            for (int i = 0; i < e.length; i++) {
                if (!Double.isFinite(a[i]) && Double.isFinite(e[i])) {
                    fail(what + "[" + i + "] = " + a[i] + ", expected " + e[i]);
                    return;
                }
                double err = Math.abs(e[i] - a[i]), bound = tol.atol() * scale + tol.rtol() * Math.abs(e[i]);
                maxAbs = Math.max(maxAbs, err);
                double ratio = err == 0 ? 0 : bound == 0 ? Double.POSITIVE_INFINITY : err / bound;
                if (ratio > worst) {
                    worst = ratio;
                    if (ratio > 1) failure = what + "[" + i + "] = " + a[i] + ", expected " + e[i];
                }
            }
        }

        private void fail(String message) {
            worst = Double.POSITIVE_INFINITY;
            if (failure == null) failure = message;
        }

        @Override
        public void close() {
            for (Tensor t : owned) t.close();
        }
    }
}
