package dev.tenfold.qlora.nf4;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Numerics;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.Parallel;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A frozen [rows, cols] weight in NF4, laid out exactly as bitsandbytes stores it: the
 * row-major elements in blocks of {@link Nf4#BLOCK}, two 4-bit codes per byte (element 2j in
 * the high nibble of byte j), and one absmax per block — either F32, or double-quantized
 * (U8 indices into a 256-entry table, one F32 nested absmax per 256 blocks, one F32 offset).
 *
 * <p>Blocks run over the flattened weight, so a block may straddle two rows (rows of 32 or 48
 * elements in tiny test models); every method works on element ranges and handles that. The
 * element count must be a multiple of 64 (every Llama projection is): bitsandbytes would pad a
 * partial last block, and we refuse it instead, with an error naming the shape.
 *
 * <p>The tensors may be owned (made by {@link #quantize}) or views into a memory-mapped
 * checkpoint (made by {@link #of}); {@link #close()} frees the owned ones.
 */
public final class Nf4Tensor implements AutoCloseable {
    private static final int BLOCK = Nf4.BLOCK;
    /** Blocks decoded per step of the fast path: 16K elements, small enough to stay in cache. */
    private static final int CHUNK_BLOCKS = 256;

    private final long rows, cols, numel;
    private final int blocks;
    private final Tensor packed;        // U8 [numel / 2]
    private final Tensor absmax;        // F32 [blocks], or U8 [blocks] when double-quantized
    private final Tensor nestedAbsmax;  // F32 [ceil(blocks / 256)], or null
    private final float[] nested;       // a heap copy of nestedAbsmax (small), or null
    private final float[] nestedCode;   // the 256-entry table the U8 absmax indexes, or null
    private final float offset;
    private final DType sourceDtype;    // what the weight was before quantization (quant_state "dtype")

    private Nf4Tensor(long rows, long cols, Tensor packed, Tensor absmax, Tensor nestedAbsmax, float[] nestedCode,
                      float offset, DType sourceDtype) {
        this.rows = rows;
        this.cols = cols;
        this.numel = rows * cols;
        this.blocks = (int) (numel / BLOCK);
        this.packed = packed;
        this.absmax = absmax;
        this.nestedAbsmax = nestedAbsmax;
        this.nested = nestedAbsmax == null ? null : nestedAbsmax.toFloatArray();
        this.nestedCode = nestedCode == null ? null : nestedCode.clone();
        this.offset = offset;
        this.sourceDtype = sourceDtype;
    }

    // ------------------------------------------------------------------ creation

    /**
     * Assembles an NF4 tensor from its parts (e.g. views into a bitsandbytes checkpoint), checking
     * every size. For single quantization pass {@code absmax} F32 and null for the nested parts;
     * for double quantization {@code absmax} U8, {@code nestedAbsmax} F32, the 256-entry
     * {@code nestedCode} and the offset. {@code packed} is U8 with numel/2 elements (any shape).
     */
    public static Nf4Tensor of(long rows, long cols, Tensor packed, Tensor absmax, Tensor nestedAbsmax,
                               float[] nestedCode, float offset, DType sourceDtype) {
        long numel = checkShape(rows, cols);
        long blocks = numel / BLOCK;
        Check.notNull("nf4", "packed", packed);
        Check.notNull("nf4", "absmax", absmax);
        if (packed.dtype() != DType.U8 || packed.numel() != numel / 2) {
            throw new IllegalArgumentException("nf4: packed weight must be U8 with " + numel / 2 + " elements for ["
                    + rows + ", " + cols + "], got " + packed.describe());
        }
        if (absmax.numel() != blocks) {
            throw new IllegalArgumentException("nf4: absmax must have " + blocks + " elements (one per " + BLOCK
                    + "-element block of [" + rows + ", " + cols + "]), got " + absmax.describe());
        }
        boolean nestedQuant = nestedAbsmax != null || nestedCode != null;
        if (!nestedQuant) {
            if (absmax.dtype() != DType.F32) {
                throw new IllegalArgumentException("nf4: absmax without double quantization must be F32, got " + absmax.describe());
            }
        } else {
            if (absmax.dtype() != DType.U8) {
                throw new IllegalArgumentException("nf4: double-quantized absmax must be U8, got " + absmax.describe());
            }
            long nb = (blocks + Nf4.NESTED_BLOCK - 1) / Nf4.NESTED_BLOCK;
            if (nestedAbsmax == null || nestedAbsmax.dtype() != DType.F32 || nestedAbsmax.numel() != nb) {
                throw new IllegalArgumentException("nf4: nested absmax must be F32 with " + nb + " elements (one per "
                        + Nf4.NESTED_BLOCK + " blocks), got " + (nestedAbsmax == null ? "none" : nestedAbsmax.describe()));
            }
            if (nestedCode == null || nestedCode.length != 256) {
                throw new IllegalArgumentException("nf4: the nested code table must have 256 entries, got "
                        + (nestedCode == null ? "none" : nestedCode.length));
            }
            if (!Float.isFinite(offset)) throw new IllegalArgumentException("nf4: nested offset is " + offset);
        }
        return new Nf4Tensor(rows, cols, packed, absmax, nestedAbsmax, nestedCode, offset, sourceDtype);
    }

    /**
     * Quantizes a [rows, cols] F32, BF16 or F16 weight as bitsandbytes' {@code quantize_4bit}
     * (NF4, blocksize 64; with {@code doubleQuant}, {@code compress_statistics=True}). Runs on
     * all cores; the result does not depend on how the work is split. Non-finite weights are
     * refused (with the element's position): they have no meaningful 4-bit code.
     */
    public static Nf4Tensor quantize(Tensor weight, boolean doubleQuant) {
        Check.dtype("nf4 quantize", "weight", weight, DType.F32, DType.BF16, DType.F16);
        Check.rank("nf4 quantize", "weight", weight, 2);
        if (!weight.device().isCpu()) throw new IllegalArgumentException("nf4 quantize: weight must be on the host, got " + weight.describe());
        long rows = weight.dim(0), cols = weight.dim(1);
        long numel = checkShape(rows, cols);
        int blocks = Math.toIntExact(numel / BLOCK);
        MemorySegment src = weight.data();
        DType dt = weight.dtype();
        float[] absmax = new float[blocks];
        Tensor packed = Tensor.allocate(DType.U8, numel / 2);
        // A worker's error is rethrown here as it was made (kept from when the fork-join pool wrapped it).
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        try {
            MemorySegment dst = packed.data();
            Parallel.forRange(blocks, 64, (b0, b1) -> {
                if (failure.get() != null) return;
                float[] vals = new float[CHUNK_BLOCKS * BLOCK];
                byte[] bytes = new byte[CHUNK_BLOCKS * BLOCK / 2];
                for (int c0 = b0; c0 < b1; c0 += CHUNK_BLOCKS) {
                    int c1 = Math.min(b1, c0 + CHUNK_BLOCKS);
                    long e0 = (long) c0 * BLOCK;
                    int n = (c1 - c0) * BLOCK;
                    read(src, dt, e0, vals, n);
                    for (int j = 0; j < n; j++) {
                        if (!Float.isFinite(vals[j])) {
                            long e = e0 + j;
                            failure.compareAndSet(null, new IllegalArgumentException("nf4 quantize: weight " + weight.describe()
                                    + " has " + vals[j] + " at [" + e / cols + ", " + e % cols + "]"));
                            return;
                        }
                    }
                    for (int b = c0; b < c1; b++) {
                        int base = (b - c0) * BLOCK;
                        absmax[b] = Nf4.quantizeBlock(vals, base, bytes, base >> 1);
                    }
                    MemorySegment.copy(bytes, 0, dst, ValueLayout.JAVA_BYTE, e0 / 2, n / 2);
                }
            });
            if (failure.get() != null) throw failure.get();
            if (!doubleQuant) {
                return new Nf4Tensor(rows, cols, packed, Tensor.of(absmax, blocks), null, null, 0f, dt);
            }
            Nf4.DoubleQuant dq = Nf4.doubleQuantize(absmax);
            Tensor codes = Tensor.allocate(DType.U8, blocks);
            MemorySegment.copy(dq.codes(), 0, codes.data(), ValueLayout.JAVA_BYTE, 0, blocks);
            return new Nf4Tensor(rows, cols, packed, codes, Tensor.of(dq.nested(), dq.nested().length), dq.code(), dq.offset(), dt);
        } catch (RuntimeException | Error e) {
            packed.close();
            throw e;
        }
    }

    private static long checkShape(long rows, long cols) {
        if (rows <= 0 || cols <= 0) throw new IllegalArgumentException("nf4: shape [" + rows + ", " + cols + "] must be positive");
        long numel = Math.multiplyExact(rows, cols);
        if (numel % BLOCK != 0) {
            throw new IllegalArgumentException("nf4: [" + rows + ", " + cols + "] has " + numel + " elements, not a multiple of the "
                    + BLOCK + "-element block (partial blocks are not supported)");
        }
        if (numel / BLOCK > Integer.MAX_VALUE) throw new IllegalArgumentException("nf4: [" + rows + ", " + cols + "] is too large");
        return numel;
    }

    /** Reads n elements from e0 on as floats (bulk copies; BF16/F16 widened exactly). */
    private static void read(MemorySegment src, DType dt, long e0, float[] dst, int n) {
        switch (dt) {
            case F32 -> MemorySegment.copy(src, Tensor.F32, e0 * 4, dst, 0, n);
            case BF16, F16 -> {
                short[] s = new short[n];
                MemorySegment.copy(src, Tensor.I16, e0 * 2, s, 0, n);
                if (dt == DType.BF16) {
                    for (int i = 0; i < n; i++) dst[i] = Numerics.bf16ToFloat(s[i]);
                } else {
                    for (int i = 0; i < n; i++) dst[i] = Float.float16ToFloat(s[i]);
                }
            }
            default -> throw new IllegalStateException(dt.toString());
        }
    }

    // ------------------------------------------------------------------ description

    public long rows() { return rows; }

    public long cols() { return cols; }

    public long numel() { return numel; }

    public int blocks() { return blocks; }

    public boolean doubleQuant() { return nestedCode != null; }

    /** The packed codes, U8 with numel/2 elements. */
    public Tensor packed() { return packed; }

    /** The same bytes seen as tenfold's NF4 dtype [rows, cols] (a view). */
    public Tensor asNf4View() { return Tensor.wrap(packed.data(), packed.device(), DType.NF4, rows, cols); }

    /** Per-block absmax: F32 [blocks], or U8 [blocks] of indices when double-quantized. */
    public Tensor absmax() { return absmax; }

    /** F32 [ceil(blocks / 256)] when double-quantized, else null. */
    public Tensor nestedAbsmax() { return nestedAbsmax; }

    /** The 256-entry table the U8 absmax indexes (a copy), or null. */
    public float[] nestedCode() { return nestedCode == null ? null : nestedCode.clone(); }

    /** The mean subtracted before the nested quantization (0 when not double-quantized). */
    public float offset() { return offset; }

    /** The dtype of the weight this was made from (bitsandbytes records it as quant_state "dtype"). */
    public DType sourceDtype() { return sourceDtype; }

    /** Bytes held: packed codes, absmax and nested statistics. */
    public long byteSize() {
        return packed.byteSize() + absmax.byteSize() + (nestedAbsmax == null ? 0 : nestedAbsmax.byteSize() + 256 * 4);
    }

    /** The absmax of block b, as bitsandbytes computes it (double quantization: code * nested + offset, in float). */
    public float blockAbsmax(int b) {
        if (b < 0 || b >= blocks) throw new IndexOutOfBoundsException("block " + b + " of " + blocks);
        if (nestedCode == null) return absmax.data().getAtIndex(Tensor.F32, b);
        int q = absmax.data().get(ValueLayout.JAVA_BYTE, b) & 0xff;
        return nestedCode[q] * nested[b / Nf4.NESTED_BLOCK] + offset;
    }

    @Override
    public String toString() {
        return "Nf4Tensor [" + rows + ", " + cols + "]" + (doubleQuant() ? " double-quantized" : "");
    }

    // ------------------------------------------------------------------ dequantization

    /** A new F32 [rows, cols] tensor holding the dequantized weight (the caller closes it). */
    public Tensor dequantize() {
        Tensor out = Tensor.allocate(DType.F32, rows, cols);
        dequantize(out);
        return out;
    }

    /** out = the dequantized weight; out is F32 or BF16 (rounded to nearest even) [rows, cols]. Fast path. */
    public void dequantize(Tensor out) {
        checkOut(out, rows);
        decode(0, numel, out.data(), out.dtype() == DType.BF16 ? Sink.BF16 : Sink.F32);
    }

    /**
     * Rows [row0, row0 + nRows) of the dequantized weight into out (F32 or BF16 [nRows, cols]):
     * the streaming form {@link Nf4Linear} uses, so that a big layer is never dequantized whole.
     */
    public void dequantizeRows(long row0, long nRows, Tensor out) {
        checkRows(row0, nRows);
        checkOut(out, nRows);
        decode(row0 * cols, (row0 + nRows) * cols, out.data(), out.dtype() == DType.BF16 ? Sink.BF16 : Sink.F32);
    }

    /** Rows [row0, row0 + nRows) of the dequantized weight into dst[0 .. nRows * cols). */
    public void dequantizeRows(long row0, int nRows, float[] dst) {
        checkRows(row0, nRows);
        long n = nRows * cols;
        if (dst.length < n) throw new IllegalArgumentException("nf4: " + nRows + " rows of " + cols + " need " + n + " floats, got " + dst.length);
        decode(row0 * cols, (row0 + nRows) * cols, MemorySegment.ofArray(dst), Sink.HEAP_F32);
    }

    /**
     * The oracle: element by element, absmax recomputed for every element, values stored through
     * {@link Tensor#setFloat} — obviously bitsandbytes' {@code code[nibble] * absmax}. The fast
     * path must agree with it bit for bit.
     */
    public void dequantizeReference(Tensor out) {
        checkOut(out, rows);
        MemorySegment p = packed.data();
        for (long e = 0; e < numel; e++) {
            int b = p.get(ValueLayout.JAVA_BYTE, e / 2) & 0xff;
            int nibble = e % 2 == 0 ? b >>> 4 : b & 0x0f;
            out.setFloat(e, Nf4.CODE[nibble] * referenceAbsmax(e / BLOCK));
        }
    }

    private float referenceAbsmax(long block) {
        if (nestedCode == null) return absmax.getFloat(block);
        int q = (int) absmax.getFloat(block); // U8 reads back as 0..255
        return nestedCode[q] * nestedAbsmax.getFloat(block / Nf4.NESTED_BLOCK) + offset;
    }

    private void checkRows(long row0, long nRows) {
        if (row0 < 0 || nRows < 0 || row0 + nRows > rows) {
            throw new IllegalArgumentException("nf4: rows [" + row0 + ", " + (row0 + nRows) + ") out of range for " + rows + " rows");
        }
    }

    private void checkOut(Tensor out, long nRows) {
        Check.dtype("nf4 dequantize", "out", out, DType.F32, DType.BF16);
        Check.shape("nf4 dequantize", "out", out, nRows, cols);
        if (!out.device().isCpu()) throw new IllegalArgumentException("nf4 dequantize: out must be on the host, got " + out.describe());
    }

    /** Where decoded values go: a tensor's little-endian F32 or BF16, or a float[] (native order). */
    private enum Sink { F32, BF16, HEAP_F32 }

    /**
     * Decodes elements [e0, e1) into out (element e at position e - e0), on all cores. Work is
     * split by whole blocks; within a block a 16-entry table code[k] * absmax turns each nibble
     * into its value with one lookup — the same float product the reference computes.
     */
    private void decode(long e0, long e1, MemorySegment out, Sink sink) {
        if (e0 >= e1) return;
        int firstBlock = (int) (e0 / BLOCK);
        int lastBlock = (int) ((e1 - 1) / BLOCK);
        MemorySegment p = packed.data();
        MemorySegment am = absmax.data();
        Parallel.forRange(lastBlock - firstBlock + 1, 16, (s, t) -> {
            float[] vals = new float[CHUNK_BLOCKS * BLOCK];
            byte[] bytes = new byte[CHUNK_BLOCKS * BLOCK / 2 + 1];
            float[] scales = new float[CHUNK_BLOCKS];
            byte[] codes = nestedCode == null ? null : new byte[CHUNK_BLOCKS];
            short[] halves = sink == Sink.BF16 ? new short[CHUNK_BLOCKS * BLOCK] : null;
            float[] lut = new float[16];
            for (int c0 = firstBlock + s; c0 < firstBlock + t; c0 += CHUNK_BLOCKS) {
                int c1 = Math.min(firstBlock + t, c0 + CHUNK_BLOCKS);
                long lo = Math.max(e0, (long) c0 * BLOCK), hi = Math.min(e1, (long) c1 * BLOCK);
                long byteLo = lo >>> 1;
                MemorySegment.copy(p, ValueLayout.JAVA_BYTE, byteLo, bytes, 0, (int) (((hi + 1) >>> 1) - byteLo));
                if (codes == null) {
                    MemorySegment.copy(am, Tensor.F32, (long) c0 * 4, scales, 0, c1 - c0);
                } else {
                    MemorySegment.copy(am, ValueLayout.JAVA_BYTE, c0, codes, 0, c1 - c0);
                    for (int b = c0; b < c1; b++) {
                        scales[b - c0] = nestedCode[codes[b - c0] & 0xff] * nested[b / Nf4.NESTED_BLOCK] + offset;
                    }
                }
                for (int b = c0; b < c1; b++) {
                    float a = scales[b - c0];
                    for (int k = 0; k < 16; k++) lut[k] = Nf4.CODE[k] * a;
                    long bs = Math.max(lo, (long) b * BLOCK), be = Math.min(hi, (long) b * BLOCK + BLOCK);
                    int v = (int) (bs - lo);
                    if (bs % 2 == 0 && be % 2 == 0) {
                        // whole bytes: high nibble first
                        for (int j = (int) ((bs >>> 1) - byteLo), end = (int) ((be >>> 1) - byteLo); j < end; j++) {
                            int x = bytes[j];
                            vals[v++] = lut[(x >>> 4) & 0x0f];
                            vals[v++] = lut[x & 0x0f];
                        }
                    } else {
                        for (long e = bs; e < be; e++) {
                            int x = bytes[(int) ((e >>> 1) - byteLo)];
                            vals[v++] = lut[(e & 1) == 0 ? (x >>> 4) & 0x0f : x & 0x0f];
                        }
                    }
                }
                int n = (int) (hi - lo);
                long at = lo - e0;
                switch (sink) {
                    case F32 -> MemorySegment.copy(vals, 0, out, Tensor.F32, at * 4, n);
                    case HEAP_F32 -> MemorySegment.copy(vals, 0, out, ValueLayout.JAVA_FLOAT_UNALIGNED, at * 4, n);
                    case BF16 -> {
                        for (int i = 0; i < n; i++) halves[i] = Numerics.floatToBf16(vals[i]);
                        MemorySegment.copy(halves, 0, out, Tensor.I16, at * 2, n);
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------------ lifetime

    /** Frees what this tensor owns (views into a checkpoint are left to the checkpoint). */
    @Override
    public void close() {
        packed.close();
        absmax.close();
        if (nestedAbsmax != null) nestedAbsmax.close();
    }

    /** Two NF4 tensors hold the same bytes and statistics (for tests and round trips). */
    public boolean sameContent(Nf4Tensor o) {
        if (rows != o.rows || cols != o.cols || doubleQuant() != o.doubleQuant()) return false;
        if (packed.data().mismatch(o.packed.data()) != -1 || absmax.data().mismatch(o.absmax.data()) != -1) return false;
        if (!doubleQuant()) return true;
        return Arrays.equals(nested, o.nested) && Arrays.equals(nestedCode, o.nestedCode)
                && Float.floatToIntBits(offset) == Float.floatToIntBits(o.offset);
    }
}
