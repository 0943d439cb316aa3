package dev.tenfold.qlora.nf4;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.llama.Linear;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A frozen NF4 projection: y = x W^T with W dequantized on the fly, a chunk of output rows at a
 * time, so that a big layer is never dequantized whole.
 *
 * <p>Forward: for each chunk of R output rows, W[r0:r0+R] is dequantized into a scratch
 * [R, in] tensor, {@code backend.matmul} computes x W_chunk^T into a [T, R] scratch, and those
 * columns are copied into y. Backward: dx = dy W = sum over chunks of dy[:, chunk] W_chunk,
 * accumulated into dx by matmul's accumulate flag. The base is frozen: no weight gradient.
 *
 * <p>Peak extra memory per call: R x in x (4 or 2 bytes) for the weight chunk plus T x R x 4
 * bytes for the output (or gradient) columns — with the default R (about 8 MiB of F32 weight:
 * 512 rows at in = 4096, 144 at in = 14336) and T = 256 tokens, under 9 MiB. A layer that fits
 * in one chunk skips the column copy. Scratch is allocated per call and freed before it returns.
 *
 * <p>The compute dtype is the scratch weight's: F32 (exact dequantized values, the default) or
 * BF16 (what bitsandbytes computes with under {@code bnb_4bit_compute_dtype=bfloat16}).
 *
 * <p>On a device ({@link #to}): the packed codes, absmax and nested statistics are uploaded once and
 * stay there; each call dequantizes the whole weight with {@code backend.dequantizeNf4} into a
 * device scratch of the compute dtype ([out, in]: 117 MB in BF16 for the largest Llama-3-8B
 * projection, freed when the call returns) and runs one {@code backend.matmul}. Nothing crosses
 * to the host. With BF16 activations (a lean training step) the scratch is BF16 whatever the
 * compute dtype: the product runs in BF16 there anyway.
 *
 * <p>Activations (x, y, dy, dx) are F32 or BF16; on the host a BF16 one goes through an F32 copy.
 */
public final class Nf4Linear implements Linear {
    /** Target size of the dequantized weight chunk, in F32 bytes. */
    static final long CHUNK_BYTES = 8L << 20;

    private final Nf4Tensor weight;
    private final DType computeDtype;
    private final int chunkRows;
    private final OnDevice device; // the weight's parts on a device, or null on the host

    /** The parts of the NF4 weight on a device (nestedAbsmax and nestedCode null when not double-quantized). */
    private record OnDevice(Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode) {}

    public Nf4Linear(Nf4Tensor weight) { this(weight, DType.F32, defaultChunkRows(weight.rows(), weight.cols())); }

    /** @param chunkRows output rows dequantized at a time (any positive number; the last chunk may be shorter) */
    public Nf4Linear(Nf4Tensor weight, DType computeDtype, int chunkRows) { this(weight, computeDtype, chunkRows, null); }

    private Nf4Linear(Nf4Tensor weight, DType computeDtype, int chunkRows, OnDevice device) {
        if (weight == null) throw new IllegalArgumentException("nf4 linear: weight is null");
        if (computeDtype != DType.F32 && computeDtype != DType.BF16) {
            throw new IllegalArgumentException("nf4 linear: compute dtype must be F32 or BF16, got " + computeDtype);
        }
        if (chunkRows <= 0) throw new IllegalArgumentException("nf4 linear: chunk rows must be positive, got " + chunkRows);
        this.weight = weight;
        this.computeDtype = computeDtype;
        this.chunkRows = (int) Math.min(chunkRows, weight.rows());
        this.device = device;
    }

    /** This projection with its NF4 parts uploaded to the backend's device (once; the copies go to {@code owned}). */
    @Override
    public Linear to(Backend backend, List<AutoCloseable> owned) {
        boolean there = device != null ? !Transfers.needsUpload(backend, device.packed()) : backend.device().isCpu();
        if (there) return this;
        if (device != null) throw new IllegalArgumentException("nf4 linear: already on " + device.packed().device() + ", not " + backend.device());
        Tensor packed = up(backend, weight.packed(), owned), absmax = up(backend, weight.absmax(), owned);
        Tensor nested = null, code = null;
        if (weight.doubleQuant()) {
            nested = up(backend, weight.nestedAbsmax(), owned);
            try (Tensor c = Tensor.of(weight.nestedCode(), 256)) {
                code = up(backend, c, owned);
            }
        }
        return new Nf4Linear(weight, computeDtype, chunkRows, new OnDevice(packed, absmax, nested, code));
    }

    private static Tensor up(Backend backend, Tensor host, List<AutoCloseable> owned) {
        Tensor t = Transfers.upload(backend, host);
        owned.add(t);
        return t;
    }

    /** The whole weight, dequantized on the device into a new [out, in] tensor of {@code dtype} (the caller closes it). */
    private Tensor dequantizeOnDevice(Backend backend, DType dtype) {
        Tensor w = backend.allocate(dtype, weight.rows(), weight.cols());
        try {
            backend.dequantizeNf4(device.packed(), device.absmax(), device.nestedAbsmax(), device.nestedCode(), weight.offset(), w);
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
        return w;
    }

    /** Rows per chunk so that the F32 chunk is about {@link #CHUNK_BYTES}: a multiple of 16, at least 16. */
    static int defaultChunkRows(long out, long in) {
        long r = CHUNK_BYTES / (in * 4);
        r = r >= 16 ? r / 16 * 16 : 16;
        return (int) Math.min(r, out);
    }

    public Nf4Tensor weight() { return weight; }

    public DType computeDtype() { return computeDtype; }

    public int chunkRows() { return chunkRows; }

    @Override public long inFeatures() { return weight.cols(); }

    @Override public long outFeatures() { return weight.rows(); }

    @Override
    public void forward(Backend backend, Tensor x, Tensor y) {
        long in = weight.cols(), out = weight.rows();
        Check.dtype("nf4 linear", "x", x, DType.F32, DType.BF16);
        Check.dtype("nf4 linear", "y", y, DType.F32, DType.BF16);
        Check.rank("nf4 linear", "x", x, 2);
        if (x.dim(1) != in) throw Check.fail("nf4 linear", "x must be [T, " + in + "]", x);
        long t = x.dim(0);
        Check.shape("nf4 linear", "y", y, t, out);
        if (device != null) {
            try (Tensor w = dequantizeOnDevice(backend, weightDtype(x, y))) {
                backend.matmul(x, false, w, true, y, false);
            }
            return;
        }
        if (x.dtype() != DType.F32 || y.dtype() != DType.F32) {
            try (Tensor xf = f32(backend, x); Tensor yf = Tensor.allocate(DType.F32, t, out)) {
                forward(backend, xf, yf);
                backend.cast(yf, y);
            }
            return;
        }
        // Tensor.allocate, not an arena of this pass: a pooled block costs no stop of every thread on close
        try (Tensor w = Tensor.allocate(computeDtype, chunkRows, in)) {
            if (chunkRows == out) {
                weight.dequantizeRows(0, out, w);
                backend.matmul(x, false, w, true, y, false);
                return;
            }
            try (Tensor cols = Tensor.allocate(DType.F32, t, chunkRows)) {
                for (long r0 = 0; r0 < out; r0 += chunkRows) {
                    int r = (int) Math.min(chunkRows, out - r0);
                    Tensor wc = w.slice(0, r);
                    Tensor yc = firstColumns(cols, t, r);
                    weight.dequantizeRows(r0, r, wc);
                    backend.matmul(x, false, wc, true, yc, false);
                    // y[:, r0:r0+r] = yc, row by row
                    MemorySegment src = yc.data(), dst = y.data();
                    for (long i = 0; i < t; i++) MemorySegment.copy(src, i * r * 4, dst, (i * out + r0) * 4, (long) r * 4);
                }
            }
        }
    }

    @Override
    public void backward(Backend backend, Tensor x, Tensor dy, Tensor dx) {
        if (dx == null) return; // frozen: nothing but the input gradient to compute
        long in = weight.cols(), out = weight.rows();
        Check.dtype("nf4 linear backward", "dy", dy, DType.F32, DType.BF16);
        Check.dtype("nf4 linear backward", "dx", dx, DType.F32, DType.BF16);
        Check.rank("nf4 linear backward", "dy", dy, 2);
        if (dy.dim(1) != out) throw Check.fail("nf4 linear backward", "dy must be [T, " + out + "]", dy);
        long t = dy.dim(0);
        Check.shape("nf4 linear backward", "dx", dx, t, in);
        if (device != null) {
            try (Tensor w = dequantizeOnDevice(backend, weightDtype(dy, dx))) {
                backend.matmul(dy, false, w, false, dx, false);
            }
            return;
        }
        if (dy.dtype() != DType.F32 || dx.dtype() != DType.F32) {
            try (Tensor dyf = f32(backend, dy); Tensor dxf = Tensor.allocate(DType.F32, t, in)) {
                backward(backend, x, dyf, dxf);
                backend.cast(dxf, dx);
            }
            return;
        }
        try (Tensor w = Tensor.allocate(computeDtype, chunkRows, in)) {
            if (chunkRows == out) {
                weight.dequantizeRows(0, out, w);
                backend.matmul(dy, false, w, false, dx, false);
                return;
            }
            try (Tensor cols = Tensor.allocate(DType.F32, t, chunkRows)) {
                for (long r0 = 0; r0 < out; r0 += chunkRows) {
                    int r = (int) Math.min(chunkRows, out - r0);
                    Tensor wc = w.slice(0, r);
                    Tensor dyc = firstColumns(cols, t, r);
                    weight.dequantizeRows(r0, r, wc);
                    MemorySegment src = dy.data(), dst = dyc.data();
                    for (long i = 0; i < t; i++) MemorySegment.copy(src, (i * out + r0) * 4, dst, i * r * 4, (long) r * 4);
                    backend.matmul(dyc, false, wc, false, dx, r0 > 0); // the first chunk writes dx, the rest add to it
                }
            }
        }
    }

    /** The dtype the weight is dequantized to on a device: BF16 when an activation is, else the compute dtype. */
    private DType weightDtype(Tensor a, Tensor b) {
        return a.dtype() == DType.BF16 || b.dtype() == DType.BF16 ? DType.BF16 : computeDtype;
    }

    /** An F32 host copy of a host activation (the caller closes it). */
    private static Tensor f32(Backend backend, Tensor t) {
        Tensor f = Tensor.allocate(DType.F32, t.shape());
        backend.cast(t, f);
        return f;
    }

    /** The scratch seen as a contiguous [t, r] F32 tensor (r <= its column count). */
    private static Tensor firstColumns(Tensor scratch, long t, int r) {
        return Tensor.wrap(scratch.data().asSlice(0, t * r * 4), DType.F32, t, r);
    }

    @Override
    public String toString() {
        return "Nf4Linear [" + weight.rows() + ", " + weight.cols() + "] (" + computeDtype
                + (device != null ? ", on " + device.packed().device() : ", " + chunkRows + " rows per chunk") + ")";
    }
}
