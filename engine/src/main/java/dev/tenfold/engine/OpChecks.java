package dev.tenfold.engine;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The argument checks of every backend's ops: dtype, rank and shape, with one message form ("op:
 * what is wrong (got shapes)"). They never read tensor contents, so a device backend can use them
 * as they are; where the contents matter (embedding ids, loss targets) each backend checks them
 * where it reads them. Plus the device check of device backends.
 */
public final class OpChecks {
    private OpChecks() {}

    /** Every non-null tensor must be on {@code device}. */
    public static void onDevice(String op, Device device, String[] names, Tensor... ts) {
        for (int i = 0; i < ts.length; i++) {
            Tensor t = ts[i];
            if (t != null && !t.device().equals(device)) {
                throw Check.fail(op, names[i] + " must be on " + device + " (copy it there with Backend.copy)", t);
            }
        }
    }

    /** copy: both present, the same dtype and element count; returns the byte count. */
    public static long copy(Tensor src, Tensor dst) {
        Check.notNull("copy", "src", src);
        Check.notNull("copy", "dst", dst);
        if (src.dtype() != dst.dtype() || src.numel() != dst.numel()) {
            throw new IllegalArgumentException("copy: " + src.describe() + " into " + dst.describe()
                    + " needs the same dtype and element count");
        }
        return src.byteSize();
    }

    /**
     * Checks {@link Backend#copy2d}'s arguments (not the devices: each backend knows its own): offsets, width and rows
     * not negative, pitches at least the width, every block inside its tensor, src and dst in different memory.
     */
    public static void copy2d(Tensor src, long srcOffsetBytes, long srcPitchBytes, Tensor dst, long dstOffsetBytes, long dstPitchBytes,
                              long widthBytes, long rows) {
        Check.notNull("copy2d", "src", src);
        Check.notNull("copy2d", "dst", dst);
        String[] names = {"srcOffsetBytes", "srcPitchBytes", "dstOffsetBytes", "dstPitchBytes", "widthBytes", "rows"};
        long[] values = {srcOffsetBytes, srcPitchBytes, dstOffsetBytes, dstPitchBytes, widthBytes, rows};
        for (int i = 0; i < values.length; i++) {
            if (values[i] < 0) throw new IllegalArgumentException("copy2d: " + names[i] + " is " + values[i] + ", must be >= 0");
        }
        if (srcPitchBytes < widthBytes) {
            throw new IllegalArgumentException("copy2d: srcPitchBytes " + srcPitchBytes + " is less than widthBytes " + widthBytes);
        }
        if (dstPitchBytes < widthBytes) {
            throw new IllegalArgumentException("copy2d: dstPitchBytes " + dstPitchBytes + " is less than widthBytes " + widthBytes);
        }
        if (rows == 0 || widthBytes == 0) return;
        long srcEnd = blocksEnd("src", src, srcOffsetBytes, srcPitchBytes, widthBytes, rows);
        long dstEnd = blocksEnd("dst", dst, dstOffsetBytes, dstPitchBytes, widthBytes, rows);
        // the spans [first block's start, last block's end) of the same memory must not meet (on a device the
        // segments carry device addresses: comparing them is still right; nothing is read)
        if (src.device().equals(dst.device())
                && src.data().asSlice(srcOffsetBytes, srcEnd - srcOffsetBytes)
                        .asOverlappingSlice(dst.data().asSlice(dstOffsetBytes, dstEnd - dstOffsetBytes)).isPresent()) {
            throw new IllegalArgumentException("copy2d: the source bytes [" + srcOffsetBytes + ", " + srcEnd + ") of " + src.describe()
                    + " and the destination bytes [" + dstOffsetBytes + ", " + dstEnd + ") of " + dst.describe() + " overlap");
        }
    }

    /** The end (exclusive, in bytes from the tensor's start) of the last of {@code rows} blocks; past the tensor is an error. */
    private static long blocksEnd(String name, Tensor t, long offset, long pitch, long width, long rows) {
        long end;
        try {
            end = Math.addExact(Math.addExact(offset, Math.multiplyExact(rows - 1, pitch)), width);
        } catch (ArithmeticException e) {
            end = Long.MAX_VALUE;
        }
        if (end > t.byteSize()) {
            throw new IllegalArgumentException("copy2d: the last " + name + " block ends at byte " + (end == Long.MAX_VALUE ? "(overflow)" : end)
                    + ", past the " + t.byteSize() + " bytes of " + name + " " + t.describe() + " (" + name + "OffsetBytes " + offset + ", "
                    + name + "PitchBytes " + pitch + ", widthBytes " + width + ", rows " + rows + ")");
        }
        return end;
    }

    /** {@link Backend#copy2d} on host memory, arguments checked: one MemorySegment.copy per block. */
    public static void copy2dOnHost(MemorySegment src, long srcOffsetBytes, long srcPitchBytes, MemorySegment dst, long dstOffsetBytes,
                                    long dstPitchBytes, long widthBytes, long rows) {
        if (widthBytes == 0) return;
        for (long i = 0; i < rows; i++) {
            MemorySegment.copy(src, srcOffsetBytes + i * srcPitchBytes, dst, dstOffsetBytes + i * dstPitchBytes, widthBytes);
        }
    }

    public static void sameShape(String op, String aName, Tensor a, String bName, Tensor b) {
        if (!Arrays.equals(a.shape(), b.shape())) throw Check.fail(op, bName + " must have the shape of " + aName, a, b);
    }

    /** The matmul problem: out[bt] (M x N) = op(a[bt]) (M x K) · op(b[bt]) (K x N). */
    public record MatmulDims(int batch, int m, int n, int k, boolean bBatched) {}

    public static MatmulDims matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out) {
        return matmul(a, transA, b, transB, out, DType.F32);
    }

    /** As above, with out of one of {@code outTypes} (a backend that writes BF16 products itself). */
    public static MatmulDims matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, DType... outTypes) {
        String op = "matmul";
        Check.dtype(op, "a", a, DType.F32, DType.BF16);
        Check.dtype(op, "b", b, DType.F32, DType.BF16);
        Check.dtype(op, "out", out, outTypes);
        Check.rank(op, "a", a, 2, 3);
        Check.rank(op, "b", b, 2, 3);
        Check.rank(op, "out", out, a.rank());
        int batch = a.rank() == 3 ? Check.intSize(op, a.dim(0)) : 1;
        if (b.rank() == 3 && (a.rank() != 3 || b.dim(0) != a.dim(0))) {
            throw Check.fail(op, "a batched b needs an a with the same batch", a, b);
        }
        long m = transA ? a.dim(-1) : a.dim(-2);
        long ka = transA ? a.dim(-2) : a.dim(-1);
        long kb = transB ? b.dim(-1) : b.dim(-2);
        long n = transB ? b.dim(-2) : b.dim(-1);
        if (ka != kb) {
            throw Check.fail(op, "inner dimensions differ (" + ka + " vs " + kb + ", transA=" + transA + ", transB=" + transB + ")", a, b);
        }
        long[] expected = a.rank() == 3 ? new long[] {batch, m, n} : new long[] {m, n};
        Check.shape(op, "out", out, expected);
        return new MatmulDims(batch, Check.intSize(op, m), Check.intSize(op, n), Check.intSize(op, ka), b.rank() == 3);
    }

    /** add, mul, scale (b null): all F32, same shapes; returns the element count. */
    public static long elementwise(String op, Tensor a, Tensor b, Tensor out) {
        Check.dtype(op, "a", a, DType.F32);
        if (b != null) {
            Check.dtype(op, "b", b, DType.F32);
            sameShape(op, "a", a, "b", b);
        }
        Check.dtype(op, "out", out, DType.F32);
        sameShape(op, "a", a, "out", out);
        return a.numel();
    }

    public static long cast(Tensor src, Tensor dst) {
        String op = "cast";
        Check.dtype(op, "src", src, DType.F32, DType.BF16, DType.F16);
        Check.dtype(op, "dst", dst, DType.F32, DType.BF16, DType.F16);
        sameShape(op, "src", src, "dst", dst);
        return src.numel();
    }

    /** Returns {T, H, V}; the ids' range is checked where they are read. */
    public static int[] embedding(String op, Tensor table, Tensor ids, Tensor rows, boolean backward) {
        String tableName = backward ? "dTable" : "table";
        Check.dtype(op, tableName, table, backward ? new DType[] {DType.F32} : new DType[] {DType.F32, DType.BF16});
        Check.rank(op, tableName, table, 2);
        Check.dtype(op, "ids", ids, DType.I32);
        Check.dtype(op, backward ? "dOut" : "out", rows, DType.F32);
        long t = ids.numel(), v = table.dim(0), h = table.dim(1);
        if (rows.rank() != 2 || rows.dim(0) != t || rows.dim(1) != h) {
            throw Check.fail(op, (backward ? "dOut" : "out") + " must be [" + t + ", " + h + "] for " + t
                    + " ids into a table of width " + h, table, ids, rows);
        }
        return new int[] {Check.intSize(op, t), Check.intSize(op, h), Check.intSize(op, v)};
    }

    /** Returns {rows, H}. */
    public static int[] rmsnorm(String op, Tensor x, Tensor weight, Tensor rstd, Tensor a, String aName, Tensor dx, Tensor dWeight) {
        Check.dtype(op, "x", x, DType.F32);
        if (x.rank() < 1) throw Check.fail(op, "x needs a last dimension", x);
        long h = x.dim(-1), rows = h == 0 ? 0 : x.numel() / h;
        Check.dtype(op, "weight", weight, DType.F32);
        Check.shape(op, "weight", weight, h);
        Check.dtype(op, aName, a, DType.F32);
        sameShape(op, "x", x, aName, a);
        Check.dtype(op, "rstd", rstd, DType.F32);
        if (rstd.numel() != rows) throw Check.fail(op, "rstd must hold one element per row (" + rows + ")", x, rstd);
        if (dx != null) {
            Check.dtype(op, "dx", dx, DType.F32);
            sameShape(op, "x", x, "dx", dx);
        }
        if (dWeight != null) {
            Check.dtype(op, "dWeight", dWeight, DType.F32);
            Check.shape(op, "dWeight", dWeight, h);
        }
        return new int[] {Check.intSize(op, rows), Check.intSize(op, h)};
    }

    /** rmsnormBackward's checks (dx must not be null); returns {rows, H}. */
    public static int[] rmsnormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        int[] d = rmsnorm("rmsnormBackward", x, weight, rstd, dOut, "dOut", dx, dWeight);
        Check.notNull("rmsnormBackward", "dx", dx);
        return d;
    }

    /** Returns {rows (B*T), heads, d}. */
    public static int[] rope(String op, Tensor x, String xName, Tensor invFreq, Tensor positions, Tensor out, String outName) {
        Check.dtype(op, xName, x, DType.F32);
        Check.rank(op, xName, x, 3, 4);
        long d = x.dim(-1), heads = x.dim(-2), rows = x.rank() == 3 ? x.dim(0) : x.dim(0) * x.dim(1);
        if (d % 2 != 0) throw Check.fail(op, "head dimension must be even", x);
        Check.dtype(op, "invFreq", invFreq, DType.F32);
        Check.shape(op, "invFreq", invFreq, d / 2);
        Check.dtype(op, "positions", positions, DType.I32);
        if (positions.numel() != rows) {
            throw Check.fail(op, "positions must hold one id per row of " + xName + " (" + rows + ")", x, positions);
        }
        Check.dtype(op, outName, out, DType.F32);
        sameShape(op, xName, x, outName, out);
        return new int[] {Check.intSize(op, rows), Check.intSize(op, heads), Check.intSize(op, d)};
    }

    /** swiglu and its backward: every tensor F32 with the shape of gate; returns the element count. */
    public static long swiglu(String op, Tensor gate, String[] names, Tensor... others) {
        Check.dtype(op, "gate", gate, DType.F32);
        for (int i = 0; i < others.length; i++) {
            Check.dtype(op, names[i], others[i], DType.F32);
            sameShape(op, "gate", gate, names[i], others[i]);
        }
        return gate.numel();
    }

    /** softmax and its backward: all F32 with the shape of the first; returns {rows, width}. */
    public static int[] softmax(String op, String[] names, Tensor... ts) {
        for (int i = 0; i < ts.length; i++) {
            Check.dtype(op, names[i], ts[i], DType.F32);
            if (i > 0) sameShape(op, names[0], ts[0], names[i], ts[i]);
        }
        if (ts[0].rank() < 1) throw Check.fail(op, names[0] + " needs a last dimension", ts[0]);
        long w = ts[0].dim(-1);
        return new int[] {Check.intSize(op, w == 0 ? 0 : ts[0].numel() / w), Check.intSize(op, w)};
    }

    /** The attention problem. */
    public record AttentionDims(int batch, int tq, int tk, int hq, int hkv, int d) {
        public boolean empty() { return batch == 0 || tq == 0 || hq == 0; }
    }

    public static AttentionDims attention(Tensor q, Tensor k, Tensor v) { return attention(q, k, v, DType.F32); }

    /** The attention problem with q, k and v (and, in the methods below, every tensor but lse) of {@code dtype}. */
    public static AttentionDims attention(Tensor q, Tensor k, Tensor v, DType dtype) {
        String op = "attention";
        Check.dtype(op, "q", q, dtype);
        Check.dtype(op, "k", k, dtype);
        Check.dtype(op, "v", v, dtype);
        Check.rank(op, "q [B, Tq, Hq, d]", q, 4);
        Check.rank(op, "k [B, Tk, Hkv, d]", k, 4);
        Check.rank(op, "v [B, Tk, Hkv, d]", v, 4);
        if (k.dim(0) != q.dim(0) || k.dim(3) != q.dim(3)) {
            throw Check.fail(op, "k [B, Tk, Hkv, d] must have q's batch and head dim", q, k);
        }
        if (!Arrays.equals(k.shape(), v.shape())) throw Check.fail(op, "v must have k's shape", k, v);
        if (k.dim(2) == 0 || q.dim(2) % k.dim(2) != 0) {
            throw Check.fail(op, "query heads Hq must be a multiple of kv heads Hkv", q, k);
        }
        if (k.dim(1) < q.dim(1)) throw Check.fail(op, "needs Tk >= Tq (keys at least as many as queries)", q, k);
        Check.intSize(op, q.dim(0) * q.dim(1) * q.dim(2));
        Check.intSize(op, k.dim(0) * k.dim(1) * k.dim(2));
        return new AttentionDims((int) q.dim(0), (int) q.dim(1), (int) k.dim(1), (int) q.dim(2), (int) k.dim(2), (int) q.dim(3));
    }

    /** attention's checks, in the CPU backend's order. */
    public static AttentionDims attentionForward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        return attentionForward(q, k, v, out, lse, DType.F32);
    }

    public static AttentionDims attentionForward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, DType dtype) {
        AttentionDims g = attention(q, k, v, dtype);
        attentionTensor(out, "out", dtype, q.shape());
        attentionF32(lse, "lse", g.batch(), g.hq(), g.tq());
        return g;
    }

    /** attentionBackward's checks, in the CPU backend's order. */
    public static AttentionDims attentionBackward(Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dq,
                                           Tensor dk, Tensor dv) {
        return attentionBackward(dOut, q, k, v, out, lse, dq, dk, dv, DType.F32);
    }

    public static AttentionDims attentionBackward(Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dq,
                                                  Tensor dk, Tensor dv, DType dtype) {
        AttentionDims g = attention(q, k, v, dtype);
        attentionTensor(dOut, "dOut", dtype, q.shape());
        attentionTensor(out, "out", dtype, q.shape());
        attentionTensor(dq, "dq", dtype, q.shape());
        attentionTensor(dk, "dk", dtype, k.shape());
        attentionTensor(dv, "dv", dtype, k.shape());
        attentionF32(lse, "lse", g.batch(), g.hq(), g.tq());
        return g;
    }

    public static void attentionF32(Tensor t, String name, long... shape) { attentionTensor(t, name, DType.F32, shape); }

    private static void attentionTensor(Tensor t, String name, DType dtype, long... shape) {
        Check.dtype("attention", name, t, dtype);
        Check.shape("attention", name, t, shape);
    }

    /** Returns {T, H, V}; the targets' range is checked where they are read. */
    public static int[] crossEntropy(Tensor hidden, Tensor weight, Tensor targets, Tensor dHidden, Tensor dWeight) {
        String op = "crossEntropy";
        Check.dtype(op, "hidden", hidden, DType.F32);
        Check.rank(op, "hidden", hidden, 2);
        Check.dtype(op, "weight", weight, DType.F32, DType.BF16);
        Check.rank(op, "weight", weight, 2);
        long t = hidden.dim(0), h = hidden.dim(1), v = weight.dim(0);
        if (weight.dim(1) != h) throw Check.fail(op, "weight must be [V, " + h + "] for hidden of width " + h, hidden, weight);
        Check.dtype(op, "targets", targets, DType.I32);
        if (targets.numel() != t) throw Check.fail(op, "targets must hold one id per row of hidden (" + t + ")", hidden, targets);
        if (dHidden != null) {
            Check.dtype(op, "dHidden", dHidden, DType.F32);
            Check.shape(op, "dHidden", dHidden, t, h);
        }
        if (dWeight != null) {
            Check.dtype(op, "dWeight", dWeight, DType.F32);
            Check.shape(op, "dWeight", dWeight, v, h);
        }
        Check.intSize(op, hidden.numel());
        Check.intSize(op, weight.numel());
        return new int[] {(int) t, (int) h, (int) v};
    }

    public static long adamw(Tensor param, Tensor grad, Tensor m, Tensor v, dev.tenfold.engine.Backend.AdamW hp, long step) {
        String op = "adamw";
        Tensor[] ts = {param, grad, m, v};
        String[] names = {"param", "grad", "m", "v"};
        for (int i = 0; i < ts.length; i++) {
            Check.dtype(op, names[i], ts[i], DType.F32);
            if (i > 0) sameShape(op, "param", param, names[i], ts[i]);
        }
        if (hp == null) throw new IllegalArgumentException(op + ": hyper-parameters are null");
        if (step < 1) throw new IllegalArgumentException(op + ": step counts from 1, got " + step);
        return param.numel();
    }

    public static long reduction(String op, Tensor x) {
        Check.dtype(op, "x", x, DType.F32);
        return x.numel();
    }

    /** dequantizeNf4's checks; returns n (out's element count). */
    public static long nf4(Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode, Tensor out) {
        String op = "dequantizeNf4";
        Check.notNull(op, "packed", packed);
        Check.notNull(op, "absmax", absmax);
        Check.notNull(op, "out", out);
        Check.dtype(op, "packed", packed, DType.U8);
        Check.dtype(op, "out", out, DType.F32, DType.BF16);
        long n = out.numel();
        if (n % 64 != 0 || packed.numel() != n / 2) {
            throw Check.fail(op, "packed must hold n/2 bytes for n = " + n + " (a multiple of 64)", packed, out);
        }
        long blocks = n / 64;
        if (absmax.numel() != blocks) throw Check.fail(op, "absmax must hold one value per 64 elements", absmax, out);
        if (absmax.dtype() == DType.U8) {
            Check.notNull(op, "nestedAbsmax", nestedAbsmax);
            Check.notNull(op, "nestedCode", nestedCode);
            Check.dtype(op, "nestedAbsmax", nestedAbsmax, DType.F32);
            Check.shape(op, "nestedCode", nestedCode, 256);
            Check.dtype(op, "nestedCode", nestedCode, DType.F32);
            if (nestedAbsmax.numel() != (blocks + 255) / 256) {
                throw Check.fail(op, "nestedAbsmax must hold one value per 256 blocks", nestedAbsmax, absmax);
            }
        } else {
            Check.dtype(op, "absmax", absmax, DType.F32);
            if (nestedAbsmax != null || nestedCode != null) {
                throw Check.fail(op, "nestedAbsmax and nestedCode go with a U8 (double-quantized) absmax only", absmax);
            }
        }
        return n;
    }
}
