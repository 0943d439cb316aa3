package dev.tenfold.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * Activations stored in BF16, arithmetic in F32: the ops of a training step whose activations are
 * BF16 (its checkpoints and layer working set on a GPU) computed by the F32 op on F32 copies of a
 * few rows at a time. Each BF16 input is widened exactly, each BF16 output rounded once (to nearest
 * even), so an op's result is the F32 op's result rounded: what a kernel that loads bf16, computes
 * in f32 and stores bf16 gives. F32 arguments are used in place (sliced, never copied).
 *
 * <p>The F32 copies are temporaries of at most {@link #CHUNK_ELEMENTS} elements each (32 MiB), one
 * per BF16 argument, made by the backend's allocator when the op starts and freed when it returns,
 * so the memory an op needs beyond its arguments is bounded whatever the sequence length. A backend
 * routes an op here when one of its tensors is BF16 ({@link #any}) and it has no BF16 kernel for
 * it; the F32 op it is given then sees F32 tensors only.
 *
 * <p>Ops that reduce over rows (the RMSNorm weight gradient, the loss's weight gradient) add each
 * chunk's part in turn, so their sums may differ from the unchunked F32 op's in the last bits.
 */
public final class Widened {
    /** Elements of one F32 temporary: 8 Mi (32 MiB). */
    public static final long CHUNK_ELEMENTS = 8L << 20;

    /** How temporaries are made (the backend's allocator; their contents are overwritten before use). */
    @FunctionalInterface
    public interface Allocator {
        Tensor allocate(DType dtype, long... shape);
    }

    private final Backend ops;
    private final Allocator allocator;
    private final long chunkElements;
    private final boolean skipRepeats;

    /** @param ops the backend whose F32 ops run on the widened chunks */
    public Widened(Backend ops, Allocator allocator) { this(ops, allocator, CHUNK_ELEMENTS); }

    /** As above with a smaller chunk (tests make several chunks of small tensors). */
    public Widened(Backend ops, Allocator allocator, long chunkElements) { this(ops, allocator, chunkElements, false); }

    private Widened(Backend ops, Allocator allocator, long chunkElements, boolean skipRepeats) {
        if (chunkElements < 1) throw new IllegalArgumentException("chunk must hold at least one element, got " + chunkElements);
        this.ops = ops;
        this.allocator = allocator;
        this.chunkElements = chunkElements;
        this.skipRepeats = skipRepeats;
    }

    /** One that only checks the arguments (dtypes, shapes) and computes nothing: for a backend that plans memory. */
    public static Widened checksOnly() { return new Widened(null, null, CHUNK_ELEMENTS); }

    /**
     * For a backend that computes nothing and only counts memory: the chunks between the second and the last are
     * skipped, since each full chunk makes the same calls with the same sizes as the one before it (the second
     * shows the allocator's cache serving them again; the last may be shorter).
     */
    public static Widened countingOnly(Backend ops, Allocator allocator) { return new Widened(ops, allocator, CHUNK_ELEMENTS, true); }

    /** Whether any of the (non-null) tensors is BF16: the ops then go through this class. */
    public static boolean any(Tensor... ts) {
        for (Tensor t : ts) if (t != null && t.dtype() == DType.BF16) return true;
        return false;
    }

    // ------------------------------------------------------------------ the ops

    /** add or mul: each of a, b, out F32 or BF16, one shape; out may be a or b. */
    public void add(Tensor a, Tensor b, Tensor out) { elementwise("add", a, b, out, true); }

    public void mul(Tensor a, Tensor b, Tensor out) { elementwise("mul", a, b, out, false); }

    private void elementwise(String op, Tensor a, Tensor b, Tensor out, boolean add) {
        storage(op, "a", a);
        storage(op, "b", b);
        storage(op, "out", out);
        OpChecks.sameShape(op, "a", a, "b", b);
        OpChecks.sameShape(op, "a", a, "out", out);
        long n = a.numel();
        run(n, new Arg[] {in(a, 1), in(b, 1), out(out, 1)}, (c, r0, r1) -> {
            if (add) ops.add(c[0], c[1], c[2]);
            else ops.mul(c[0], c[1], c[2]);
        });
    }

    /** rmsnorm with x and out each F32 or BF16 (rstd and weight F32). */
    public void rmsnorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        String op = "rmsnorm";
        long[] d = rows(op, x, out, "out");
        Check.dtype(op, "rstd", rstd, DType.F32);
        if (rstd.numel() != d[0]) throw Check.fail(op, "rstd must hold one element per row (" + d[0] + ")", x, rstd);
        Tensor r = rstd.view(d[0]);
        run(d[0], new Arg[] {in(x, d[1]), out(out, d[1])},
                (c, r0, r1) -> ops.rmsnorm(c[0], weight, eps, c[1], r.slice(r0, r1)));
    }

    /** rmsnormBackward with dOut, x and dx each F32 or BF16; dWeight (F32) accumulates chunk by chunk. */
    public void rmsnormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        String op = "rmsnormBackward";
        long[] d = rows(op, x, dOut, "dOut");
        Check.notNull(op, "dx", dx);
        storage(op, "dx", dx);
        OpChecks.sameShape(op, "x", x, "dx", dx);
        Check.dtype(op, "rstd", rstd, DType.F32);
        if (rstd.numel() != d[0]) throw Check.fail(op, "rstd must hold one element per row (" + d[0] + ")", x, rstd);
        Tensor r = rstd.view(d[0]);
        run(d[0], new Arg[] {in(dOut, d[1]), in(x, d[1]), out(dx, d[1])},
                (c, r0, r1) -> ops.rmsnormBackward(c[0], c[1], weight, r.slice(r0, r1), c[2], dWeight));
    }

    /** rope (or, with {@code backward}, ropeBackward) with x and out each F32 or BF16; out may be x. */
    public void rope(Tensor x, Tensor invFreq, Tensor positions, float attnScale, Tensor out, boolean backward) {
        String op = backward ? "ropeBackward" : "rope";
        String xName = backward ? "dOut" : "x", outName = backward ? "dx" : "out";
        storage(op, xName, x);
        storage(op, outName, out);
        Check.rank(op, xName, x, 3, 4);
        OpChecks.sameShape(op, xName, x, outName, out);
        long heads = x.dim(-2), hd = x.dim(-1), rows = x.numel() / Math.max(1, heads * hd);
        Check.dtype(op, "positions", positions, DType.I32);
        if (positions.numel() != rows) throw Check.fail(op, "positions must hold one id per row of " + xName + " (" + rows + ")", x, positions);
        Tensor pos = positions.view(rows);
        run(rows, new Arg[] {in(x, heads * hd), out(out, heads * hd)}, (c, r0, r1) -> {
            Tensor cx = c[0].view(r1 - r0, heads, hd), co = c[1].view(r1 - r0, heads, hd);
            if (backward) ops.ropeBackward(cx, invFreq, pos.slice(r0, r1), attnScale, co);
            else ops.rope(cx, invFreq, pos.slice(r0, r1), attnScale, co);
        });
    }

    /** swiglu with each tensor F32 or BF16, one shape. */
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        String op = "swiglu";
        same(op, new String[] {"gate", "up", "out"}, gate, up, out);
        run(gate.numel(), new Arg[] {in(gate, 1), in(up, 1), out(out, 1)}, (c, r0, r1) -> ops.swiglu(c[0], c[1], c[2]));
    }

    /** swigluBackward with each tensor F32 or BF16, one shape. */
    public void swigluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        String op = "swigluBackward";
        same(op, new String[] {"dOut", "gate", "up", "dGate", "dUp"}, dOut, gate, up, dGate, dUp);
        run(gate.numel(), new Arg[] {in(dOut, 1), in(gate, 1), in(up, 1), out(dGate, 1), out(dUp, 1)},
                (c, r0, r1) -> ops.swigluBackward(c[0], c[1], c[2], c[3], c[4]));
    }

    /** embedding into an out of F32 or BF16 (the table F32 or BF16, as the F32 op takes it). */
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        String op = "embedding";
        Check.dtype(op, "ids", ids, DType.I32);
        storage(op, "out", out);
        Check.rank(op, "table", table, 2);
        long t = ids.numel(), h = table.dim(1);
        if (out.rank() != 2 || out.dim(0) != t || out.dim(1) != h) {
            throw Check.fail(op, "out must be [" + t + ", " + h + "] for " + t + " ids into a table of width " + h, table, ids, out);
        }
        Tensor flatIds = ids.view(t);
        run(t, new Arg[] {out(out, h)}, (c, r0, r1) -> ops.embedding(table, flatIds.slice(r0, r1), c[0]));
    }

    /**
     * crossEntropy with hidden and dHidden each F32 or BF16: the F32 loss of each chunk of rows, the
     * sums and counts added, dWeight accumulated chunk by chunk.
     */
    public Backend.LossSum crossEntropy(Tensor hidden, Tensor weight, Tensor targets, float gradScale, Tensor dHidden,
                                        Tensor dWeight) {
        String op = "crossEntropy";
        storage(op, "hidden", hidden);
        Check.rank(op, "hidden", hidden, 2);
        long t = hidden.dim(0), h = hidden.dim(1);
        Check.dtype(op, "targets", targets, DType.I32);
        if (targets.numel() != t) throw Check.fail(op, "targets must hold one id per row of hidden (" + t + ")", hidden, targets);
        if (dHidden != null) {
            storage(op, "dHidden", dHidden);
            Check.shape(op, "dHidden", dHidden, t, h);
        }
        Tensor y = targets.view(t);
        double[] sum = {0};
        long[] count = {0};
        Arg[] args = dHidden == null ? new Arg[] {in(hidden, h)} : new Arg[] {in(hidden, h), out(dHidden, h)};
        run(t, args, (c, r0, r1) -> {
            Backend.LossSum part = ops.crossEntropy(c[0], weight, y.slice(r0, r1), gradScale, dHidden == null ? null : c[1], dWeight);
            sum[0] += part.sum();
            count[0] += part.count();
        });
        return new Backend.LossSum(sum[0], count[0]);
    }

    /**
     * matmul into a BF16 out (a and b as the F32 op takes them): chunks of out's rows when a is a
     * rank-2 [M, K] operand; otherwise one F32 copy of the whole out. With {@code accumulate} the
     * BF16 out is widened first, so out = round(out + a · b).
     */
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        String op = "matmul";
        storage(op, "out", out);
        Check.notNull(op, "a", a);
        if (a.rank() == 2 && !transA && out.rank() == 2) {
            long m = out.dim(0), n = out.dim(1), k = a.dim(1);
            if (a.dim(0) != m) throw Check.fail(op, "out must have a's rows", a, out);
            run(m, new Arg[] {through(a, k), accumulate ? inOut(out, n) : out(out, n)},
                    (c, r0, r1) -> ops.matmul(c[0], false, b, transB, c[1], accumulate));
        } else {
            long n = out.numel();
            run(1, new Arg[] {accumulate ? inOut(out, n) : out(out, n)},
                    (c, r0, r1) -> ops.matmul(a, transA, b, transB, c[0].view(out.shape()), accumulate));
        }
    }

    /** attention with q, k, v, out F32 or BF16: one F32 copy of each (for backends without BF16 attention kernels). */
    public void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) {
        String op = "attention";
        same(op, new String[] {"q", "out"}, q, out);
        storage(op, "k", k);
        storage(op, "v", v);
        run(1, new Arg[] {in(q, q.numel()), in(k, k.numel()), in(v, v.numel()), out(out, out.numel())},
                (c, r0, r1) -> ops.attention(c[0].view(q.shape()), c[1].view(k.shape()), c[2].view(v.shape()), scale,
                        c[3].view(out.shape()), lse));
    }

    /** attentionBackward with every tensor but lse F32 or BF16: one F32 copy of each. */
    public void attentionBackward(Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, float scale,
                                  Tensor dq, Tensor dk, Tensor dv) {
        String op = "attentionBackward";
        same(op, new String[] {"q", "dOut", "out", "dq"}, q, dOut, out, dq);
        same(op, new String[] {"k", "v", "dk", "dv"}, k, v, dk, dv);
        run(1, new Arg[] {in(dOut, dOut.numel()), in(q, q.numel()), in(k, k.numel()), in(v, v.numel()), in(out, out.numel()),
                        out(dq, dq.numel()), out(dk, dk.numel()), out(dv, dv.numel())},
                (c, r0, r1) -> ops.attentionBackward(c[0].view(dOut.shape()), c[1].view(q.shape()), c[2].view(k.shape()),
                        c[3].view(v.shape()), c[4].view(out.shape()), lse, scale, c[5].view(dq.shape()), c[6].view(dk.shape()),
                        c[7].view(dv.shape())));
    }

    // ------------------------------------------------------------------ the chunking

    /** An argument: its tensor, the elements of one of its rows, whether it is read, written, or only sliced. */
    private record Arg(Tensor t, long width, boolean read, boolean written, boolean widen) {}

    private static Arg in(Tensor t, long width) { return new Arg(t, width, true, false, t.dtype() == DType.BF16); }

    private static Arg out(Tensor t, long width) { return new Arg(t, width, false, true, t.dtype() == DType.BF16); }

    private static Arg inOut(Tensor t, long width) { return new Arg(t, width, true, true, t.dtype() == DType.BF16); }

    /** Sliced by rows but never widened (an operand the F32 op takes in BF16 as it is). */
    private static Arg through(Tensor t, long width) { return new Arg(t, width, true, false, false); }

    @FunctionalInterface
    private interface Body {
        void run(Tensor[] chunk, long r0, long r1);
    }

    /**
     * Runs {@code body} on chunks of rows [r0, r1) of {@code rows} rows: each argument seen as
     * [r1 - r0, width] (flat: the body reshapes), a BF16 one through its F32 temporary. Arguments
     * that are the same memory share one temporary (an op writing in place).
     */
    private void run(long rows, Arg[] args, Body body) {
        if (rows == 0 || ops == null) return;
        long widest = 1;
        for (Arg a : args) widest = Math.max(widest, a.width());
        long chunkRows = Math.max(1, Math.min(rows, chunkElements / widest));
        Tensor[] temps = new Tensor[args.length];
        int[] sharedWith = new int[args.length];
        List<Tensor> owned = new ArrayList<>();
        try {
            for (int i = 0; i < args.length; i++) {
                sharedWith[i] = i;
                if (!args[i].widen()) continue;
                for (int j = 0; j < i; j++) {
                    if (args[j].widen() && sameMemory(args[i].t(), args[j].t())) sharedWith[i] = j;
                }
                if (sharedWith[i] == i) {
                    temps[i] = allocator.allocate(DType.F32, chunkRows * args[i].width());
                    owned.add(temps[i]);
                } else {
                    temps[i] = temps[sharedWith[i]];
                }
            }
            Tensor[] chunk = new Tensor[args.length];
            long last = (rows - 1) / chunkRows * chunkRows;
            for (long r0 = 0; r0 < rows; r0 += chunkRows) {
                if (skipRepeats && r0 > chunkRows && r0 < last) r0 = last;
                long r1 = Math.min(rows, r0 + chunkRows), n = r1 - r0;
                for (int i = 0; i < args.length; i++) {
                    Arg a = args[i];
                    Tensor part = flat(a.t()).slice(r0 * a.width(), r1 * a.width()).view(n, a.width());
                    if (!a.widen()) {
                        chunk[i] = part;
                        continue;
                    }
                    Tensor wide = temps[i].slice(0, n * a.width()).view(n, a.width());
                    if (a.read() && sharedWith[i] == i) ops.cast(part, wide);
                    chunk[i] = wide;
                }
                body.run(chunk, r0, r1);
                for (int i = 0; i < args.length; i++) {
                    Arg a = args[i];
                    if (a.widen() && a.written()) {
                        ops.cast(chunk[i], flat(a.t()).slice(r0 * a.width(), r1 * a.width()).view(n, a.width()));
                    }
                }
            }
        } finally {
            for (int i = owned.size() - 1; i >= 0; i--) owned.get(i).close();
        }
    }

    private static Tensor flat(Tensor t) { return t.view(t.numel()); }

    private static boolean sameMemory(Tensor a, Tensor b) {
        return a == b || (a.dtype() == b.dtype() && a.data().address() == b.data().address() && a.byteSize() == b.byteSize());
    }

    // ------------------------------------------------------------------ checks

    /** An activation: F32 or BF16. */
    static void storage(String op, String name, Tensor t) { Check.dtype(op, name, t, DType.F32, DType.BF16); }

    /** Every tensor F32 or BF16, all of the first one's shape. */
    private static void same(String op, String[] names, Tensor... ts) {
        for (int i = 0; i < ts.length; i++) {
            storage(op, names[i], ts[i]);
            if (i > 0) OpChecks.sameShape(op, names[0], ts[0], names[i], ts[i]);
        }
    }

    /** x and a (out or dOut) F32 or BF16 of one shape [..., H]; returns {rows, H}. */
    private static long[] rows(String op, Tensor x, Tensor a, String aName) {
        storage(op, "x", x);
        storage(op, aName, a);
        if (x.rank() < 1) throw Check.fail(op, "x needs a last dimension", x);
        OpChecks.sameShape(op, "x", x, aName, a);
        long h = x.dim(-1);
        return new long[] {h == 0 ? 0 : x.numel() / h, h};
    }
}
