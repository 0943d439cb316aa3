package dev.tenfold.engine.cpu;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Numerics;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** Matrix product, optionally transposed and batched: the reference and the fast path. */
final class Matmul {
    private Matmul() {}

    static void matmul(boolean fast, Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        OpChecks.MatmulDims d = check(a, transA, b, transB, out);
        if (fast) {
            fast(d, a, transA, b, transB, out, accumulate);
        } else {
            reference(d, a, transA, b, transB, out, accumulate);
        }
    }

    /** The problem, after the argument checks: out[bt] (M x N) = op(a[bt]) (M x K) * op(b[bt]) (K x N). */
    static OpChecks.MatmulDims check(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out) {
        return OpChecks.matmul(a, transA, b, transB, out);
    }

    /** Obvious triple loop with double accumulation: the oracle. */
    static void reference(OpChecks.MatmulDims d, Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        int m = d.m(), n = d.n(), k = d.k();
        for (int bt = 0; bt < d.batch(); bt++) {
            long aBase = (long) bt * m * k;
            long bBase = d.bBatched() ? (long) bt * k * n : 0;
            long oBase = (long) bt * m * n;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int p = 0; p < k; p++) {
                        float av = a.getFloat(aBase + (transA ? (long) p * m + i : (long) i * k + p));
                        float bv = b.getFloat(bBase + (transB ? (long) j * k + p : (long) p * n + j));
                        acc += (double) av * bv;
                    }
                    long o = oBase + (long) i * n + j;
                    out.setFloat(o, (float) (accumulate ? out.getFloat(o) + acc : acc));
                }
            }
        }
    }

    // =====================================================================================
    // Fast path
    //
    // The classic blocked design (Goto / BLIS). The product is cut into K-blocks of KC and, for
    // each, op(b) is copied ("packed") into column panels of NR floats per k and op(a) into row
    // panels of MR floats per k. Packing turns every layout (transposed or not, F32 or BF16)
    // into one contiguous float[] layout, so there is one micro-kernel: per k it loads NR floats
    // of B (two vectors), broadcasts MR floats of A and does MR x 2 fused multiply-adds into
    // MR x 2 accumulator vectors that stay in registers for the whole K-block. C is read and
    // written once per K-block.
    //
    // Cache plan (Zen 4/5: 32-48 KiB L1d, 1 MiB L2 per core, shared L3):
    //   - an A block (about MC x KC floats = 480 KiB) stays in L2 while the kernel walks across
    //     the B panels, a chunk of them at a time (B_CHUNK_BYTES, also in L2): each A micro-panel
    //     (MR x KC floats) is reused from L1 across the chunk's panels before the next. The
    //     12 x 2 kernel needs only 176 bytes of A and B per 24 multiply-adds, which L2
    //     sustains, so K-blocks are deep: each K-block costs a pass over C (loads and stores
    //     that miss), and at 2048^3 depths of 1024 beat 512 by a few percent and 256 by more
    //     (C traffic was ~10% of the time with 256);
    //   - a packed B block (KC x NC floats, up to 16 MiB) is shared by all threads through L3.
    //
    // Parallelism: for each K-block, all threads pack B (panels split among them); then the
    // output is cut into tiles (row blocks, and column ranges too when there are too few row
    // blocks to go round) that the threads take from Parallel.forRange, each task packing its
    // own A block.
    //
    // A few rows (decoding one token, a small batch) skip packing altogether: packing B would
    // cost more than such a product, which is bound by reading B once, so B is streamed
    // straight from its storage, parallel over N (see skinny()).
    // =====================================================================================

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** Shorts with as many lanes as F: a BF16 load that widens to one float vector. */
    private static final VectorSpecies<Short> H =
            VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final int VL = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Columns of the micro-tile: two vectors. */
    private static final int NR = 2 * VL;
    /**
     * Rows of the micro-tile. Its 2 * MR accumulators, two B vectors and the broadcasts the JIT keeps live must
     * fit the vector register file: 12 where there are 32 registers (AVX-512, AArch64), 4 where there are 16
     * (AVX2; see {@link #kernel4}).
     */
    static final int MR = F.vectorBitSize() >= 512 || System.getProperty("os.arch", "").equals("aarch64") ? 12 : 4;
    /** K-block: the depth of one pass of the micro-kernel (A and B panels hold KC floats per lane). */
    private static final int KC = 1024;
    /** About this many rows make an A block (L2 resident). */
    private static final int MC = 120;
    /** Columns of a packed B block (shared, L3 resident). A multiple of NR. */
    private static final int NC = 4096;
    /**
     * Bytes of the B panels the kernel walks across with one A micro-panel before the next (B_CHUNK_BYTES / (kc x NR x
     * 4) panels, at least one). Walking every B panel of a task for one A micro-panel, or every A micro-panel for one
     * B panel (the order before), lets the panel that is reused fall out of L1; a chunk this size stays in L2 with the
     * A block while each A micro-panel is reused across it from L1. Against the order before, alternating in one JVM
     * on a 2-core Xeon (AVX-512, 48 KiB L1, 2 MiB L2): 1.07x at 1024 x 1536 x 512, 1.10x at 1024 x 8192 x 512 (both
     * x W^T), 1.065x at 2048 cubed, 1.02x at 4096 x 512 x 1536; with AVX2 (-XX:UseAVX=2) 1.00-1.04x. A chunk of
     * 1 MiB did about as well, 256 KiB (or a shallower K-block) less.
     */
    private static final int B_CHUNK_BYTES = 512 << 10;
    /** Elements of each row that packing copies at a time when it transposes. */
    private static final int PACK_RUN = 64;
    /**
     * At most this many rows take the no-packing path when rows of B are contiguous along K (a
     * transposed b, e.g. an [N, K] weight): its dot-product kernel beat packing up to 64 rows
     * with a BF16 weight and matched it with an F32 one (K = N = 2048 and 4096, 2 cores).
     */
    private static final int SKINNY_DOTS = 64;
    /** The same when rows of b are contiguous along N (b not transposed): the crossover was 16. */
    private static final int SKINNY_ROWS = 16;
    /**
     * Decoding against a BF16 weight whose rows are shorter than this (under 4 KiB) reads them one
     * at a time, in storage order (dotBf16); longer rows four at a time (dot1x4). With weights
     * streamed from memory (past the L3), on 2 Zen 4 cores: dotBf16 1.7-2x dot1x4 at K = 512,
     * about even at K = 1536, dot1x4 ahead at K = 4096.
     */
    private static final int SHORT_ROW = 2048;

    /**
     * At most this many columns take the dot-product path when rows of op(a) are contiguous along K (a LoRA
     * adapter's x A^T and dy B, rank up to 16): the packed path would pad them to a panel of 2 vectors and
     * pack all of op(a) for a product that reads op(a) once.
     */
    private static final int FEW_COLUMNS = 16;

    /** Which algorithm a product takes: chosen by shape, or forced by tests. */
    enum Path { AUTO, PACKED, SKINNY, FEW_COLUMNS, TRANSPOSED }

    /** Below this many flops a product runs on the calling thread (forking costs more than it saves). */
    private static final long SERIAL_FLOPS = 1L << 21;
    /**
     * A skinny product (decoding) that reads at least this many bytes of weight runs on all threads even below
     * SERIAL_FLOPS: it is bound by reading the weight, which one core cannot do at the memory's rate. Decoding
     * a token of RandomLlama.small (hidden 512, BF16: every layer's q, o, gate, up and down qualify), alternating
     * in one process on 2 Intel vCPUs: 15-18 ms serial, 11-13 ms with this (when the other vCPU is stolen by
     * the host, forking costs more than it gains: the earlier A/B on a loaded machine went the other way).
     */
    static final long SKINNY_PARALLEL_BYTES = 256 << 10;

    /**
     * A matrix Y (L rows x K columns) as packing reads it: element (l, p) is element
     * {@code base + l * ls + p * ps} of the segment, stored as F32 or BF16. A is op(a) (M x K);
     * B is op(b) transposed (N x K), so that both are packed by the same code. One of ls, ps is 1.
     */
    private record Operand(MemorySegment seg, boolean bf16, long base, long ls, long ps) {
        static Operand ofA(Tensor a, boolean transA, OpChecks.MatmulDims d, int batchIndex) {
            long m = d.m(), k = d.k();
            return new Operand(a.data(), a.dtype() == DType.BF16, batchIndex * m * k, transA ? 1 : k, transA ? m : 1);
        }

        static Operand ofB(Tensor b, boolean transB, OpChecks.MatmulDims d, int batchIndex) {
            long n = d.n(), k = d.k();
            long base = d.bBatched() ? batchIndex * n * k : 0;
            return new Operand(b.data(), b.dtype() == DType.BF16, base, transB ? k : 1, transB ? 1 : n);
        }
    }

    /** Fast path: cache-blocked, packed panels, Vector API micro-kernel, all cores. */
    static void fast(OpChecks.MatmulDims d, Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        fast(d, a, transA, b, transB, out, accumulate, MR, Path.AUTO);
    }

    /**
     * The fast path with the choices a shape would make given explicitly: the micro-tile height
     * (12 or 4) and the path, so that tests reach every kernel on any machine.
     */
    static void fast(OpChecks.MatmulDims d, Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate,
                     int mr, Path path) {
        if (mr != 12 && mr != 4) throw new IllegalArgumentException("matmul: micro-tile height " + mr);
        MemorySegment c = out.data();
        int m = d.m(), n = d.n(), k = d.k(), batch = d.batch();
        if ((long) batch * m * n == 0) return;
        if (k == 0) { // empty sums
            if (!accumulate) c.fill((byte) 0);
            return;
        }
        if (batch > 1 && !d.bBatched() && !transA && (long) batch * m <= Integer.MAX_VALUE) {
            // a shared b and a row-major a: the batch is just more rows of one product
            d = new OpChecks.MatmulDims(1, batch * m, n, k, false);
            m = d.m();
            batch = 1;
        }
        boolean fewRows = m <= (transB ? SKINNY_DOTS : SKINNY_ROWS)
                && (long) batch * roundUp(m, 4) * k <= Integer.MAX_VALUE - 8; // skinny copies op(a) to a float[]
        if (path == Path.SKINNY || path == Path.AUTO && fewRows) {
            skinny(d, a, transA, b, transB, c, accumulate);
            return;
        }
        boolean fewColumns = n <= FEW_COLUMNS && !transA && batch == 1 && (long) roundUp(n, 4) * k <= Integer.MAX_VALUE - 8;
        if (path == Path.FEW_COLUMNS || path == Path.AUTO && fewColumns) {
            fewColumns(d, a, transA, b, transB, c, accumulate);
            return;
        }
        // m > FEW_COLUMNS: C^T's own product (n rows, m columns) must not come back here (were the skinny
        // path's size limit to turn it away, two transposes would call each other without end)
        boolean fewColumnsOfTransA = n <= FEW_COLUMNS && m > FEW_COLUMNS && transA && batch == 1;
        if (path == Path.TRANSPOSED || path == Path.AUTO && fewColumnsOfTransA) {
            if (batch != 1) throw new IllegalArgumentException("matmul: the transposed path takes one product, got a batch of " + batch);
            transposed(d, a, b, transB, c, accumulate);
            return;
        }
        OpChecks.MatmulDims dd = d;
        long flops = 2L * m * n * k;
        if (batch > 1 && flops < 16 * SERIAL_FLOPS) {
            // many small products: whole products are the tasks, each on one thread
            Parallel.forRange(batch, 1, (s, e) -> {
                for (int bt = s; bt < e; bt++) {
                    gemm(Operand.ofA(a, transA, dd, bt), Operand.ofB(b, transB, dd, bt), c, (long) bt * dd.m() * dd.n(),
                            dd.m(), dd.n(), dd.k(), accumulate, mr, false);
                }
            });
            return;
        }
        for (int bt = 0; bt < batch; bt++) {
            gemm(Operand.ofA(a, transA, dd, bt), Operand.ofB(b, transB, dd, bt), c, (long) bt * m * n,
                    m, n, k, accumulate, mr, flops >= SERIAL_FLOPS);
        }
    }

    /**
     * C = op(a) op(b) with few columns and a transposed a (LoRA's weight gradient dB = dy^T u: K is the
     * tokens): the packed path would fill a quarter of its column panel at most. C^T = op(b)^T a has few
     * rows instead and takes the skinny path, into a scratch tensor whose transpose then goes to C.
     * dB alone at rank 8 and 1,024 tokens: 1.15x the packed path with 512 outputs, 1.3-2.4x with 256.
     */
    private static void transposed(OpChecks.MatmulDims d, Tensor a, Tensor b, boolean transB, MemorySegment c, boolean accumulate) {
        int m = d.m(), n = d.n();
        try (Tensor ct = Tensor.allocate(DType.F32, n, m)) {
            fast(check(b, !transB, a, false, ct), b, !transB, a, false, ct, false);
            MemorySegment t = ct.data();
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    long o = (long) i * n + j;
                    float v = t.getAtIndex(Tensor.F32, (long) j * m + i);
                    c.setAtIndex(Tensor.F32, o, accumulate ? c.getAtIndex(Tensor.F32, o) + v : v);
                }
            }
        }
    }

    /** Runs body over [0, n) on all cores, or on this thread. */
    private static void run(boolean parallel, int n, Parallel.RangeBody body) {
        if (parallel) Parallel.forRange(n, 1, body);
        else if (n > 0) body.run(0, n);
    }

    /**
     * Scratch arrays of one thread for the leaf work of a product (packing, kernel tiles).
     * Reused rather than allocated per call: a 2048^3 product would otherwise allocate, and
     * the JVM zero, megabytes per K-block. Leaf work never forks or waits, so a thread never
     * needs two of these at once, however products nest.
     */
    private static final class Scratch {
        final float[] tile = new float[12 * NR];
        /** Transpose buffer (rows of up to NR x PACK_RUN) or one column of a B block (up to NC). */
        final float[] run = new float[Math.max(NR * PACK_RUN, NC)];
        /**
         * The A block: allocated at its largest (MC x KC rows and depth at most) when the thread first packs, so
         * that a larger product than any before does not take a branch the compiled code never saw: the JIT
         * turns an untaken branch into a trap, and growing it here in a run's first real step threw the
         * compiled tile loop away, to be recompiled while the step ran.
         */
        float[] aPack = new float[roundUp(MC, 12) * KC];

        float[] aPack(int size) {
            if (aPack.length < size) aPack = new float[size];
            return aPack;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * A packed B block, kept by the thread that calls matmul for its next call. It lives across
     * forks, and a thread waiting on a fork may run another product, so it is taken out while in
     * use (a nested product on the same thread finds none and allocates its own).
     */
    private static final ThreadLocal<float[]> SPARE_B = new ThreadLocal<>();

    /** One product: c[cBase..] (m x n, row-major) = or += A (m x k) . B^T (B is n x k). */
    private static void gemm(Operand A, Operand B, MemorySegment c, long cBase, int m, int n, int k,
                             boolean accumulate, int mr, boolean parallel) {
        // K-blocks of at most KC, all about the same depth (a short last block would cost a
        // pass over C for little work)
        int kcMax = ceilDiv(k, ceilDiv(k, KC));
        int bSize = kcMax * roundUp(Math.min(NC, n), NR);
        float[] spare = SPARE_B.get();
        float[] bPack = spare != null && spare.length >= bSize ? spare : new float[bSize];
        if (bPack == spare) SPARE_B.remove();
        try {
            gemmBlocks(A, B, c, cBase, m, n, k, accumulate, mr, parallel, kcMax, bPack);
        } finally {
            SPARE_B.set(bPack);
        }
    }

    private static void gemmBlocks(Operand A, Operand B, MemorySegment c, long cBase, int m, int n, int k,
                                   boolean accumulate, int mr, boolean parallel, int kcMax, float[] bPack) {
        int threads = parallel ? Parallel.threads() : 1;
        // Row blocks of about MC rows, a multiple of mr; when there are at least as many as
        // threads, a multiple of the thread count, so that no thread idles at the end.
        int mBlocks = ceilDiv(m, MC);
        if (mBlocks >= threads) mBlocks = roundUp(mBlocks, threads);
        int mc = roundUp(ceilDiv(m, mBlocks), mr);
        int rowBlocks = ceilDiv(m, mc);
        for (int jc = 0; jc < n; jc += NC) {
            int nc = Math.min(NC, n - jc), jc0 = jc;
            int nPanels = ceilDiv(nc, NR);
            // too few row blocks to keep every thread busy: cut the columns as well
            int nSplit = rowBlocks >= 2 * threads ? 1 : Math.min(nPanels, ceilDiv(4 * threads, rowBlocks));
            for (int pc = 0; pc < k; pc += kcMax) {
                int kc = Math.min(kcMax, k - pc), pc0 = pc;
                boolean store = pc == 0 && !accumulate; // the first K-block overwrites C
                run(parallel, nPanels, (s, e) ->
                        pack(B, jc0 + s * NR, Math.min(nc, e * NR) - s * NR, pc0, kc, NR, bPack, s * NR * kc));
                run(parallel, rowBlocks * nSplit, (s, e) -> {
                    Scratch scratch = SCRATCH.get();
                    float[] aPack = scratch.aPack(mc * kc), tile = scratch.tile;
                    int packed = -1;
                    for (int t = s; t < e; t++) {
                        int rb = t / nSplit, ns = t % nSplit;
                        int i0 = rb * mc, rows = Math.min(mc, m - i0);
                        if (rb != packed) { // consecutive tiles of a task share their row block
                            pack(A, i0, rows, pc0, kc, mr, aPack, 0);
                            packed = rb;
                        }
                        int p0 = (int) ((long) nPanels * ns / nSplit), p1 = (int) ((long) nPanels * (ns + 1) / nSplit);
                        // a few B panels at a time (L2), each A micro-panel (L1) across all of them
                        int chunk = Math.max(1, B_CHUNK_BYTES / (kc * NR * 4));
                        for (int jb = p0; jb < p1; jb += chunk) {
                            int jbEnd = Math.min(p1, jb + chunk);
                            for (int i = 0; i < rows; i += mr) {
                                for (int jp = jb; jp < jbEnd; jp++) {
                                    int j = jc0 + jp * NR, nr = Math.min(NR, n - j);
                                    if (mr == 12) kernel12(aPack, i * kc, bPack, jp * NR * kc, kc, tile);
                                    else kernel4(aPack, i * kc, bPack, jp * NR * kc, kc, tile);
                                    writeTile(tile, c, 4 * (cBase + (long) (i0 + i) * n + j), 4L * n,
                                            Math.min(mr, rows - i), nr, store);
                                }
                            }
                        }
                    }
                });
            }
        }
    }

    /**
     * Packs rows [l0, l0 + len) x columns [pc, pc + kc) of Y into panels of R rows:
     * {@code dst[off + q * R * kc + p * R + r] = Y(l0 + q * R + r, pc + p)}; rows of the last
     * panel past len are zero, so the kernel can always compute whole tiles.
     */
    private static void pack(Operand y, int l0, int len, int pc, int kc, int R, float[] dst, int off) {
        if (y.ps() == 1) {
            // Rows of Y are contiguous along K (a row-major a, a transposed b): a transpose.
            // Short runs of R rows go through a small buffer (L1), so that both the reads from
            // Y and the writes to dst are sequential; writing each row of Y straight into dst,
            // with stride R, was the bottleneck of packing. A whole panel leaves the buffer by
            // gathers (gatherMap), a partial one (and the last few values of p) element by element.
            float[] buf = SCRATCH.get().run;
            for (int q = 0; q * R < len; q++) {
                int rows = Math.min(R, len - q * R), o = off + q * R * kc;
                long row0 = y.base() + (long) (l0 + q * R) * y.ls() + pc;
                int[] map = rows == R ? gatherMap(R) : null;
                for (int p0 = 0; p0 < kc; p0 += PACK_RUN) {
                    int pb = Math.min(PACK_RUN, kc - p0), p = 0;
                    for (int r = 0; r < rows; r++) loadRun(y, row0 + r * y.ls() + p0, pb, buf, r * PACK_RUN);
                    if (map != null) { // whole panel: gathers, map.length / R values of p at a time
                        int period = map.length / R;
                        for (; p + period <= pb; p += period) {
                            for (int j = 0; j < map.length; j += VL) FloatVector.fromArray(F, buf, p, map, j).intoArray(dst, o + (p0 + p) * R + j);
                        }
                    }
                    for (; p < pb; p++) {
                        int d = o + (p0 + p) * R;
                        for (int r = 0; r < rows; r++) dst[d + r] = buf[r * PACK_RUN + p];
                    }
                }
            }
        } else {
            // Columns of Y are contiguous (ls == 1): copy a column, cut it into panel rows.
            float[] run = SCRATCH.get().run;
            for (int p = 0; p < kc; p++) {
                loadRun(y, y.base() + (long) (pc + p) * y.ps() + l0, len, run, 0);
                for (int q = 0; q * R < len; q++) {
                    System.arraycopy(run, q * R, dst, off + q * R * kc + p * R, Math.min(R, len - q * R));
                }
            }
        }
        int rem = len % R;
        if (rem != 0) {
            int o = off + (len / R) * R * kc;
            for (int p = 0; p < kc; p++) {
                for (int r = rem; r < R; r++) dst[o + p * R + r] = 0f;
            }
        }
    }

    /**
     * Gather indices for transposing a whole panel of R rows out of pack's buffer (rows PACK_RUN apart):
     * packed element t of a group of lcm(R, VL) comes from buf[(t % R) * PACK_RUN + t / R]. Null where
     * gathers are not hardware instructions (Arm) or the panel height is not one pack uses. The gathers
     * replaced a scalar transpose whose bounds-checked moves cost about 4 cycles a float: products with
     * few columns or a short K, where packing A is 10-25% of the time, ran 4-17% faster on 2 cores.
     */
    private static int[] gatherMap(int R) {
        return R == MR ? GATHER_MR : R == NR ? GATHER_NR : R == 4 ? GATHER_4 : null;
    }

    private static final boolean GATHERS = F.vectorBitSize() >= 256 && !System.getProperty("os.arch", "").equals("aarch64");
    private static final int[] GATHER_MR = gatherIndices(MR), GATHER_NR = gatherIndices(NR), GATHER_4 = gatherIndices(4);

    private static int[] gatherIndices(int R) {
        if (!GATHERS) return null;
        int l = R;
        while (l % VL != 0) l += R;
        int[] map = new int[l];
        for (int t = 0; t < l; t++) map[t] = (t % R) * PACK_RUN + t / R;
        return map;
    }

    /** Reads len consecutive elements of y's storage from element index idx into dst[at..], as floats. */
    private static void loadRun(Operand y, long idx, int len, float[] dst, int at) {
        if (!y.bf16()) {
            MemorySegment.copy(y.seg(), Tensor.F32, idx * 4, dst, at, len);
            return;
        }
        int i = 0;
        for (; i <= len - VL; i += VL) load(y, idx + i).intoArray(dst, at + i);
        for (; i < len; i++) dst[at + i] = elem(y, idx + i);
    }

    /**
     * The micro-kernel for 32 vector registers: tile (12 x NR floats, row-major) = A panel
     * (kc x 12) times B panel (kc x NR). The 24 accumulators (12 rows x 2 vectors) are separate locals so that they live
     * in registers for the whole loop: per k, two loads of B, twelve broadcasts of A and 24 fused
     * multiply-adds, which leaves 5 of the 32 AVX-512 registers spare (no spills). 12 x 2 beat
     * 6 x 2, 8 x 3 and 4 x 4 in an L1-resident test on Zen 5.
     * The tile leaves through a float[] rather than straight into C: handing vectors to another
     * method, or touching a MemorySegment here, can make C2 box them inside the loop (seen as a
     * several-fold slowdown after a recompilation), whereas array stores always compile flat.
     */
    private static void kernel12(float[] ap, int ao, float[] bp, int bo, int kc, float[] tile) {
        FloatVector c0a = FloatVector.zero(F), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a, c3a = c0a, c3b = c0a;
        FloatVector c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a;
        FloatVector c8a = c0a, c8b = c0a, c9a = c0a, c9b = c0a, c10a = c0a, c10b = c0a, c11a = c0a, c11b = c0a;
        for (int end = ao + 12 * kc; ao < end; ao += 12, bo += NR) { // the A index is the counter (see kernel4)
            FloatVector b0 = FloatVector.fromArray(F, bp, bo), b1 = FloatVector.fromArray(F, bp, bo + VL);
            FloatVector x;
            x = FloatVector.broadcast(F, ap[ao]);
            c0a = x.fma(b0, c0a);
            c0b = x.fma(b1, c0b);
            x = FloatVector.broadcast(F, ap[ao + 1]);
            c1a = x.fma(b0, c1a);
            c1b = x.fma(b1, c1b);
            x = FloatVector.broadcast(F, ap[ao + 2]);
            c2a = x.fma(b0, c2a);
            c2b = x.fma(b1, c2b);
            x = FloatVector.broadcast(F, ap[ao + 3]);
            c3a = x.fma(b0, c3a);
            c3b = x.fma(b1, c3b);
            x = FloatVector.broadcast(F, ap[ao + 4]);
            c4a = x.fma(b0, c4a);
            c4b = x.fma(b1, c4b);
            x = FloatVector.broadcast(F, ap[ao + 5]);
            c5a = x.fma(b0, c5a);
            c5b = x.fma(b1, c5b);
            x = FloatVector.broadcast(F, ap[ao + 6]);
            c6a = x.fma(b0, c6a);
            c6b = x.fma(b1, c6b);
            x = FloatVector.broadcast(F, ap[ao + 7]);
            c7a = x.fma(b0, c7a);
            c7b = x.fma(b1, c7b);
            x = FloatVector.broadcast(F, ap[ao + 8]);
            c8a = x.fma(b0, c8a);
            c8b = x.fma(b1, c8b);
            x = FloatVector.broadcast(F, ap[ao + 9]);
            c9a = x.fma(b0, c9a);
            c9b = x.fma(b1, c9b);
            x = FloatVector.broadcast(F, ap[ao + 10]);
            c10a = x.fma(b0, c10a);
            c10b = x.fma(b1, c10b);
            x = FloatVector.broadcast(F, ap[ao + 11]);
            c11a = x.fma(b0, c11a);
            c11b = x.fma(b1, c11b);
        }
        c0a.intoArray(tile, 0 * NR);
        c0b.intoArray(tile, 0 * NR + VL);
        c1a.intoArray(tile, 1 * NR);
        c1b.intoArray(tile, 1 * NR + VL);
        c2a.intoArray(tile, 2 * NR);
        c2b.intoArray(tile, 2 * NR + VL);
        c3a.intoArray(tile, 3 * NR);
        c3b.intoArray(tile, 3 * NR + VL);
        c4a.intoArray(tile, 4 * NR);
        c4b.intoArray(tile, 4 * NR + VL);
        c5a.intoArray(tile, 5 * NR);
        c5b.intoArray(tile, 5 * NR + VL);
        c6a.intoArray(tile, 6 * NR);
        c6b.intoArray(tile, 6 * NR + VL);
        c7a.intoArray(tile, 7 * NR);
        c7b.intoArray(tile, 7 * NR + VL);
        c8a.intoArray(tile, 8 * NR);
        c8b.intoArray(tile, 8 * NR + VL);
        c9a.intoArray(tile, 9 * NR);
        c9b.intoArray(tile, 9 * NR + VL);
        c10a.intoArray(tile, 10 * NR);
        c10b.intoArray(tile, 10 * NR + VL);
        c11a.intoArray(tile, 11 * NR);
        c11b.intoArray(tile, 11 * NR + VL);
    }

    /**
     * The micro-kernel for 16 vector registers (AVX2): 4 rows x 2 vectors, otherwise as {@link #kernel12}. Its 8
     * accumulators, 2 B vectors and 4 broadcasts fit 16 registers. 6 x 2 (12 accumulators) needs 15 only if one
     * broadcast is live at a time, but C2 loads a step's broadcasts ahead of their multiply-adds and then spills an
     * accumulator to the stack on every step (seen in its code): its store and reload sit on that accumulator's
     * chain. On a Xeon with -XX:UseAVX=2, L1-resident panels: 4 x 2 at 99 GFLOP/s a core, the register-only FMA
     * rate, against 69-74 for 6 x 2 and for 5 x 2 and 4 x 3 (which spill the same way); in products of the
     * training step on 2 cores, 1.24-1.40x.
     * <p>
     * The loop counts with the A index itself, not a separate p: C2 rebuilds every other index from the counter,
     * and with p it spent six integer instructions a step on indices (lea, mov, shl, add, movslq, inc), against
     * three with ao (lea, movslq, add). Beside 8 fused multiply-adds, on ports the integer ALUs share, that was
     * the difference between 84-91 GFLOP/s a core and 93-98; in the step's products, alternating in one JVM with
     * -XX:UseAVX=2, 1.09-1.18x (1.14x geomean over 12 shapes). kernel12 counts the same way: its 24 multiply-adds
     * hid the difference (1.01x at AVX-512).
     */
    private static void kernel4(float[] ap, int ao, float[] bp, int bo, int kc, float[] tile) {
        FloatVector c0a = FloatVector.zero(F), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a, c3a = c0a, c3b = c0a;
        for (int end = ao + 4 * kc; ao < end; ao += 4, bo += NR) { // the A index is the loop's counter: see above
            FloatVector b0 = FloatVector.fromArray(F, bp, bo), b1 = FloatVector.fromArray(F, bp, bo + VL);
            FloatVector x;
            x = FloatVector.broadcast(F, ap[ao]);
            c0a = x.fma(b0, c0a);
            c0b = x.fma(b1, c0b);
            x = FloatVector.broadcast(F, ap[ao + 1]);
            c1a = x.fma(b0, c1a);
            c1b = x.fma(b1, c1b);
            x = FloatVector.broadcast(F, ap[ao + 2]);
            c2a = x.fma(b0, c2a);
            c2b = x.fma(b1, c2b);
            x = FloatVector.broadcast(F, ap[ao + 3]);
            c3a = x.fma(b0, c3a);
            c3b = x.fma(b1, c3b);
        }
        c0a.intoArray(tile, 0 * NR);
        c0b.intoArray(tile, 0 * NR + VL);
        c1a.intoArray(tile, 1 * NR);
        c1b.intoArray(tile, 1 * NR + VL);
        c2a.intoArray(tile, 2 * NR);
        c2b.intoArray(tile, 2 * NR + VL);
        c3a.intoArray(tile, 3 * NR);
        c3b.intoArray(tile, 3 * NR + VL);
    }

    /**
     * Writes (store) or adds the top-left mr x nr corner of a kernel tile to C at byte offset
     * cOff, rows ldc bytes apart. Columns past nr (the right edge) are masked: never read or
     * written.
     */
    private static void writeTile(float[] tile, MemorySegment c, long cOff, long ldc, int mr, int nr, boolean store) {
        if (nr == NR) { // whole rows: two plain vectors per row
            for (int r = 0, t = 0; r < mr; r++, t += NR, cOff += ldc) {
                FloatVector v0 = FloatVector.fromArray(F, tile, t), v1 = FloatVector.fromArray(F, tile, t + VL);
                long off1 = cOff + 4L * VL;
                if (!store) {
                    v0 = v0.add(FloatVector.fromMemorySegment(F, c, cOff, LE));
                    v1 = v1.add(FloatVector.fromMemorySegment(F, c, off1, LE));
                }
                v0.intoMemorySegment(c, cOff, LE);
                v1.intoMemorySegment(c, off1, LE);
            }
            return;
        }
        for (int r = 0; r < mr; r++, cOff += ldc) { // right edge: lanes past nr are masked off
            for (int v = 0; v < nr; v += VL) {
                VectorMask<Float> m = F.indexInRange(v, nr);
                FloatVector t = FloatVector.fromArray(F, tile, r * NR + v);
                long off = cOff + 4L * v;
                if (!store) t = t.add(FloatVector.fromMemorySegment(F, c, off, LE, m));
                t.intoMemorySegment(c, off, LE, m);
            }
        }
    }

    // ------------------------------------------------------------------ skinny products (few rows)

    /**
     * A few rows (decoding, small batches): packing B would cost more than the product itself,
     * so B is streamed once, straight from its storage, parallel over N (and the batch). The
     * rows of op(a) are first copied to a float[] (M x K, cheap), padded with zero rows to a
     * multiple of four.
     */
    private static void skinny(OpChecks.MatmulDims d, Tensor a, boolean transA, Tensor b, boolean transB, MemorySegment c,
                               boolean accumulate) {
        int m = d.m(), n = d.n(), k = d.k(), batch = d.batch();
        int m4 = roundUp(m, 4);
        float[] x = new float[batch * m4 * k];
        for (int bt = 0; bt < batch; bt++) {
            Operand A = Operand.ofA(a, transA, d, bt);
            for (int i = 0; i < m; i++) {
                int o = (bt * m4 + i) * k;
                long row = A.base() + i * A.ls();
                if (A.ps() == 1) loadRun(A, row, k, x, o);
                else for (int p = 0; p < k; p++) x[o + p] = elem(A, row + p * A.ps());
            }
        }
        // B rows contiguous along K (a transposed b, like a [N, K] weight): dot products.
        // Otherwise (b rows contiguous along N): scaled row sums, on their own (rowSumsProduct).
        boolean dots = Operand.ofB(b, transB, d, 0).ps() == 1;
        if (!dots) {
            rowSumsProduct(d, x, m4, b, transB, c, accumulate);
            return;
        }
        // Decoding (one to three rows against a BF16 weight with short rows): rows of x split
        // into even and odd elements, which is how dotBf16 widens the weight (see there)
        float[] xp = dots && m < 4 && b.dtype() == DType.BF16 && k < SHORT_ROW ? splitPairs(x, batch * m4, k) : null;
        // Work units: (batch entry, range of output columns), a few per core.
        int per = ceilDiv(n, 4 * Parallel.threads());
        int chunk = roundUp(Math.max(per, 16), 4);
        int chunks = ceilDiv(n, chunk);
        boolean parallel = 2L * batch * m * n * k >= SERIAL_FLOPS
                || (long) batch * n * k * b.dtype().byteSize(1) >= SKINNY_PARALLEL_BYTES;
        run(parallel, batch * chunks, (s, e) -> {
            float[] sums = new float[m4 * chunk];
            // widened rows of B, or (decoding) the lanes of four accumulators
            float[] w = new float[m < 4 ? 4 * VL : 4 * k];
            for (int u = s; u < e; u++) {
                int bt = u / chunks, j0 = (u % chunks) * chunk, j1 = Math.min(n, j0 + chunk);
                Operand B = Operand.ofB(b, transB, d, bt);
                dotRows(x, xp, bt * m4 * k, m, B, j0, j1, k, w, sums, chunk);
                for (int i = 0; i < m; i++) {
                    long o = (long) (bt * m + i) * n;
                    if (!accumulate) {
                        MemorySegment.copy(sums, i * chunk, c, Tensor.F32, 4 * (o + j0), j1 - j0);
                        continue;
                    }
                    for (int j = j0; j < j1; j++) {
                        c.setAtIndex(Tensor.F32, o + j, c.getAtIndex(Tensor.F32, o + j) + sums[i * chunk + j - j0]);
                    }
                }
            }
        });
    }

    /**
     * The skinny product when rows of B are contiguous along N (b not transposed; LoRA's dA = (dy B)^T x, whose
     * K is the tokens): x (the rows of op(a), m4 floats apart per batch entry) times B by {@link #rowSums}. Work
     * units are (batch entry, columns of at most about 16 KiB of sums, range of K): a task streams whole rows
     * of B (a column stripe of each row, 256 bytes, starved the hardware prefetcher: 3 GB/s) into sums that
     * stay in L1, and when there are fewer than 8 such units, K is split as well (ranges at least 64 deep).
     * The ranges' partial sums are added in range order afterwards.
     */
    private static void rowSumsProduct(OpChecks.MatmulDims d, float[] x, int m4, Tensor b, boolean transB, MemorySegment c,
                                       boolean accumulate) {
        int m = d.m(), n = d.n(), k = d.k(), batch = d.batch();
        int chunk = Math.min(roundUp(n, VL), Math.max(VL, (4096 / m) / VL * VL));
        int chunks = ceilDiv(n, chunk);
        boolean parallel = 2L * batch * m * n * k >= SERIAL_FLOPS
                || (long) batch * n * k * b.dtype().byteSize(1) >= SKINNY_PARALLEL_BYTES;
        // K ranges: about 8 work units in all (a number of the shapes alone, not of the cores: the sums' order
        // and so their bits do not depend on the machine), each at least 64 deep (a multiple of 4)
        int splits = parallel ? Math.max(1, Math.min(ceilDiv(8, batch * chunks), k / 64)) : 1;
        int depth = roundUp(ceilDiv(k, splits), 4);
        splits = ceilDiv(k, depth);
        float[][] partial = new float[batch * chunks * splits][];
        int nSplits = splits;
        run(parallel, batch * chunks * splits, (s, e) -> {
            for (int u = s; u < e; u++) {
                int bt = u / (chunks * nSplits), j0 = (u / nSplits % chunks) * chunk, j1 = Math.min(n, j0 + chunk);
                int p0 = (u % nSplits) * depth, p1 = Math.min(k, p0 + depth);
                float[] sums = new float[m * chunk];
                rowSums(x, bt * m4 * k, m, Operand.ofB(b, transB, d, bt), j0, j1, p0, p1, k, sums, chunk);
                partial[u] = sums;
            }
        });
        for (int bt = 0; bt < batch; bt++) {
            for (int ch = 0; ch < chunks; ch++) {
                int j0 = ch * chunk, j1 = Math.min(n, j0 + chunk), u0 = (bt * chunks + ch) * splits;
                for (int i = 0; i < m; i++) {
                    long o = (long) (bt * m + i) * n;
                    for (int j = j0; j < j1; j++) {
                        float v = partial[u0][i * chunk + j - j0];
                        for (int sp = 1; sp < splits; sp++) v += partial[u0 + sp][i * chunk + j - j0];
                        c.setAtIndex(Tensor.F32, o + j, accumulate ? c.getAtIndex(Tensor.F32, o + j) + v : v);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ few columns (a LoRA rank)

    /**
     * A few columns (N up to FEW_COLUMNS): op(b) is copied once into a float[] of N rows of K (zero
     * rows up to a multiple of four), and each group of four rows of op(a), copied to a float[] in
     * turn, meets it four rows at a time in dot4x4; parallel over groups of rows. op(a) is read once
     * and nothing is wasted on padding beyond the fourth column. Batches run one after another.
     */
    private static void fewColumns(OpChecks.MatmulDims d, Tensor a, boolean transA, Tensor b, boolean transB, MemorySegment c,
                                   boolean accumulate) {
        int m = d.m(), n = d.n(), k = d.k(), n4 = roundUp(n, 4);
        for (int bt = 0; bt < d.batch(); bt++) {
            Operand A = Operand.ofA(a, transA, d, bt), B = Operand.ofB(b, transB, d, bt);
            float[] w = new float[n4 * k];
            for (int j = 0; j < n; j++) {
                long row = B.base() + j * B.ls();
                if (B.ps() == 1) loadRun(B, row, k, w, j * k);
                else for (int p = 0; p < k; p++) w[j * k + p] = elem(B, row + p * B.ps());
            }
            long cBase = (long) bt * m * n;
            int groups = ceilDiv(m, 4);
            boolean parallel = 2L * m * n * k >= SERIAL_FLOPS;
            run(parallel, groups, (s, e) -> {
                float[] x = new float[4 * k], sums = new float[4 * n4], red = new float[REDUCED];
                for (int g = s; g < e; g++) {
                    int i0 = 4 * g, rows = Math.min(4, m - i0);
                    for (int r = 0; r < 4; r++) {
                        if (r < rows && A.ps() == 1) loadRun(A, A.base() + (long) (i0 + r) * A.ls(), k, x, r * k);
                        else if (r < rows) for (int p = 0; p < k; p++) x[r * k + p] = elem(A, A.base() + (long) (i0 + r) * A.ls() + p * A.ps());
                        else Arrays.fill(x, r * k, (r + 1) * k, 0f);
                    }
                    for (int q = 0; q < n4; q += 4) dot4x4(x, 0, w, q * k, k, sums, q, n4, red);
                    for (int r = 0; r < rows; r++) {
                        long o = cBase + (long) (i0 + r) * n;
                        for (int j = 0; j < n; j++) {
                            float v = sums[r * n4 + j];
                            c.setAtIndex(Tensor.F32, o + j, accumulate ? c.getAtIndex(Tensor.F32, o + j) + v : v);
                        }
                    }
                }
            });
        }
    }

    /**
     * sums[i * ld + j - j0] = dot(x row i, B row j) for i < m and j in [j0, j1), where B rows
     * are contiguous along K. One to three rows (decoding): B rows are read straight from
     * storage, widened on the fly, once per row of x: one at a time when xp (x split by
     * splitPairs) is given (BF16 rows shorter than SHORT_ROW), else four at a time. Four rows or more: each
     * group of four B rows is widened once into w and met with four rows of x at a time.
     */
    private static void dotRows(float[] x, float[] xp, int xo, int m, Operand B, int j0, int j1, int k, float[] w,
                                float[] sums, int ld) {
        float[] red = m < 4 ? null : new float[REDUCED];
        for (int j = j0; j < j1; j += 4) {
            int nj = Math.min(4, j1 - j);
            if (m < 4) {
                for (int i = 0; i < m; i++) {
                    if (xp != null) {
                        for (int q = 0; q < nj; q++) sums[i * ld + j - j0 + q] = dotBf16(x, xp, xo + i * k, B, j + q, k, w);
                    } else {
                        dot1x4(x, xo + i * k, B, j, nj, k, sums, i * ld + j - j0);
                    }
                }
                continue;
            }
            for (int r = 0; r < 4; r++) {
                if (r < nj) loadRun(B, B.base() + (long) (j + r) * B.ls(), k, w, r * k);
                else Arrays.fill(w, r * k, (r + 1) * k, 0f);
            }
            for (int i = 0; i < m; i += 4) dot4x4(x, xo + i * k, w, 0, k, sums, i * ld + j - j0, ld, red);
        }
    }

    /**
     * sums[so + q] = dot(x row, B row j + q) for q < nj (at most 4), the B rows read straight
     * from storage: per vector of K, one load of x and four of B for four accumulators.
     */
    private static void dot1x4(float[] x, int xo, Operand B, int j, int nj, int k, float[] sums, int so) {
        int kv = k - k % VL;
        long r0 = B.base() + (long) j * B.ls(); // rows past nj repeat row j; their sums are dropped
        long r1 = nj > 1 ? r0 + B.ls() : r0, r2 = nj > 2 ? r0 + 2 * B.ls() : r0, r3 = nj > 3 ? r0 + 3 * B.ls() : r0;
        FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
        for (int p = 0; p < kv; p += VL) {
            FloatVector v = FloatVector.fromArray(F, x, xo + p);
            s0 = load(B, r0 + p).fma(v, s0);
            s1 = load(B, r1 + p).fma(v, s1);
            s2 = load(B, r2 + p).fma(v, s2);
            s3 = load(B, r3 + p).fma(v, s3);
        }
        float t0 = VectorMath.sum(s0), t1 = VectorMath.sum(s1);
        float t2 = VectorMath.sum(s2), t3 = VectorMath.sum(s3);
        for (int p = kv; p < k; p++) {
            float xs = x[xo + p];
            t0 += xs * elem(B, r0 + p);
            t1 += xs * elem(B, r1 + p);
            t2 += xs * elem(B, r2 + p);
            t3 += xs * elem(B, r3 + p);
        }
        sums[so] = t0;
        if (nj > 1) sums[so + 1] = t1;
        if (nj > 2) sums[so + 2] = t2;
        if (nj > 3) sums[so + 3] = t3;
    }

    /**
     * Rows of x (rows of k floats) with each block of 2 * VL elements reordered: its VL even
     * elements, then its VL odd ones. A trailing part shorter than a block is left out (zeros).
     */
    private static float[] splitPairs(float[] x, int rows, int k) {
        float[] xp = new float[rows * k];
        int kv = k - k % (2 * VL);
        for (int r = 0; r < rows; r++) {
            for (int p = 0; p < kv; p += 2 * VL) {
                int o = r * k + p;
                for (int q = 0; q < VL; q++) {
                    xp[o + q] = x[o + 2 * q];
                    xp[o + VL + q] = x[o + 2 * q + 1];
                }
            }
        }
        return xp;
    }

    /**
     * dot(x row, B row j) for a BF16 B, with x also given as splitPairs(x) in xp (same offsets).
     * The weight is read as ints, each holding two BF16 values: shifted left by 16, an int is the
     * float of its even element; masked to its high half, the float of its odd element. So one
     * load, a shift and an and widen 2 * VL weights (dot1x4 converts VL shorts to ints instead),
     * and the even and odd parts meet the matching halves of the reordered x. One row at a time,
     * so that short rows are read in storage order (four at a time interleaves four short streams).
     */
    private static float dotBf16(float[] x, float[] xp, int xo, Operand B, int j, int k, float[] lanes) {
        int kv = k - k % (2 * VL), kv2 = kv - kv % (4 * VL);
        MemorySegment seg = B.seg();
        long r = B.base() + (long) j * B.ls();
        IntVector high = IntVector.broadcast(I, 0xFFFF0000);
        FloatVector e0 = FloatVector.zero(F), o0 = e0, e1 = e0, o1 = e0;
        int p = 0;
        for (; p < kv2; p += 4 * VL) {
            IntVector w0 = IntVector.fromMemorySegment(I, seg, 2 * (r + p), LE);
            IntVector w1 = IntVector.fromMemorySegment(I, seg, 2 * (r + p) + 4 * VL, LE);
            e0 = w0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, xo + p), e0);
            o0 = w0.and(high).reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, xo + p + VL), o0);
            e1 = w1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, xo + p + 2 * VL), e1);
            o1 = w1.and(high).reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, xo + p + 3 * VL), o1);
        }
        for (; p < kv; p += 2 * VL) {
            IntVector w0 = IntVector.fromMemorySegment(I, seg, 2 * (r + p), LE);
            e0 = w0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, xo + p), e0);
            o0 = w0.and(high).reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, xo + p + VL), o0);
        }
        e0.add(o0).add(e1.add(o1)).intoArray(lanes, 0);
        float t = sumLanes(lanes, 0);
        for (p = kv; p < k; p++) t += x[xo + p] * elem(B, r + p);
        return t;
    }

    /** The sum of t[o .. o + VL), in four interleaved partial sums. */
    private static float sumLanes(float[] t, int o) {
        float a = 0, b = 0, c = 0, d = 0;
        for (int l = 0; l < VL; l += 4) {
            a += t[o + l];
            b += t[o + l + 1];
            c += t[o + l + 2];
            d += t[o + l + 3];
        }
        return (a + b) + (c + d);
    }

    /**
     * sums[so + r * ld + q] = dot(x row r, w row q) for r, q < 4; rows of x (from xo) and of w (from
     * wo) are k floats long. Sixteen accumulators: per vector of K, eight loads and sixteen multiply-adds.
     * red is scratch of REDUCED floats.
     */
    private static void dot4x4(float[] x, int xo, float[] w, int wo, int k, float[] sums, int so, int ld, float[] red) {
        dot4x4(x, xo, w, wo, k, sums, so, ld, red, MR == 4);
    }

    /** {@link #dot4x4} in two 4 x 2 halves or not (tests reach both on any machine): the same bits. */
    static void dot4x4(float[] x, int xo, float[] w, int wo, int k, float[] sums, int so, int ld, float[] red, boolean inHalves) {
        if (inHalves) { // 16 vector registers: 16 accumulators, 4 rows of w and one of x would spill
            dot4x2(x, xo, w, wo, k, sums, so, ld, red);
            dot4x2(x, xo, w, wo + 2 * k, k, sums, so + 2, ld, red);
            return;
        }
        int kv = k - k % VL, x1 = xo + k, x2 = x1 + k, x3 = x2 + k, w1 = wo + k, w2 = w1 + k, w3 = w2 + k;
        FloatVector s00 = FloatVector.zero(F), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        FloatVector s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
        for (int p = 0; p < kv; p += VL) {
            FloatVector b0 = FloatVector.fromArray(F, w, wo + p), b1 = FloatVector.fromArray(F, w, w1 + p);
            FloatVector b2 = FloatVector.fromArray(F, w, w2 + p), b3 = FloatVector.fromArray(F, w, w3 + p);
            FloatVector v = FloatVector.fromArray(F, x, xo + p);
            s00 = v.fma(b0, s00);
            s01 = v.fma(b1, s01);
            s02 = v.fma(b2, s02);
            s03 = v.fma(b3, s03);
            v = FloatVector.fromArray(F, x, x1 + p);
            s10 = v.fma(b0, s10);
            s11 = v.fma(b1, s11);
            s12 = v.fma(b2, s12);
            s13 = v.fma(b3, s13);
            v = FloatVector.fromArray(F, x, x2 + p);
            s20 = v.fma(b0, s20);
            s21 = v.fma(b1, s21);
            s22 = v.fma(b2, s22);
            s23 = v.fma(b3, s23);
            v = FloatVector.fromArray(F, x, x3 + p);
            s30 = v.fma(b0, s30);
            s31 = v.fma(b1, s31);
            s32 = v.fma(b2, s32);
            s33 = v.fma(b3, s33);
        }
        // The sixteen lane sums, each by the balanced pairwise tree over its lanes (the same bits on every run), in a
        // method of its own: written here, dot4x4 was too large for C2 to inline the lane permutations it used, and each
        // ran out of line on boxed vectors (35 MB of garbage a 4K training step at hidden 512, and x A^T at 0.3x the
        // peer's speed).
        s00.intoArray(red, 0);
        s01.intoArray(red, VL);
        s02.intoArray(red, 2 * VL);
        s03.intoArray(red, 3 * VL);
        s10.intoArray(red, 4 * VL);
        s11.intoArray(red, 5 * VL);
        s12.intoArray(red, 6 * VL);
        s13.intoArray(red, 7 * VL);
        s20.intoArray(red, 8 * VL);
        s21.intoArray(red, 9 * VL);
        s22.intoArray(red, 10 * VL);
        s23.intoArray(red, 11 * VL);
        s30.intoArray(red, 12 * VL);
        s31.intoArray(red, 13 * VL);
        s32.intoArray(red, 14 * VL);
        s33.intoArray(red, 15 * VL);
        laneSums(red, 16);
        for (int r = 0; r < 4; r++) { // plus the last k % VL terms
            for (int q = 0; q < 4; q++) {
                float t = red[SUMS + 4 * r + q];
                for (int p = kv; p < k; p++) t += x[xo + r * k + p] * w[wo + q * k + p];
                sums[so + r * ld + q] = t;
            }
        }
    }

    /**
     * dot4x4's work on two rows of w, for 16 vector registers: its 8 accumulators, 2 rows of w and one of x fit them, where
     * dot4x4's 21 spilled (x A^T, 1,024 x 8 x 512, took 148-157 us with AVX2 against 84 us with AVX-512's 32 registers).
     * Every sum runs in the same order as in dot4x4: the same bits.
     */
    private static void dot4x2(float[] x, int xo, float[] w, int wo, int k, float[] sums, int so, int ld, float[] red) {
        int kv = k - k % VL, x1 = xo + k, x2 = x1 + k, x3 = x2 + k, w1 = wo + k;
        FloatVector s00 = FloatVector.zero(F), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
        for (int p = 0; p < kv; p += VL) {
            FloatVector b0 = FloatVector.fromArray(F, w, wo + p), b1 = FloatVector.fromArray(F, w, w1 + p);
            FloatVector v = FloatVector.fromArray(F, x, xo + p);
            s00 = v.fma(b0, s00);
            s01 = v.fma(b1, s01);
            v = FloatVector.fromArray(F, x, x1 + p);
            s10 = v.fma(b0, s10);
            s11 = v.fma(b1, s11);
            v = FloatVector.fromArray(F, x, x2 + p);
            s20 = v.fma(b0, s20);
            s21 = v.fma(b1, s21);
            v = FloatVector.fromArray(F, x, x3 + p);
            s30 = v.fma(b0, s30);
            s31 = v.fma(b1, s31);
        }
        s00.intoArray(red, 0);
        s01.intoArray(red, VL);
        s10.intoArray(red, 2 * VL);
        s11.intoArray(red, 3 * VL);
        s20.intoArray(red, 4 * VL);
        s21.intoArray(red, 5 * VL);
        s30.intoArray(red, 6 * VL);
        s31.intoArray(red, 7 * VL);
        laneSums(red, 8);
        for (int r = 0; r < 4; r++) { // plus the last k % VL terms
            for (int q = 0; q < 2; q++) {
                float t = red[SUMS + 2 * r + q];
                for (int p = kv; p < k; p++) t += x[xo + r * k + p] * w[wo + q * k + p];
                sums[so + r * ld + q] = t;
            }
        }
    }

    /** dot4x4's scratch: its sixteen accumulators (VL floats each), then VL vectors for laneSums' tree, then the sixteen sums. */
    static final int TREE = 16 * VL, SUMS = TREE + VL * VL, REDUCED = SUMS + Math.max(16, VL);

    /**
     * red[SUMS + a] = the sum of accumulator a's lanes red[a * VL ..] (a < count, 16 at most), each by the balanced tree that adds
     * neighbouring lanes, then neighbouring pairs, and so on. Vectorized across accumulators: gather l holds lane l of VL
     * accumulators, and the tree adds whole gathers. Loops over arrays, no vectors passed between methods: nothing for
     * C2 to box, whatever it inlines. Where gathers are not instructions (Arm), the same tree in scalars.
     */
    private static void laneSums(float[] red, int count) {
        laneSums(red, count, GATHERS);
    }

    /** {@link #laneSums} by gathers or by scalars (tests reach both on any machine): the same bits. */
    static void laneSums(float[] red, int count, boolean gathers) {
        for (int g = 0; g < count; g += VL) { // VL accumulators at a time (past count, lanes of no use)
            if (gathers) {
                for (int l = 0; l < VL; l++) FloatVector.fromArray(F, red, 0, LANE_OF_ACCUMULATORS, (g + l) * VL).intoArray(red, TREE + l * VL);
                for (int n = VL; n > 1; n /= 2) {
                    for (int i = 0; i < n / 2; i++) {
                        FloatVector.fromArray(F, red, TREE + 2 * i * VL).add(FloatVector.fromArray(F, red, TREE + (2 * i + 1) * VL))
                                .intoArray(red, TREE + i * VL);
                    }
                }
                System.arraycopy(red, TREE, red, SUMS + g, VL);
            } else {
                for (int a = g; a < Math.min(g + VL, count); a++) {
                    System.arraycopy(red, a * VL, red, TREE, VL);
                    for (int n = VL; n > 1; n /= 2) {
                        for (int i = 0; i < n / 2; i++) red[TREE + i] = red[TREE + 2 * i] + red[TREE + 2 * i + 1];
                    }
                    red[SUMS + a] = red[TREE];
                }
            }
        }
    }

    /**
     * Gather indices for laneSums: from element (g + l) * VL, lane j is lane l of accumulator g + j, for accumulator
     * groups g of VL and lanes l < VL.
     */
    private static final int[] LANE_OF_ACCUMULATORS = laneOfAccumulators();

    private static int[] laneOfAccumulators() {
        int[] map = new int[16 * VL];
        for (int g = 0; g < 16; g += VL) {
            for (int l = 0; l < VL; l++) {
                for (int j = 0; j < VL; j++) map[(g + l) * VL + j] = (g + j) * VL + l;
            }
        }
        return map;
    }

    /**
     * sums[i * ld + j - j0] += sum over p in [p0, p1) of x[i, p] * B(p, j) for i < m and j in [j0, j1), where
     * B rows are contiguous along N (b not transposed) and rows of x are k long. Four rows of B at a time: each vector of
     * them is loaded straight from storage once and added, scaled, to every row of sums; the last
     * width % VL columns by scalars. (Copying the four rows into an array first, as this did before,
     * cost more than the product: LoRA's dA = (dy B)^T x at 1,024 tokens ran at 6 GFLOP/s in a step.)
     */
    private static void rowSums(float[] x, int xo, int m, Operand B, int j0, int j1, int p0, int p1, int k, float[] sums, int ld) {
        int width = j1 - j0, wv = width - width % VL;
        for (int p = p0; p < p1; p += 4) {
            int np = Math.min(4, p1 - p);
            // rows past np repeat row p; their x coefficients are zero
            long r0 = B.base() + (long) p * B.ps() + j0;
            long r1 = np > 1 ? r0 + B.ps() : r0, r2 = np > 2 ? r0 + 2 * B.ps() : r0, r3 = np > 3 ? r0 + 3 * B.ps() : r0;
            for (int v = 0; v < wv; v += VL) {
                FloatVector b0 = load(B, r0 + v), b1 = load(B, r1 + v), b2 = load(B, r2 + v), b3 = load(B, r3 + v);
                for (int i = 0; i < m; i++) {
                    int xi = xo + i * k + p, si = i * ld + v;
                    FloatVector acc = FloatVector.fromArray(F, sums, si);
                    acc = b0.fma(FloatVector.broadcast(F, x[xi]), acc);
                    if (np > 1) acc = b1.fma(FloatVector.broadcast(F, x[xi + 1]), acc);
                    if (np > 2) acc = b2.fma(FloatVector.broadcast(F, x[xi + 2]), acc);
                    if (np > 3) acc = b3.fma(FloatVector.broadcast(F, x[xi + 3]), acc);
                    acc.intoArray(sums, si);
                }
            }
            for (int j = wv; j < width; j++) {
                for (int i = 0; i < m; i++) {
                    int xi = xo + i * k + p;
                    float t = sums[i * ld + j];
                    for (int q = 0; q < np; q++) t += x[xi + q] * elem(B, r0 + (long) q * B.ps() + j);
                    sums[i * ld + j] = t;
                }
            }
        }
    }

    /** VL consecutive elements of y's storage from element index idx, as floats. */
    private static FloatVector load(Operand y, long idx) {
        if (!y.bf16()) return FloatVector.fromMemorySegment(F, y.seg(), idx * 4, LE);
        ShortVector h = ShortVector.fromMemorySegment(H, y.seg(), idx * 2, LE);
        return widen(h);
    }

    /** BF16 bits to f32: the 16 bits become the high half of the float. */
    private static FloatVector widen(ShortVector h) {
        return h.convertShape(VectorOperators.S2I, I, 0).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static float elem(Operand y, long idx) {
        return y.bf16() ? Numerics.bf16ToFloat(y.seg().getAtIndex(Tensor.I16, idx)) : y.seg().getAtIndex(Tensor.F32, idx);
    }

    private static int ceilDiv(int a, int b) { return (a + b - 1) / b; }

    private static int roundUp(int a, int b) { return ceilDiv(a, b) * b; }
}
