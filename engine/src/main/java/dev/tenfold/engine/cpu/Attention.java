package dev.tenfold.engine.cpu;

import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal grouped-query attention, flash-style: forward and backward, reference and fast.
 *
 * <p>Layouts: q, out, dOut [B, Tq, Hq, d]; k, v [B, Tk, Hkv, d]; lse [B, Hq, Tq]. Query i sits at
 * absolute position {@code Tk - Tq + i} and sees keys {@code j <= Tk - Tq + i}. Query head h reads kv
 * head {@code h / G} with {@code G = Hq / Hkv}.
 *
 * <p>The fast path never materializes Tq x Tk: it works on a tile of queries (all G heads of one kv
 * head at once, so each K/V tile is loaded once for the whole group) against a tile of {@link #BC}
 * keys, with an online softmax in the forward and P recomputed from lse in the backward. Every
 * product of the tiles goes through one register-blocked Vector API kernel, {@link #gemm}.
 */
final class Attention {
    private Attention() {}

    private static final String OP = "attention";
    private static final VectorSpecies<Float> SP = FloatVector.SPECIES_PREFERRED;
    private static final int L = SP.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    /**
     * Keys per tile: a multiple of the 4 vectors of the micro-kernel. 128 rather than 64: fewer passes over
     * each query tile's rows and statistics per key; 5-10% less time for the backward at head dims 32 to 128
     * and up to 10% for the forward at 128 (T = 4,096 on AVX-512, alternating runs; 32 was slower).
     */
    static final int BC = Math.max(128, 4 * L);
    /**
     * The fast paths keep scores in base 2 (log2 e folded into the packed q or k once per tile) so that each
     * probability is one {@link VectorMath#exp2}: no reduction by ln 2 and no check for large arguments, as
     * e^x needs; lse stays natural.
     */
    private static final float LOG2E = 1.44269504088896341f;
    private static final double LN2 = Math.log(2);

    /** The problem after the argument checks. */
    record Dims(int batch, int tq, int tk, int hq, int hkv, int d) {
        static Dims of(OpChecks.AttentionDims g) { return new Dims(g.batch(), g.tq(), g.tk(), g.hq(), g.hkv(), g.d()); }

        int group() { return hq / hkv; }

        /** Absolute position of query 0 (keys before it are a cache). */
        int offset() { return tk - tq; }

        /** First element of the row (b, i, h) of q, out, dOut or dq. */
        long qRow(int b, int i, int h) { return (((long) b * tq + i) * hq + h) * d; }

        /** First element of the row (b, j, kvh) of k, v, dk or dv. */
        long kRow(int b, int j, int kvh) { return (((long) b * tk + j) * hkv + kvh) * d; }

        /** Element (b, h, i) of lse. */
        long lseIndex(int b, int h, int i) { return ((long) b * hq + h) * tq + i; }

        boolean empty() { return batch == 0 || tq == 0 || hq == 0; }
    }

    // =================================================================== entry points

    static void forward(boolean fast, Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) {
        Dims g = Dims.of(OpChecks.attentionForward(q, k, v, out, lse));
        if (g.empty()) return;
        if (fast) {
            fastForward(g, q.data(), k.data(), v.data(), scale, out.data(), lse.data());
        } else {
            referenceForward(g, q.data(), k.data(), v.data(), scale, out.data(), lse.data());
        }
    }

    static void backward(boolean fast, Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, float scale,
                         Tensor dq, Tensor dk, Tensor dv) {
        Dims g = Dims.of(OpChecks.attentionBackward(dOut, q, k, v, out, lse, dq, dk, dv));
        if (g.empty()) { // no query: the gradients are zero (otherwise every element is written below)
            dq.data().fill((byte) 0);
            dk.data().fill((byte) 0);
            dv.data().fill((byte) 0);
            return;
        }
        if (fast) {
            fastBackward(g, dOut.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), scale,
                    dq.data(), dk.data(), dv.data());
        } else {
            referenceBackward(g, dOut.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), scale,
                    dq.data(), dk.data(), dv.data());
        }
    }

    private static float get(MemorySegment s, long i) { return s.getAtIndex(Tensor.F32, i); }

    private static void set(MemorySegment s, long i, float x) { s.setAtIndex(Tensor.F32, i, x); }

    // =================================================================== reference (the oracle)

    /** Per (b, h, i) row, in double: scores, max, logsumexp, then the weighted sum of v. */
    static void referenceForward(Dims g, MemorySegment q, MemorySegment k, MemorySegment v, float scale,
                                 MemorySegment out, MemorySegment lse) {
        int d = g.d(), grp = g.group();
        double[] w = new double[g.tk()]; // one row of scores, then of weights
        for (int b = 0; b < g.batch(); b++) {
            for (int h = 0; h < g.hq(); h++) {
                int kvh = h / grp;
                for (int i = 0; i < g.tq(); i++) {
                    int last = g.offset() + i; // last visible key
                    long qr = g.qRow(b, i, h);
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= last; j++) {
                        long kr = g.kRow(b, j, kvh);
                        double dot = 0;
                        for (int p = 0; p < d; p++) dot += (double) get(q, qr + p) * get(k, kr + p);
                        w[j] = dot * scale;
                        max = Math.max(max, w[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= last; j++) {
                        w[j] = Math.exp(w[j] - max);
                        sum += w[j];
                    }
                    for (int p = 0; p < d; p++) {
                        double acc = 0;
                        for (int j = 0; j <= last; j++) acc += w[j] * get(v, g.kRow(b, j, kvh) + p);
                        set(out, qr + p, (float) (acc / sum));
                    }
                    set(lse, g.lseIndex(b, h, i), (float) (max + Math.log(sum)));
                }
            }
        }
    }

    /**
     * The textbook formulas in double, in two passes so that every sum is a local double:
     * pass 1 per query row gives dq, pass 2 per key row (summing the group's heads) gives dk and dv.
     * P and dP are recomputed in each pass.
     */
    static void referenceBackward(Dims g, MemorySegment dOut, MemorySegment q, MemorySegment k, MemorySegment v,
                                  MemorySegment out, MemorySegment lse, float scale,
                                  MemorySegment dq, MemorySegment dk, MemorySegment dv) {
        int d = g.d(), grp = g.group();
        double[] rowD = new double[Math.toIntExact((long) g.batch() * g.hq() * g.tq())]; // D = rowsum(dO * O), lse layout
        for (int b = 0; b < g.batch(); b++) {
            for (int h = 0; h < g.hq(); h++) {
                for (int i = 0; i < g.tq(); i++) {
                    long r = g.qRow(b, i, h);
                    double s = 0;
                    for (int p = 0; p < d; p++) s += (double) get(dOut, r + p) * get(out, r + p);
                    rowD[(int) g.lseIndex(b, h, i)] = s;
                }
            }
        }
        double[] acc = new double[d], acc2 = new double[d];
        // Pass 1: dq[i] = scale * sum_j dS[i, j] k[j].
        for (int b = 0; b < g.batch(); b++) {
            for (int h = 0; h < g.hq(); h++) {
                int kvh = h / grp;
                for (int i = 0; i < g.tq(); i++) {
                    Arrays.fill(acc, 0);
                    for (int j = 0; j <= g.offset() + i; j++) {
                        double ds = dScore(g, dOut, q, k, v, lse, scale, rowD, b, h, i, j, null);
                        long kr = g.kRow(b, j, kvh);
                        for (int p = 0; p < d; p++) acc[p] += ds * get(k, kr + p);
                    }
                    long qr = g.qRow(b, i, h);
                    for (int p = 0; p < d; p++) set(dq, qr + p, (float) (scale * acc[p]));
                }
            }
        }
        // Pass 2: dv[j] = sum_{h in group, i} P[i, j] dO[i]; dk[j] = scale * sum dS[i, j] q[i].
        double[] prob = new double[1];
        for (int b = 0; b < g.batch(); b++) {
            for (int kvh = 0; kvh < g.hkv(); kvh++) {
                for (int j = 0; j < g.tk(); j++) {
                    Arrays.fill(acc, 0);
                    Arrays.fill(acc2, 0);
                    for (int h = kvh * grp; h < (kvh + 1) * grp; h++) {
                        for (int i = Math.max(0, j - g.offset()); i < g.tq(); i++) {
                            double ds = dScore(g, dOut, q, k, v, lse, scale, rowD, b, h, i, j, prob);
                            long qr = g.qRow(b, i, h);
                            for (int p = 0; p < d; p++) {
                                acc[p] += ds * get(q, qr + p);
                                acc2[p] += prob[0] * get(dOut, qr + p);
                            }
                        }
                    }
                    long kr = g.kRow(b, j, kvh);
                    for (int p = 0; p < d; p++) {
                        set(dk, kr + p, (float) (scale * acc[p]));
                        set(dv, kr + p, (float) acc2[p]);
                    }
                }
            }
        }
    }

    /** dS[i, j] = P (dP - D) with P = exp(scale q.k - lse) and dP = dO.v; P goes to prob[0] when asked. */
    private static double dScore(Dims g, MemorySegment dOut, MemorySegment q, MemorySegment k, MemorySegment v,
                                 MemorySegment lse, float scale, double[] rowD, int b, int h, int i, int j, double[] prob) {
        long qr = g.qRow(b, i, h), kr = g.kRow(b, j, h / g.group());
        double s = 0, dp = 0;
        for (int p = 0; p < g.d(); p++) {
            s += (double) get(q, qr + p) * get(k, kr + p);
            dp += (double) get(dOut, qr + p) * get(v, kr + p);
        }
        long li = g.lseIndex(b, h, i);
        double pr = Math.exp(s * scale - get(lse, li));
        if (prob != null) prob[0] = pr;
        return pr * (dp - rowD[(int) li]);
    }

    // =================================================================== fast path: tiling

    /** Query rows per tile and head: the group's heads together make about 128 rows per K/V tile. */
    static int queryTile(int group) { return Math.clamp(128 / group, 16, 64); }

    /**
     * Query rows per tile and head in the forward: half of {@link #queryTile}, about 64 rows per K/V tile, so that
     * the tile's scores (keys x rows, 32 KiB at 128 keys) stay nearer L1 while O^T += v^T P^T reads them once per
     * 6 head dims. The forward 1.03-1.07x at head dims 32 and 64, level at 4/1 heads of 128 (alternating builds,
     * 2 threads); a quarter was slower, and the backward's tiles (five products, more state per row) gained
     * nothing from halving.
     */
    static int forwardQueryTile(int group) { return queryTile(group) / 2; }

    /** Visits tiles light and heavy alternately (0, n-1, 1, n-2, ...) so contiguous chunks of tasks balance. */
    static int zigzag(int x, int n) { return (x & 1) == 0 ? x >> 1 : n - 1 - (x >> 1); }

    /**
     * Copies rows i0 .. i0+nr of the group's heads into dst[r * dp], r = gi * nr + ii (head-major),
     * multiplied by mul; the padding columns d .. dp stay zero.
     */
    private static void packRows(Dims g, MemorySegment src, int b, int kvh, int i0, int nr, float mul, float[] dst, int dp) {
        packRows(g, src, b, kvh, i0, nr, mul, dst, 0, dp);
    }

    /** {@link #packRows} into dst from element off. */
    private static void packRows(Dims g, MemorySegment src, int b, int kvh, int i0, int nr, float mul, float[] dst, int off, int dp) {
        int grp = g.group(), d = g.d();
        for (int gi = 0; gi < grp; gi++) {
            for (int ii = 0; ii < nr; ii++) {
                int r = off + (gi * nr + ii) * dp;
                MemorySegment.copy(src, Tensor.F32, g.qRow(b, i0 + ii, kvh * grp + gi) * 4, dst, r, d);
                if (mul != 1f) for (int p = r; p < r + d; p++) dst[p] *= mul;
            }
        }
    }

    /**
     * The same rows transposed, dst[p * rp + r], so that one vector holds L query rows; columns
     * rows .. rp (the padding up to a vector multiple) are zero.
     */
    private static void packRowsTransposed(Dims g, MemorySegment src, int b, int kvh, int i0, int nr, float mul,
                                           float[] dst, int rp, float[] tmp) {
        int grp = g.group(), d = g.d(), rows = grp * nr;
        for (int gi = 0; gi < grp; gi++) {
            for (int ii = 0; ii < nr; ii++) {
                int r = gi * nr + ii;
                MemorySegment.copy(src, Tensor.F32, g.qRow(b, i0 + ii, kvh * grp + gi) * 4, tmp, 0, d);
                for (int p = 0; p < d; p++) dst[p * rp + r] = tmp[p] * mul;
            }
        }
        for (int p = 0; p < d; p++) Arrays.fill(dst, p * rp + rows, (p + 1) * rp, 0f);
    }

    /** Keys j0 .. j0+nc as rows dst[c * dp] (padding columns stay zero). */
    private static void packKeyRows(Dims g, MemorySegment src, int b, int kvh, int j0, int nc, float[] dst, int dp) {
        packKeyRows(g, src, b, kvh, j0, nc, dst, 0, dp);
    }

    /** {@link #packKeyRows} into dst from element off. */
    private static void packKeyRows(Dims g, MemorySegment src, int b, int kvh, int j0, int nc, float[] dst, int off, int dp) {
        for (int c = 0; c < nc; c++) {
            MemorySegment.copy(src, Tensor.F32, g.kRow(b, j0 + c, kvh) * 4, dst, off + c * dp, g.d());
        }
    }

    /** Keys j0 .. j0+nc transposed and multiplied by mul, dst[p * BC + c], so that one vector holds L keys; columns nc .. BC zero. */
    private static void packKeysTransposed(Dims g, MemorySegment src, int b, int kvh, int j0, int nc, float mul, float[] dst,
                                           float[] tmp) {
        int d = g.d();
        for (int c = 0; c < BC; c++) {
            if (c < nc) {
                MemorySegment.copy(src, Tensor.F32, g.kRow(b, j0 + c, kvh) * 4, tmp, 0, d);
                for (int p = 0; p < d; p++) dst[p * BC + c] = tmp[p] * mul;
            } else {
                for (int p = 0; p < d; p++) dst[p * BC + c] = 0f;
            }
        }
    }

    /**
     * Hides future keys in a transposed score tile st[c * rp + r] (key j0 + c, query row r): row r is
     * query i0 + r % nr at position firstPos + r % nr and sees keys up to that position.
     */
    private static void maskTransposed(float[] st, int rp, int nc, int grp, int nr, int firstPos, int j0) {
        for (int c = 0; c < nc; c++) {
            int hidden = Math.min(nr, j0 + c - firstPos); // rows ii < hidden sit before key j0 + c
            for (int gi = 0; gi < grp && hidden > 0; gi++) {
                Arrays.fill(st, c * rp + gi * nr, c * rp + gi * nr + hidden, Float.NEGATIVE_INFINITY);
            }
        }
    }

    /** The same for a score tile s[r * BC + c] (query row r, key j0 + c), over all BC columns. */
    private static void mask(float[] s, int rows, int nr, int firstPos, int j0) {
        for (int r = 0; r < rows; r++) {
            int from = Math.max(0, firstPos + r % nr - j0 + 1);
            if (from < BC) Arrays.fill(s, r * BC + from, (r + 1) * BC, Float.NEGATIVE_INFINITY);
        }
    }

    // =================================================================== fast forward

    /** Per-thread forward scratch, tile-sized (nothing here grows with Tq or Tk). */
    private static final class ForwardScratch {
        final float[] qt, st, ot, ks, vs, m, l, alpha, newMax, tileSum, tmp;

        ForwardScratch(int rows, int rp, int d, int dp) {
            qt = new float[d * rp];      // scale * q, transposed: [d][rp]
            st = new float[BC * rp];     // scores, then probabilities, transposed: [BC][rp]
            ot = new float[d * rp];      // unnormalized output, transposed: [d][rp]
            ks = new float[BC * dp];     // key tile rows
            vs = new float[BC * dp];     // value tile rows
            m = new float[rp];           // running max per query row
            l = new float[rp];           // running sum per query row
            alpha = new float[rp];       // this tile's rescale factor per query row
            newMax = new float[rp];      // the running max after this tile
            tileSum = new float[rp];     // this tile's sum of P per query row
            tmp = new float[d];
        }
    }

    static void fastForward(Dims g, MemorySegment q, MemorySegment k, MemorySegment v, float scale,
                            MemorySegment out, MemorySegment lse) {
        if (g.tq() <= FEW_QUERIES) {
            fewQueriesForward(g, q, k, v, scale, out, lse);
            return;
        }
        fastForward(g, q, k, v, scale, out, lse, true);
    }

    /** {@link #fastForward} with the key and value rows packed once per call or not ({@link KeyRows}); tests reach both. */
    static void fastForward(Dims g, MemorySegment q, MemorySegment k, MemorySegment v, float scale,
                            MemorySegment out, MemorySegment lse, boolean packKeys) {
        int grp = g.group(), br = forwardQueryTile(grp), nqt = Math.ceilDiv(g.tq(), br);
        int dp = roundUp(g.d(), L), rp = roundUp(grp * br, L);
        KeyRows rows = packKeys ? KeyRows.pack(g, k, v, dp) : null;
        Parallel.forRange(g.batch() * g.hkv() * nqt, 1, (start, end) -> {
            ForwardScratch sc = new ForwardScratch(grp * br, rp, g.d(), dp);
            for (int t = start; t < end; t++) {
                int qt = zigzag(t % nqt, nqt), kvh = (t / nqt) % g.hkv(), b = t / nqt / g.hkv();
                forwardTile(g, q, k, v, scale, out, lse, b, kvh, qt * br, Math.min(br, g.tq() - qt * br), dp, sc, rows);
            }
        });
        if (rows != null) {
            FloatPool.giveBack(rows.k);
            FloatPool.giveBack(rows.v);
        }
    }

    /** The most memory {@link KeyRows} may take; above it, each query tile copies the key and value rows it meets itself. */
    static final long KEY_ROWS_BYTES = 128L << 20;

    /**
     * Every key and value row of each (b, kv head), copied once per forward call into [b * hkv + kvh][key][dp], so that
     * the query tiles read their key tiles from there instead of each copying every tile it meets (strided rows).
     * Only with several kv heads: with one, a kv head's rows are whole token rows, read in storage order, and the
     * extra pass lost (0.95-0.99x at 4/1 heads of 128; 1.04-1.10x at 8/2 heads of 32 to 128).
     */
    private record KeyRows(float[][] k, float[][] v) {
        /** The packed rows, or null with one kv head or when they would take more than {@link #KEY_ROWS_BYTES}. */
        static KeyRows pack(Dims g, MemorySegment k, MemorySegment v, int dp) {
            long floats = (long) g.tk() * dp;
            if (g.hkv() == 1 || 2L * g.batch() * g.hkv() * floats * Float.BYTES > KEY_ROWS_BYTES || floats > Integer.MAX_VALUE - 8) return null;
            float[][] ks = new float[g.batch() * g.hkv()][], vs = new float[g.batch() * g.hkv()][];
            for (int u = 0; u < ks.length; u++) { // from the pool: zeroed, as the padding columns must be
                ks[u] = FloatPool.zeroed((int) floats);
                vs[u] = FloatPool.zeroed((int) floats);
            }
            // in key tiles, so that a single kv head (multi-query attention) still packs on every core
            int nkt = Math.ceilDiv(g.tk(), BC);
            Parallel.forRange(ks.length * nkt, 1, (start, end) -> {
                for (int t = start; t < end; t++) {
                    int u = t / nkt, j0 = t % nkt * BC, kvh = u % g.hkv(), b = u / g.hkv(), nc = Math.min(BC, g.tk() - j0);
                    packKeyRows(g, k, b, kvh, j0, nc, ks[u], j0 * dp, dp);
                    packKeyRows(g, v, b, kvh, j0, nc, vs[u], j0 * dp, dp);
                }
            });
            return new KeyRows(ks, vs);
        }
    }

    /**
     * Rows i0 .. i0+nr of every head of kv group kvh, against all the key tiles they can see.
     * Scores are kept transposed (keys x queries) so that the online softmax runs down the keys
     * with one vector lane per query: no horizontal reductions, and the query rows are transposed
     * once per task rather than a key tile once per query tile.
     */
    private static void forwardTile(Dims g, MemorySegment q, MemorySegment k, MemorySegment v, float scale,
                                    MemorySegment out, MemorySegment lse, int b, int kvh, int i0, int nr, int dp,
                                    ForwardScratch sc, KeyRows keyRows) {
        int d = g.d(), grp = g.group(), rows = grp * nr, rp = roundUp(rows, L);
        int firstPos = g.offset() + i0, lastPos = firstPos + nr - 1;
        float[] st = sc.st, ot = sc.ot, m = sc.m, l = sc.l, alpha = sc.alpha;
        packRowsTransposed(g, q, b, kvh, i0, nr, scale * LOG2E, sc.qt, rp, sc.tmp); // scale and log2 e folded into q once
        Arrays.fill(ot, 0, d * rp, 0f);
        Arrays.fill(m, 0, rp, Float.NEGATIVE_INFINITY);
        Arrays.fill(l, 0, rp, 0f);
        for (int j0 = 0; j0 <= lastPos; j0 += BC) { // tiles past the last row's position are fully masked: skipped
            int nc = Math.min(BC, g.tk() - j0);
            float[] ks = sc.ks, vs = sc.vs;
            int kOff = 0;
            if (keyRows != null) {
                ks = keyRows.k[b * g.hkv() + kvh];
                vs = keyRows.v[b * g.hkv() + kvh];
                kOff = j0 * dp;
            } else {
                packKeyRows(g, k, b, kvh, j0, nc, ks, dp);
                packKeyRows(g, v, b, kvh, j0, nc, vs, dp);
            }
            gemm(st, 0, rp, ks, kOff, dp, 1, sc.qt, rp, nc, d, rp, false); // S^T = k (scale log2e q)^T: base-2 scores
            if (j0 + nc - 1 > firstPos) maskTransposed(st, rp, nc, grp, nr, firstPos, j0);
            onlineSoftmax(st, rp, nc, m, sc.newMax, sc.tileSum);
            updateRunning(rp, m, sc.newMax, l, sc.tileSum, alpha);
            // O kept transposed too ([d][rp], a lane per query row): the rescale is one vector multiply per
            // lane group, and O^T += v^T P^T broadcasts an element of v for every L query rows instead of an
            // element of P for every L head dims (4 times fewer broadcasts at head dim 32)
            for (int p = 0; p < d; p++) {
                for (int r = 0; r < rp; r += L) {
                    FloatVector.fromArray(SP, ot, p * rp + r).mul(FloatVector.fromArray(SP, alpha, r)).intoArray(ot, p * rp + r);
                }
            }
            gemm(ot, 0, rp, vs, kOff, 1, dp, st, rp, d, nc, rp, true); // O^T += v^T P^T
        }
        float[] row = sc.tmp;
        for (int r = 0; r < rows; r++) {
            int h = kvh * grp + r / nr, i = i0 + r % nr;
            float inv = 1f / l[r];
            for (int p = 0; p < d; p++) row[p] = ot[p * rp + r] * inv;
            MemorySegment.copy(row, 0, out, Tensor.F32, g.qRow(b, i, h) * 4, d);
            set(lse, g.lseIndex(b, h, i), (float) (m[r] * LN2 + Math.log(l[r]))); // natural: m is in base 2
        }
    }

    /**
     * The online softmax of one key tile's transposed scores st[c * rp + r] (keys c < nc), L query rows at a time: the
     * new running max (into newMax), P = 2^(S - new max) in place, and the tile's sum of P per row (into tileSum);
     * {@link #updateRunning} then rescales. Each exp2 in a method of its own, so that the JIT inlines it: inside
     * forwardTile, and with both in one method, the second met C2's inlining node cutoff, and every call boxed its
     * vectors and ran a lane-wise op out of line (9.7 MB of garbage a forward at 4K tokens, the forward 1.06x slower).
     */
    private static void onlineSoftmax(float[] st, int rp, int nc, float[] m, float[] newMax, float[] tileSum) {
        for (int r = 0; r < rp; r += L) {
            // Four running maxima: one chain would wait out the latency of every max (softmax 15-25% faster)
            FloatVector mx0 = FloatVector.fromArray(SP, m, r), mx1 = mx0, mx2 = mx0, mx3 = mx0;
            int c = 0;
            for (; c + 4 <= nc; c += 4) {
                mx0 = mx0.max(FloatVector.fromArray(SP, st, c * rp + r));
                mx1 = mx1.max(FloatVector.fromArray(SP, st, (c + 1) * rp + r));
                mx2 = mx2.max(FloatVector.fromArray(SP, st, (c + 2) * rp + r));
                mx3 = mx3.max(FloatVector.fromArray(SP, st, (c + 3) * rp + r));
            }
            for (; c < nc; c++) mx0 = mx0.max(FloatVector.fromArray(SP, st, c * rp + r));
            FloatVector mx = mx0.max(mx1).max(mx2.max(mx3));
            // Finite: key 0 is in the first tile and every query sees it.
            FloatVector sum = FloatVector.zero(SP);
            for (c = 0; c < nc; c++) {
                FloatVector p = VectorMath.exp2(FloatVector.fromArray(SP, st, c * rp + r).sub(mx));
                p.intoArray(st, c * rp + r);
                sum = sum.add(p);
            }
            mx.intoArray(newMax, r);
            sum.intoArray(tileSum, r);
        }
    }

    /** The running statistics after a tile: alpha = 2^(m - newMax) (0 on the first tile, m = -inf), l = l alpha + tileSum, m = newMax. */
    private static void updateRunning(int rp, float[] m, float[] newMax, float[] l, float[] tileSum, float[] alpha) {
        for (int r = 0; r < rp; r += L) {
            FloatVector mx = FloatVector.fromArray(SP, newMax, r);
            FloatVector a = VectorMath.exp2(FloatVector.fromArray(SP, m, r).sub(mx));
            a.intoArray(alpha, r);
            FloatVector.fromArray(SP, l, r).fma(a, FloatVector.fromArray(SP, tileSum, r)).intoArray(l, r);
            mx.intoArray(m, r);
        }
    }

    // =================================================================== decoding: a few queries

    /**
     * At most this many query positions take {@link #fewQueriesForward}. Decoding brings one: the tiles
     * above would fill one lane in four (group 4) or sixteen, copy every key and value row into a tile
     * and run the small-tile kernels over the padding (a fifth of a decoded token's time, hidden 512 at
     * a 512-token cache, 2 cores).
     */
    static final int FEW_QUERIES = 4;

    /** Lane i of SWAP[s] is lane i ^ 2^s: log2(L) steps that add each lane to its partner sum all lanes in a fixed order. */
    @SuppressWarnings("unchecked")
    private static final VectorShuffle<Float>[] SWAP = new VectorShuffle[Integer.numberOfTrailingZeros(L)];
    static {
        for (int s = 0; s < SWAP.length; s++) {
            int bit = 1 << s;
            SWAP[s] = VectorShuffle.fromOp(SP, i -> i ^ bit);
        }
    }

    /** The sum of v's lanes by the fixed butterfly of {@link #SWAP} (reduceLanes' order is unspecified). */
    private static float sumLanes(FloatVector v) {
        for (VectorShuffle<Float> s : SWAP) v = v.add(v.rearrange(s));
        return v.lane(0);
    }

    /**
     * The forward for a few query positions against a cache of keys. One task per (b, kv head, query
     * position): its group of query heads share every key and value row they read, straight from the
     * tensors. Scores one dot product per (head, key), the softmax over the whole row at once (a row is
     * at most Tk floats), then the values weighted four heads at a time.
     */
    private static void fewQueriesForward(Dims g, MemorySegment q, MemorySegment k, MemorySegment v, float scale,
                                          MemorySegment out, MemorySegment lse) {
        int grp = g.group(), d = g.d(), tq = g.tq();
        Parallel.forRange(g.batch() * g.hkv() * tq, 1, (start, end) -> {
            float[] qs = new float[grp * d], s = new float[grp * g.tk()], inv = new float[grp], o = new float[4 * d];
            for (int t = start; t < end; t++) {
                int i = t % tq, kvh = (t / tq) % g.hkv(), b = t / tq / g.hkv();
                int nk = g.offset() + i + 1; // keys 0 .. position i (causal)
                for (int r = 0; r < grp; r++) {
                    MemorySegment.copy(q, Tensor.F32, g.qRow(b, i, kvh * grp + r) * 4, qs, r * d, d);
                    for (int p = r * d; p < (r + 1) * d; p++) qs[p] *= scale * LOG2E; // base-2 scores, as the tiles
                }
                keyScores(g, k, b, kvh, nk, qs, s);
                for (int r = 0; r < grp; r++) { // scores to probabilities (unnormalized), 1 / their sum, lse
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = r * nk; j < (r + 1) * nk; j++) max = Math.max(max, s[j]);
                    FloatVector mx = FloatVector.broadcast(SP, max), sum = FloatVector.zero(SP);
                    int j = r * nk, jv = j + (nk - nk % L);
                    for (; j < jv; j += L) {
                        FloatVector pr = VectorMath.exp2(FloatVector.fromArray(SP, s, j).sub(mx));
                        pr.intoArray(s, j);
                        sum = sum.add(pr);
                    }
                    float l = sumLanes(sum);
                    for (; j < (r + 1) * nk; j++) {
                        s[j] = (float) Math.pow(2, s[j] - max);
                        l += s[j];
                    }
                    inv[r] = 1f / l;
                    set(lse, g.lseIndex(b, kvh * grp + r, i), (float) (max * LN2 + Math.log(l))); // natural, as the tiles
                }
                for (int r = 0; r < grp; r += 4) {
                    int rows = Math.min(4, grp - r);
                    weightedValues(g, v, b, kvh, nk, s, r, rows, inv, o);
                    for (int x = 0; x < rows; x++) MemorySegment.copy(o, x * d, out, Tensor.F32, g.qRow(b, i, kvh * grp + r + x) * 4, d);
                }
            }
        });
    }

    /**
     * s[r * nk + j] = dot(q row r, key row j) for the grp rows of qs (d floats apart) and the keys j < nk: four rows
     * at a time, so that each vector of a key feeds four multiply-adds.
     */
    private static void keyScores(Dims g, MemorySegment k, int b, int kvh, int nk, float[] qs, float[] s) {
        int grp = g.group(), d = g.d(), dv = d - d % L;
        long rowStride = (long) g.hkv() * d * 4, k0 = g.kRow(b, 0, kvh) * 4;
        for (int r = 0; r < grp; r += 4) {
            int q0 = r * d, q1 = r + 1 < grp ? q0 + d : q0, q2 = r + 2 < grp ? q0 + 2 * d : q0, q3 = r + 3 < grp ? q0 + 3 * d : q0;
            int s0 = r * nk, s1 = r + 1 < grp ? s0 + nk : s0, s2 = r + 2 < grp ? s0 + 2 * nk : s0, s3 = r + 3 < grp ? s0 + 3 * nk : s0;
            long at = k0;
            for (int j = 0; j < nk; j++, at += rowStride) { // rows past grp repeat row r: the same sum, stored twice
                FloatVector a0 = FloatVector.zero(SP), a1 = a0, a2 = a0, a3 = a0;
                for (int p = 0; p < dv; p += L) {
                    FloatVector kv = FloatVector.fromMemorySegment(SP, k, at + 4L * p, NATIVE);
                    a0 = FloatVector.fromArray(SP, qs, q0 + p).fma(kv, a0);
                    a1 = FloatVector.fromArray(SP, qs, q1 + p).fma(kv, a1);
                    a2 = FloatVector.fromArray(SP, qs, q2 + p).fma(kv, a2);
                    a3 = FloatVector.fromArray(SP, qs, q3 + p).fma(kv, a3);
                }
                s[s3 + j] = sumLanes(a3);
                s[s2 + j] = sumLanes(a2);
                s[s1 + j] = sumLanes(a1);
                s[s0 + j] = sumLanes(a0);
            }
        }
        if (dv == d) return;
        for (int r = 0; r < grp; r++) {
            for (int j = 0; j < nk; j++) {
                long kj = g.kRow(b, j, kvh);
                for (int p = dv; p < d; p++) s[r * nk + j] += qs[r * d + p] * get(k, kj + p);
            }
        }
    }

    /**
     * o[x * d ..] = inv[r + x] * sum over keys j < nk of p[(r + x) * nk + j] * (v row j), for the rows r .. r + rows
     * (at most 4) of p: each vector of v read once for all of them.
     */
    private static void weightedValues(Dims g, MemorySegment v, int b, int kvh, int nk, float[] p, int r, int rows,
                                       float[] inv, float[] o) {
        int d = g.d(), dv = d - d % L;
        long rowStride = (long) g.hkv() * d * 4, v0 = g.kRow(b, 0, kvh) * 4;
        int p0 = r * nk, p1 = rows > 1 ? p0 + nk : p0, p2 = rows > 2 ? p0 + 2 * nk : p0, p3 = rows > 3 ? p0 + 3 * nk : p0;
        for (int c = 0; c < dv; c += L) { // rows past `rows` repeat row r; their sums are dropped
            FloatVector a0 = FloatVector.zero(SP), a1 = a0, a2 = a0, a3 = a0;
            long at = v0 + 4L * c;
            for (int j = 0; j < nk; j++, at += rowStride) {
                FloatVector x = FloatVector.fromMemorySegment(SP, v, at, NATIVE);
                a0 = x.fma(FloatVector.broadcast(SP, p[p0 + j]), a0);
                a1 = x.fma(FloatVector.broadcast(SP, p[p1 + j]), a1);
                a2 = x.fma(FloatVector.broadcast(SP, p[p2 + j]), a2);
                a3 = x.fma(FloatVector.broadcast(SP, p[p3 + j]), a3);
            }
            a0.mul(inv[r]).intoArray(o, c);
            if (rows > 1) a1.mul(inv[r + 1]).intoArray(o, d + c);
            if (rows > 2) a2.mul(inv[r + 2]).intoArray(o, 2 * d + c);
            if (rows > 3) a3.mul(inv[r + 3]).intoArray(o, 3 * d + c);
        }
        for (int x = 0; x < rows; x++) {
            for (int c = dv; c < d; c++) {
                float a = 0;
                for (int j = 0; j < nk; j++) a += p[(r + x) * nk + j] * get(v, g.kRow(b, j, kvh) + c);
                o[x * d + c] = a * inv[r + x];
            }
        }
    }

    // =================================================================== fast backward

    /**
     * Flash-attention-2 backward. One pass where memory allows ({@link #dqStripes}): parallel over (b, kv
     * head, stripe of key tiles), each task owns its key tiles' dk/dv rows and adds dS k into a dq
     * partial of its own (one per stripe), and the stripes' partials are summed at the end in stripe
     * order. Otherwise two passes: pass 1 as above without dq; pass 2, parallel over (b, kv head, query
     * tile), owns its dq rows and loops over the key tiles, computing P and dS again. Either way no task
     * writes what another writes and each sum runs in an order fixed by the shapes alone, so the result
     * is the same on every run and with any number of threads.
     */
    static void fastBackward(Dims g, MemorySegment dOut, MemorySegment q, MemorySegment k, MemorySegment v,
                             MemorySegment out, MemorySegment lse, float scale,
                             MemorySegment dq, MemorySegment dk, MemorySegment dv) {
        fastBackward(g, dOut, q, k, v, out, lse, scale, dq, dk, dv, dqStripes(g));
    }

    /** Most stripes of key tiles, each with its own dq partial, in the one-pass backward. */
    static final int MAX_DQ_STRIPES = 8;
    /** The most memory the one-pass backward's dq partials take; above it, fewer stripes, then two passes. */
    static final long DQ_PARTIALS_BYTES = 256L << 20;

    /** The one-pass backward aims at this many tasks (batch x kv heads x stripes), a number fixed by the shapes alone. */
    static final int DQ_TASKS = 8;

    /**
     * Stripes of key tiles for the one-pass backward: enough for {@link #DQ_TASKS} tasks when there are few kv
     * heads, at most {@link #MAX_DQ_STRIPES} and the key tiles, as many as fit {@link #DQ_PARTIALS_BYTES}; 0
     * (two passes) when not even one partial of the queries' dq fits. No more than that: every stripe's
     * partial is a whole dq to allocate and sum (at 8 stripes for 8 tasks, 10% of the backward at head dim 32).
     */
    static int dqStripes(Dims g) {
        long partial = (long) g.batch() * g.tq() * g.hq() * roundUp(g.d(), L) * Float.BYTES;
        int nkt = Math.ceilDiv(g.tk(), BC), wanted = Math.ceilDiv(DQ_TASKS, g.batch() * g.hkv());
        return (int) Math.min(Math.min(Math.min(MAX_DQ_STRIPES, wanted), nkt), DQ_PARTIALS_BYTES / Math.max(1, partial));
    }

    /** {@link #fastBackward} with the number of dq stripes given (0: two passes); tests reach both. */
    static void fastBackward(Dims g, MemorySegment dOut, MemorySegment q, MemorySegment k, MemorySegment v,
                             MemorySegment out, MemorySegment lse, float scale,
                             MemorySegment dq, MemorySegment dk, MemorySegment dv, int stripes) {
        fastBackward(g, dOut, q, k, v, out, lse, scale, dq, dk, dv, stripes, true);
    }

    /** {@link #fastBackward} with the stripes given and the query tiles packed once per call or not ({@link QueryTiles}); tests reach both. */
    static void fastBackward(Dims g, MemorySegment dOut, MemorySegment q, MemorySegment k, MemorySegment v,
                             MemorySegment out, MemorySegment lse, float scale,
                             MemorySegment dq, MemorySegment dk, MemorySegment dv, int stripes, boolean packQueries) {
        int grp = g.group(), br = queryTile(grp), dp = roundUp(g.d(), L), rp = roundUp(grp * br, L);
        float[] rowD = rowDots(g, dOut, out);
        int nkt = Math.ceilDiv(g.tk(), BC);
        QueryTiles tiles = packQueries ? QueryTiles.pack(g, q, dOut, scale, br, dp) : null;
        if (stripes > 0) {
            // partials[(b * hkv + kvh) * stripes + s]: [grp][tq][dp], the dq of the group's heads from stripe s
            float[][] partials = new float[g.batch() * g.hkv() * stripes][];
            Parallel.forRange(partials.length, 1, (start, end) -> {
                KeyScratch sc = new KeyScratch(grp * br, g.d(), dp);
                for (int u = start; u < end; u++) {
                    int s = u % stripes, kvh = (u / stripes) % g.hkv(), b = u / stripes / g.hkv();
                    float[] part = FloatPool.zeroed(grp * g.tq() * dp);
                    // stripe s: key tiles s and 2 stripes - 1 - s of every 2 stripes: early (heavy) and late (light) in pairs
                    for (int kt0 = 0; kt0 < nkt; kt0 += 2 * stripes) {
                        int early = kt0 + s, late = kt0 + 2 * stripes - 1 - s;
                        if (early < nkt) keyTileBackward(g, dOut, q, k, v, lse, rowD, scale, dk, dv, b, kvh, early * BC, br, dp, sc, tiles, part);
                        if (late < nkt) keyTileBackward(g, dOut, q, k, v, lse, rowD, scale, dk, dv, b, kvh, late * BC, br, dp, sc, tiles, part);
                    }
                    partials[u] = part;
                }
            });
            sumDqPartials(g, partials, stripes, scale, dp, dq);
            FloatPool.giveBack(partials);
            if (tiles != null) tiles.giveBack();
            return;
        }
        Parallel.forRange(g.batch() * g.hkv() * nkt, 1, (start, end) -> {
            KeyScratch sc = new KeyScratch(grp * br, g.d(), dp);
            for (int t = start; t < end; t++) {
                int kt = zigzag(t % nkt, nkt), kvh = (t / nkt) % g.hkv(), b = t / nkt / g.hkv();
                keyTileBackward(g, dOut, q, k, v, lse, rowD, scale, dk, dv, b, kvh, kt * BC, br, dp, sc, tiles, null);
            }
        });
        int nqt = Math.ceilDiv(g.tq(), br);
        Parallel.forRange(g.batch() * g.hkv() * nqt, 1, (start, end) -> {
            QueryScratch sc = new QueryScratch(grp * br, rp, g.d(), dp);
            for (int t = start; t < end; t++) {
                int qt = zigzag(t % nqt, nqt), kvh = (t / nqt) % g.hkv(), b = t / nqt / g.hkv();
                queryTileBackward(g, dOut, q, k, v, lse, rowD, scale, dq, b, kvh, qt * br,
                        Math.min(br, g.tq() - qt * br), dp, sc);
            }
        });
        if (tiles != null) tiles.giveBack();
    }

    /** dq = scale * the sum of the stripes' partials, stripe 0 first, for every (b, query, head). */
    private static void sumDqPartials(Dims g, float[][] partials, int stripes, float scale, int dp, MemorySegment dq) {
        int grp = g.group(), d = g.d();
        Parallel.forRange(g.batch() * g.tq(), 16, (start, end) -> {
            float[] row = new float[dp];
            for (int bi = start; bi < end; bi++) {
                int b = bi / g.tq(), i = bi % g.tq();
                for (int h = 0; h < g.hq(); h++) {
                    int kvh = h / grp, gi = h % grp, at = (gi * g.tq() + i) * dp;
                    int u0 = (b * g.hkv() + kvh) * stripes;
                    for (int c = 0; c < dp; c += L) {
                        FloatVector x = FloatVector.fromArray(SP, partials[u0], at + c);
                        for (int s = 1; s < stripes; s++) x = x.add(FloatVector.fromArray(SP, partials[u0 + s], at + c));
                        x.mul(scale).intoArray(row, c);
                    }
                    MemorySegment.copy(row, 0, dq, Tensor.F32, g.qRow(b, i, h) * 4, d);
                }
            }
        });
    }

    /** D = rowsum(dOut * out) per (b, h, i), in lse layout. */
    private static float[] rowDots(Dims g, MemorySegment dOut, MemorySegment out) {
        float[] rowD = new float[Math.toIntExact((long) g.batch() * g.hq() * g.tq())];
        Parallel.forRange(g.batch() * g.tq(), 16, (start, end) -> {
            for (int bi = start; bi < end; bi++) {
                int b = bi / g.tq(), i = bi % g.tq();
                for (int h = 0; h < g.hq(); h++) {
                    long r = g.qRow(b, i, h);
                    int p = 0;
                    FloatVector acc = FloatVector.zero(SP);
                    for (; p + L <= g.d(); p += L) {
                        acc = FloatVector.fromMemorySegment(SP, dOut, (r + p) * 4, ByteOrder.nativeOrder())
                                .fma(FloatVector.fromMemorySegment(SP, out, (r + p) * 4, ByteOrder.nativeOrder()), acc);
                    }
                    double s = VectorMath.sumDouble(acc);
                    for (; p < g.d(); p++) s += (double) get(dOut, r + p) * get(out, r + p);
                    rowD[(int) g.lseIndex(b, h, i)] = (float) s;
                }
            }
        });
        return rowD;
    }

    /** Loads lse (in base 2: times log2 e) and D of rows i0 .. i0+nr of the group (head-major, as packRows) into ls and ds; the rest up to len zero. */
    private static void packRowStats(Dims g, MemorySegment lse, float[] rowD, int b, int kvh, int i0, int nr,
                                     float[] ls, float[] ds, int len) {
        int grp = g.group();
        Arrays.fill(ls, 0, len, 0f);
        Arrays.fill(ds, 0, len, 0f);
        for (int gi = 0; gi < grp; gi++) {
            for (int ii = 0; ii < nr; ii++) {
                long li = g.lseIndex(b, kvh * grp + gi, i0 + ii);
                ls[gi * nr + ii] = get(lse, li) * LOG2E;
                ds[gi * nr + ii] = rowD[(int) li];
            }
        }
    }

    /** The most memory {@link QueryTiles} may take; above it, each key tile copies the query rows it meets itself. */
    static final long QUERY_TILES_BYTES = 128L << 20;

    /**
     * Every query tile's rows of scale * q and of dOut, packed once per backward call as {@link #packRows} packs
     * them, [b * hkv + kvh][tile][grp * br][dp]. Without it each key tile packed every later query tile again:
     * strided rows that miss L2, about 40 ns each, a tenth of the backward (1,024 tokens, head dim 32). Only with
     * several kv heads, as {@link KeyRows} (0.88-0.93x at 4/1 heads of 128; 1.0-1.06x at 8/2 heads of 32 to 128).
     */
    private record QueryTiles(float[][] q, float[][] dOut, int tileFloats) {
        /** The packed tiles, or null with one kv head or when they would take more than {@link #QUERY_TILES_BYTES}. */
        static QueryTiles pack(Dims g, MemorySegment q, MemorySegment dOut, float scale, int br, int dp) {
            int grp = g.group(), nqt = Math.ceilDiv(g.tq(), br), tileFloats = grp * br * dp;
            long bytes = 2L * g.batch() * g.hkv() * nqt * tileFloats * Float.BYTES;
            if (g.hkv() == 1 || bytes > QUERY_TILES_BYTES || (long) nqt * tileFloats > Integer.MAX_VALUE - 8) return null;
            float[][] qs = new float[g.batch() * g.hkv()][], dos = new float[g.batch() * g.hkv()][];
            for (int u = 0; u < qs.length; u++) { // from the pool: zeroed, as the padding columns must be
                qs[u] = FloatPool.zeroed(nqt * tileFloats);
                dos[u] = FloatPool.zeroed(nqt * tileFloats);
            }
            Parallel.forRange(qs.length * nqt, 1, (start, end) -> { // by tile: a single kv head still packs on every core
                for (int x = start; x < end; x++) {
                    int u = x / nqt, t = x % nqt, kvh = u % g.hkv(), b = u / g.hkv();
                    int i0 = t * br, nr = Math.min(br, g.tq() - i0);
                    packRows(g, q, b, kvh, i0, nr, scale, qs[u], t * tileFloats, dp);
                    packRows(g, dOut, b, kvh, i0, nr, 1f, dos[u], t * tileFloats, dp);
                }
            });
            return new QueryTiles(qs, dos, tileFloats);
        }

        /** Hands the tiles' arrays back to {@link FloatPool}: the tiles must not be used afterwards. */
        void giveBack() {
            FloatPool.giveBack(q);
            FloatPool.giveBack(dOut);
        }

        /** The first n floats of query tile t of (b, kvh) into qDst and dOutDst. */
        void copy(Dims g, int b, int kvh, int t, int n, float[] qDst, float[] dOutDst) {
            System.arraycopy(q[b * g.hkv() + kvh], t * tileFloats, qDst, 0, n);
            System.arraycopy(dOut[b * g.hkv() + kvh], t * tileFloats, dOutDst, 0, n);
        }
    }

    /** Pass-1 scratch: one key tile (transposed, reused by every query tile) and its dk/dv sums. */
    private static final class KeyScratch {
        final float[] kt, vt, qs, dos, s, ds, dkAcc, dvAcc, ls, dd, tmp, ks;

        KeyScratch(int rows, int d, int dp) {
            kt = new float[d * BC];        // key tile transposed, [d][BC]
            ks = new float[BC * dp];       // key tile rows (one pass: dS k)
            vt = new float[d * BC];        // value tile transposed
            qs = new float[rows * dp];     // scale * q rows
            dos = new float[rows * dp];    // dOut rows
            s = new float[rows * BC];      // scores, then P, [rows][BC]
            ds = new float[rows * BC];     // dP, then dS
            dkAcc = new float[BC * dp];
            dvAcc = new float[BC * dp];
            ls = new float[rows];          // lse per row
            dd = new float[rows];          // D per row
            tmp = new float[d];
        }
    }

    /**
     * dk, dv rows of keys j0 .. j0+BC of kv head kvh: sums over the group's heads and every query that sees
     * them. With {@code dqPart} ([grp][tq][dp]) also adds dS k, these keys' share of dq (unscaled), into it.
     */
    private static void keyTileBackward(Dims g, MemorySegment dOut, MemorySegment q, MemorySegment k, MemorySegment v,
                                        MemorySegment lse, float[] rowD, float scale, MemorySegment dk, MemorySegment dv,
                                        int b, int kvh, int j0, int br, int dp, KeyScratch sc, QueryTiles tiles,
                                        float[] dqPart) {
        int d = g.d(), nc = Math.min(BC, g.tk() - j0), grp = g.group();
        float[] s = sc.s, ds = sc.ds;
        packKeysTransposed(g, k, b, kvh, j0, nc, LOG2E, sc.kt, sc.tmp); // base-2 scores: log2 e folded into k
        packKeysTransposed(g, v, b, kvh, j0, nc, 1f, sc.vt, sc.tmp);
        if (dqPart != null) packKeyRows(g, k, b, kvh, j0, nc, sc.ks, dp);
        Arrays.fill(sc.dkAcc, 0f);
        Arrays.fill(sc.dvAcc, 0f);
        // Queries before j0 - offset see none of these keys.
        for (int i0 = Math.max(0, j0 - g.offset()); i0 < g.tq(); i0 += br) {
            int nr = Math.min(br, g.tq() - i0), rows = grp * nr, firstPos = g.offset() + i0;
            if (tiles != null && i0 % br == 0) { // the tiles start at multiples of br (they do where BC is one, from j0 = 0)
                tiles.copy(g, b, kvh, i0 / br, rows * dp, sc.qs, sc.dos);
            } else {
                packRows(g, q, b, kvh, i0, nr, scale, sc.qs, dp);
                packRows(g, dOut, b, kvh, i0, nr, 1f, sc.dos, dp);
            }
            packRowStats(g, lse, rowD, b, kvh, i0, nr, sc.ls, sc.dd, rows);
            gemm(s, BC, sc.qs, dp, 1, sc.kt, BC, rows, d, BC, false);   // S = (scale q) (log2e k)^T
            if (j0 + BC - 1 > firstPos) mask(s, rows, nr, firstPos, j0);
            gemm(ds, BC, sc.dos, dp, 1, sc.vt, BC, rows, d, BC, false); // dP = dO v^T
            for (int r = 0; r < rows; r++) {
                FloatVector lr = FloatVector.broadcast(SP, sc.ls[r]), dr = FloatVector.broadcast(SP, sc.dd[r]);
                for (int c = r * BC, e = c + BC; c < e; c += L) {
                    FloatVector p = VectorMath.exp2(FloatVector.fromArray(SP, s, c).sub(lr)); // masked: 2^-inf = 0
                    p.intoArray(s, c);
                    p.mul(FloatVector.fromArray(SP, ds, c).sub(dr)).intoArray(ds, c);
                }
            }
            gemm(sc.dvAcc, dp, s, 1, BC, sc.dos, dp, nc, rows, dp, true);  // dv += P^T dO
            gemm(sc.dkAcc, dp, ds, 1, BC, sc.qs, dp, nc, rows, dp, true);  // dk += dS^T (scale q)
            if (dqPart != null) {
                for (int gi = 0; gi < grp; gi++) { // dq += dS k, head by head: only the nc real keys
                    gemm(dqPart, (gi * g.tq() + i0) * dp, dp, ds, gi * nr * BC, BC, 1, sc.ks, dp, nr, nc, dp, true);
                }
            }
        }
        for (int c = 0; c < nc; c++) {
            MemorySegment.copy(sc.dkAcc, c * dp, dk, Tensor.F32, g.kRow(b, j0 + c, kvh) * 4, d);
            MemorySegment.copy(sc.dvAcc, c * dp, dv, Tensor.F32, g.kRow(b, j0 + c, kvh) * 4, d);
        }
    }

    /** Pass-2 scratch: one query tile (transposed, reused by every key tile) and its dq sums. */
    private static final class QueryScratch {
        final float[] qt, dot, st, dst, ks, vs, dqAcc, ls, dd, tmp;

        QueryScratch(int rows, int rp, int d, int dp) {
            qt = new float[d * rp];        // scale * q transposed, [d][rp]
            dot = new float[d * rp];       // dOut transposed
            st = new float[BC * rp];       // scores, then P, transposed: [BC][rp]
            dst = new float[BC * rp];      // dP, then dS, transposed
            ks = new float[BC * dp];       // key tile rows
            vs = new float[BC * dp];       // value tile rows
            dqAcc = new float[rows * dp];
            ls = new float[rp];
            dd = new float[rp];
            tmp = new float[d];
        }
    }

    /** dq rows i0 .. i0+nr of the group's heads: sums over the key tiles they see (scores transposed, as the forward). */
    private static void queryTileBackward(Dims g, MemorySegment dOut, MemorySegment q, MemorySegment k, MemorySegment v,
                                          MemorySegment lse, float[] rowD, float scale, MemorySegment dq,
                                          int b, int kvh, int i0, int nr, int dp, QueryScratch sc) {
        int d = g.d(), grp = g.group(), rows = grp * nr, rp = roundUp(rows, L);
        int firstPos = g.offset() + i0, lastPos = firstPos + nr - 1;
        float[] st = sc.st, dst = sc.dst;
        packRowsTransposed(g, q, b, kvh, i0, nr, scale * LOG2E, sc.qt, rp, sc.tmp); // base-2 scores
        packRowsTransposed(g, dOut, b, kvh, i0, nr, 1f, sc.dot, rp, sc.tmp);
        packRowStats(g, lse, rowD, b, kvh, i0, nr, sc.ls, sc.dd, rp);
        Arrays.fill(sc.dqAcc, 0, rows * dp, 0f);
        for (int j0 = 0; j0 <= lastPos; j0 += BC) {
            int nc = Math.min(BC, g.tk() - j0);
            packKeyRows(g, k, b, kvh, j0, nc, sc.ks, dp);
            packKeyRows(g, v, b, kvh, j0, nc, sc.vs, dp);
            gemm(st, rp, sc.ks, dp, 1, sc.qt, rp, nc, d, rp, false);   // S^T = k (scale log2e q)^T
            if (j0 + nc - 1 > firstPos) maskTransposed(st, rp, nc, grp, nr, firstPos, j0);
            gemm(dst, rp, sc.vs, dp, 1, sc.dot, rp, nc, d, rp, false); // dP^T = v dO^T
            for (int r = 0; r < rp; r += L) {
                FloatVector lr = FloatVector.fromArray(SP, sc.ls, r), dr = FloatVector.fromArray(SP, sc.dd, r);
                for (int c = r, e = nc * rp; c < e; c += rp) {
                    FloatVector p = VectorMath.exp2(FloatVector.fromArray(SP, st, c).sub(lr));
                    p.mul(FloatVector.fromArray(SP, dst, c).sub(dr)).intoArray(dst, c);
                }
            }
            gemm(sc.dqAcc, dp, dst, 1, rp, sc.ks, dp, rows, nc, dp, true); // dq += dS k (scale applied below)
        }
        for (int r = 0; r < rows; r++) {
            scaleRow(sc.dqAcc, r * dp, dp, scale);
            MemorySegment.copy(sc.dqAcc, r * dp, dq, Tensor.F32, g.qRow(b, i0 + r % nr, kvh * grp + r / nr) * 4, d);
        }
    }

    // =================================================================== kernels

    private static int roundUp(int x, int m) { return (x + m - 1) / m * m; }

    private static void scaleRow(float[] a, int off, int n, float f) {
        for (int c = off, e = off + n; c < e; c += L) FloatVector.fromArray(SP, a, c).mul(f).intoArray(a, c);
    }

    /**
     * c[i][j] (+)= sum_{p < k} a[i * ars + p * acs] * b[p][j] for i < n, j < w, with row strides ldc, ldb
     * and w a multiple of the vector length. The one matrix kernel of this file: a tile of rows x vectors of
     * accumulators (6 x 4, 4 x 4 or 8 x 2 with 32 vector registers; 6 x 2 and 4 x 2 with 16) stays in
     * registers while p runs; a is read through strides so that a transposed operand (P^T, dS^T) needs no copy.
     * One of the strides must be 1, and the main tiles come in a kernel for each case: U for rows of a next to
     * each other (ars = 1: the tile's broadcasts share one index, so C2 checks it twice a step instead of once a
     * load) and K for a row contiguous along p (acs = 1: p is the loop counter, so C2 hoists the checks out of
     * the loop). With both strides general, C2's loop had a bounds check on every load, two multiplies and
     * offsets spilled to the stack: 45 instructions besides the 16 multiply-adds of kernel8x2, against 22 now.
     */
    static void gemm(float[] c, int ldc, float[] a, int ars, int acs, float[] b, int ldb, int n, int k, int w, boolean acc) {
        gemm(c, 0, ldc, a, 0, ars, acs, b, ldb, n, k, w, acc, WIDE_TILE);
    }

    /** {@link #gemm} on c from element cOff and a from element aOff. */
    static void gemm(float[] c, int cOff, int ldc, float[] a, int aOff, int ars, int acs, float[] b, int ldb, int n, int k, int w,
                     boolean acc) {
        gemm(c, cOff, ldc, a, aOff, ars, acs, b, ldb, n, k, w, acc, WIDE_TILE);
    }

    /**
     * Runs every tile kernel of {@link #gemm} once in each layout (U and K) and each mode (overwrite and
     * accumulate), on a few rows. For {@link CpuWarmup}: its small attention shapes do not reach every
     * combination the real ones do (at head dims of 64 and more, dq accumulates through the 6 x 4 K kernel,
     * which the warm-up's head dim 32 only ever overwrote with), and C2 compiles a branch it has not seen as
     * a trap: the first real step then threw the kernel away and compiled it again.
     */
    static void exerciseKernels() {
        int n = 24, k = 8, w = 8 * L;
        float[] a = new float[n * k], b = new float[k * w], c = new float[n * w];
        for (boolean acc : new boolean[] {false, true}) {
            for (int width : new int[] {w, 4 * L, 2 * L, L}) {
                gemm(c, width, a, 1, n, b, width, n, k, width, acc); // U: rows of a next to each other
                gemm(c, width, a, k, 1, b, width, n, k, width, acc); // K: a row contiguous along k
                gemm(c, width, a, 1, n, b, width, 8, k, width, acc);
                gemm(c, width, a, k, 1, b, width, 8, k, width, acc);
            }
        }
    }

    /**
     * Whether the 4 x 4-vector tile fits the vector registers: its 16 accumulators, 4 B vectors and a
     * broadcast need 21, which 32-register machines have (AVX-512, AArch64); with 16 (AVX2) the JIT
     * spills them on every step of the loop, so the tile there is 6 x 2 vectors (15 registers) where a row of a is
     * contiguous along k, else 4 x 2.
     */
    static final boolean WIDE_TILE = SP.vectorBitSize() >= 512 || System.getProperty("os.arch", "").equals("aarch64");

    /** {@link #gemm} with the micro-tile chosen explicitly (tests reach both on any machine). */
    static void gemm(float[] c, int ldc, float[] a, int ars, int acs, float[] b, int ldb, int n, int k, int w, boolean acc,
                     boolean wide) {
        gemm(c, 0, ldc, a, 0, ars, acs, b, ldb, n, k, w, acc, wide);
    }

    private static void gemm(float[] c, int cOff, int ldc, float[] a, int aOff, int ars, int acs, float[] b, int ldb, int n, int k,
                             int w, boolean acc, boolean wide) {
        if (ars != 1 && acs != 1) throw new IllegalArgumentException("a's rows or its columns must be contiguous: ars " + ars + ", acs " + acs);
        int i = 0;
        if (!wide && ars != 1) {
            // 16 registers, a row of a contiguous along k: 6 x 2. With rows of a next to each other (ars = 1) the
            // 6 x 2 tile kept two accumulators on the stack through every step, and the 4-row kernels below do
            // better there: alternating in one JVM with -XX:UseAVX=2, the attention forward 1.14x at head dim 32
            // (1,024 to 16,384 tokens), the backward 1.04-1.09x at 4/1 heads of 128, level elsewhere.
            int six = n / 6;
            // as many 6-row tiles as leave the 4-row tile a multiple of 4 rows (n even): 128 keys were 21 tiles and
            // two single rows, whose loop does one multiply-add per step
            if (six > 0 && (n - 6 * six) % 4 > 1) six--;
            for (; i < 6 * six; i += 6) {
                int j = 0;
                for (; j + 2 * L <= w; j += 2 * L) kernel6x2K(c, ldc, a, aOff + i * ars, ars, b, ldb, k, cOff + i * ldc + j, j, acc);
                for (; j < w; j += L) {
                    kernel4x1(c, ldc, a, aOff + i * ars, ars, acs, b, ldb, k, cOff + i * ldc + j, j, acc);
                    int i4 = i + 4; // the tile's last two rows, one vector wide: two rows of the 4-row kernel's work
                    kernel4x1Rows2(c, ldc, a, aOff + i4 * ars, ars, acs, b, ldb, k, cOff + i4 * ldc + j, j, acc);
                }
            }
        }
        if (wide && w % (4 * L) != 0) {
            // A width of 2 vectors (head dim 32 on AVX-512) left over: 8 rows at a time there, so that each
            // pair of B vectors loaded feeds 16 accumulators instead of 8. Each element's sum runs in the same
            // order as in the 4-row kernels: the same bits.
            int w4 = w - w % (4 * L);
            for (; i + 8 <= n && w - w4 >= 2 * L; i += 8) {
                int j = 0;
                for (; j < w4; j += 4 * L) {
                    kernel4x4(c, ldc, a, aOff + i * ars, ars, acs, b, ldb, k, cOff + i * ldc + j, j, acc);
                    kernel4x4(c, ldc, a, aOff + (i + 4) * ars, ars, acs, b, ldb, k, cOff + (i + 4) * ldc + j, j, acc);
                }
                for (; j + 2 * L <= w; j += 2 * L) {
                    if (ars == 1) kernel8x2U(c, ldc, a, aOff + i, acs, b, ldb, k, cOff + i * ldc + j, j, acc);
                    else kernel8x2K(c, ldc, a, aOff + i * ars, ars, b, ldb, k, cOff + i * ldc + j, j, acc);
                }
                for (; j < w; j += L) {
                    kernel4x1(c, ldc, a, aOff + i * ars, ars, acs, b, ldb, k, cOff + i * ldc + j, j, acc);
                    kernel4x1(c, ldc, a, aOff + (i + 4) * ars, ars, acs, b, ldb, k, cOff + (i + 4) * ldc + j, j, acc);
                }
            }
        }
        if (wide && w % (4 * L) == 0) {
            // Widths of whole 4-vector blocks (head dims 64 and 128, key tiles): 6 rows at a time, each B
            // vector loaded feeding 6 multiply-adds instead of 4 (1.3-1.4x the 4-row tile at head dim 128
            // on AVX-512); as many 6-row blocks as leave a multiple of 4 rows (n even) for the 4-row kernel.
            int six = n / 6;
            if (six > 0 && (n - 6 * six) % 4 > 1) six--;
            for (; i < 6 * six; i += 6) {
                for (int j = 0; j < w; j += 4 * L) {
                    if (ars == 1) kernel6x4U(c, ldc, a, aOff + i, acs, b, ldb, k, cOff + i * ldc + j, j, acc);
                    else kernel6x4K(c, ldc, a, aOff + i * ars, ars, b, ldb, k, cOff + i * ldc + j, j, acc);
                }
            }
        }
        for (; i + 4 <= n; i += 4) {
            int j = 0;
            if (wide) for (; j + 4 * L <= w; j += 4 * L) kernel4x4(c, ldc, a, aOff + i * ars, ars, acs, b, ldb, k, cOff + i * ldc + j, j, acc);
            for (; j + 2 * L <= w; j += 2 * L) kernel4x2(c, ldc, a, aOff + i * ars, ars, acs, b, ldb, k, cOff + i * ldc + j, j, acc);
            for (; j < w; j += L) kernel4x1(c, ldc, a, aOff + i * ars, ars, acs, b, ldb, k, cOff + i * ldc + j, j, acc);
        }
        for (; i < n; i++) {
            for (int j = 0; j < w; j += L) {
                FloatVector x = acc ? FloatVector.fromArray(SP, c, cOff + i * ldc + j) : FloatVector.zero(SP);
                for (int p = 0, ao = aOff + i * ars, bo = j; p < k; p++, ao += acs, bo += ldb) {
                    x = FloatVector.broadcast(SP, a[ao]).fma(FloatVector.fromArray(SP, b, bo), x);
                }
                x.intoArray(c, cOff + i * ldc + j);
            }
        }
    }

    /** 4 rows x 4 vectors in the layout of a at hand (4-row remainders of the 6-row tiles). */
    private static void kernel4x4(float[] c, int ldc, float[] a, int a0, int ars, int acs, float[] b, int ldb, int k,
                                  int c0, int j, boolean acc) {
        if (ars == 1) kernel4x4U(c, ldc, a, a0, acs, b, ldb, k, c0, j, acc);
        else kernel4x4K(c, ldc, a, a0, ars, b, ldb, k, c0, j, acc);
    }

    /** 4 rows x 4 vectors, for rows of a next to each other (ars = 1), as {@link #kernel6x4U}. */
    private static void kernel4x4U(float[] c, int ldc, float[] a, int a0, int acs, float[] b, int ldb, int k,
                                   int c0, int j, boolean acc) {
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        FloatVector x00, x01, x02, x03, x10, x11, x12, x13, x20, x21, x22, x23, x30, x31, x32, x33;
        if (acc) {
            x00 = FloatVector.fromArray(SP, c, c0); x01 = FloatVector.fromArray(SP, c, c0 + L);
            x02 = FloatVector.fromArray(SP, c, c0 + 2 * L); x03 = FloatVector.fromArray(SP, c, c0 + 3 * L);
            x10 = FloatVector.fromArray(SP, c, c1); x11 = FloatVector.fromArray(SP, c, c1 + L);
            x12 = FloatVector.fromArray(SP, c, c1 + 2 * L); x13 = FloatVector.fromArray(SP, c, c1 + 3 * L);
            x20 = FloatVector.fromArray(SP, c, c2); x21 = FloatVector.fromArray(SP, c, c2 + L);
            x22 = FloatVector.fromArray(SP, c, c2 + 2 * L); x23 = FloatVector.fromArray(SP, c, c2 + 3 * L);
            x30 = FloatVector.fromArray(SP, c, c3); x31 = FloatVector.fromArray(SP, c, c3 + L);
            x32 = FloatVector.fromArray(SP, c, c3 + 2 * L); x33 = FloatVector.fromArray(SP, c, c3 + 3 * L);
        } else {
            x00 = x01 = x02 = x03 = x10 = x11 = x12 = x13 = FloatVector.zero(SP);
            x20 = x21 = x22 = x23 = x30 = x31 = x32 = x33 = FloatVector.zero(SP);
        }
        for (int p = 0, ap = a0, bp = j; p < k; p++, ap += acs, bp += ldb) {
            FloatVector b0 = FloatVector.fromArray(SP, b, bp), b1 = FloatVector.fromArray(SP, b, bp + L);
            FloatVector b2 = FloatVector.fromArray(SP, b, bp + 2 * L), b3 = FloatVector.fromArray(SP, b, bp + 3 * L);
            FloatVector av = FloatVector.broadcast(SP, a[ap]);
            x00 = av.fma(b0, x00); x01 = av.fma(b1, x01); x02 = av.fma(b2, x02); x03 = av.fma(b3, x03);
            av = FloatVector.broadcast(SP, a[ap + 1]);
            x10 = av.fma(b0, x10); x11 = av.fma(b1, x11); x12 = av.fma(b2, x12); x13 = av.fma(b3, x13);
            av = FloatVector.broadcast(SP, a[ap + 2]);
            x20 = av.fma(b0, x20); x21 = av.fma(b1, x21); x22 = av.fma(b2, x22); x23 = av.fma(b3, x23);
            av = FloatVector.broadcast(SP, a[ap + 3]);
            x30 = av.fma(b0, x30); x31 = av.fma(b1, x31); x32 = av.fma(b2, x32); x33 = av.fma(b3, x33);
        }
        x00.intoArray(c, c0); x01.intoArray(c, c0 + L); x02.intoArray(c, c0 + 2 * L); x03.intoArray(c, c0 + 3 * L);
        x10.intoArray(c, c1); x11.intoArray(c, c1 + L); x12.intoArray(c, c1 + 2 * L); x13.intoArray(c, c1 + 3 * L);
        x20.intoArray(c, c2); x21.intoArray(c, c2 + L); x22.intoArray(c, c2 + 2 * L); x23.intoArray(c, c2 + 3 * L);
        x30.intoArray(c, c3); x31.intoArray(c, c3 + L); x32.intoArray(c, c3 + 2 * L); x33.intoArray(c, c3 + 3 * L);
    }

    /** 4 rows x 4 vectors, for a row of a contiguous along p (acs = 1), as {@link #kernel6x4K}. */
    private static void kernel4x4K(float[] c, int ldc, float[] a, int a0, int ars, float[] b, int ldb, int k,
                                   int c0, int j, boolean acc) {
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        FloatVector x00, x01, x02, x03, x10, x11, x12, x13, x20, x21, x22, x23, x30, x31, x32, x33;
        if (acc) {
            x00 = FloatVector.fromArray(SP, c, c0); x01 = FloatVector.fromArray(SP, c, c0 + L);
            x02 = FloatVector.fromArray(SP, c, c0 + 2 * L); x03 = FloatVector.fromArray(SP, c, c0 + 3 * L);
            x10 = FloatVector.fromArray(SP, c, c1); x11 = FloatVector.fromArray(SP, c, c1 + L);
            x12 = FloatVector.fromArray(SP, c, c1 + 2 * L); x13 = FloatVector.fromArray(SP, c, c1 + 3 * L);
            x20 = FloatVector.fromArray(SP, c, c2); x21 = FloatVector.fromArray(SP, c, c2 + L);
            x22 = FloatVector.fromArray(SP, c, c2 + 2 * L); x23 = FloatVector.fromArray(SP, c, c2 + 3 * L);
            x30 = FloatVector.fromArray(SP, c, c3); x31 = FloatVector.fromArray(SP, c, c3 + L);
            x32 = FloatVector.fromArray(SP, c, c3 + 2 * L); x33 = FloatVector.fromArray(SP, c, c3 + 3 * L);
        } else {
            x00 = x01 = x02 = x03 = x10 = x11 = x12 = x13 = FloatVector.zero(SP);
            x20 = x21 = x22 = x23 = x30 = x31 = x32 = x33 = FloatVector.zero(SP);
        }
        int a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars;
        for (int p = 0, bp = j; p < k; p++, bp += ldb) {
            FloatVector b0 = FloatVector.fromArray(SP, b, bp), b1 = FloatVector.fromArray(SP, b, bp + L);
            FloatVector b2 = FloatVector.fromArray(SP, b, bp + 2 * L), b3 = FloatVector.fromArray(SP, b, bp + 3 * L);
            FloatVector av = FloatVector.broadcast(SP, a[a0 + p]);
            x00 = av.fma(b0, x00); x01 = av.fma(b1, x01); x02 = av.fma(b2, x02); x03 = av.fma(b3, x03);
            av = FloatVector.broadcast(SP, a[a1 + p]);
            x10 = av.fma(b0, x10); x11 = av.fma(b1, x11); x12 = av.fma(b2, x12); x13 = av.fma(b3, x13);
            av = FloatVector.broadcast(SP, a[a2 + p]);
            x20 = av.fma(b0, x20); x21 = av.fma(b1, x21); x22 = av.fma(b2, x22); x23 = av.fma(b3, x23);
            av = FloatVector.broadcast(SP, a[a3 + p]);
            x30 = av.fma(b0, x30); x31 = av.fma(b1, x31); x32 = av.fma(b2, x32); x33 = av.fma(b3, x33);
        }
        x00.intoArray(c, c0); x01.intoArray(c, c0 + L); x02.intoArray(c, c0 + 2 * L); x03.intoArray(c, c0 + 3 * L);
        x10.intoArray(c, c1); x11.intoArray(c, c1 + L); x12.intoArray(c, c1 + 2 * L); x13.intoArray(c, c1 + 3 * L);
        x20.intoArray(c, c2); x21.intoArray(c, c2 + L); x22.intoArray(c, c2 + 2 * L); x23.intoArray(c, c2 + 3 * L);
        x30.intoArray(c, c3); x31.intoArray(c, c3 + L); x32.intoArray(c, c3 + 2 * L); x33.intoArray(c, c3 + 3 * L);
    }


    /** 6 rows x 4 vectors, for rows of a next to each other (ars = 1): the tile's 6 broadcasts share one index. */
    private static void kernel6x4U(float[] c, int ldc, float[] a, int a0, int acs, float[] b, int ldb, int k,
                                  int c0, int j, boolean acc) {
        FloatVector x00, x01, x02, x03, x10, x11, x12, x13, x20, x21, x22, x23, x30, x31, x32, x33, x40, x41, x42, x43, x50, x51, x52, x53;
        if (acc) {
            int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc;
            x00 = FloatVector.fromArray(SP, c, c0); x01 = FloatVector.fromArray(SP, c, c0 + L); x02 = FloatVector.fromArray(SP, c, c0 + 2 * L); x03 = FloatVector.fromArray(SP, c, c0 + 3 * L);
            x10 = FloatVector.fromArray(SP, c, c1); x11 = FloatVector.fromArray(SP, c, c1 + L); x12 = FloatVector.fromArray(SP, c, c1 + 2 * L); x13 = FloatVector.fromArray(SP, c, c1 + 3 * L);
            x20 = FloatVector.fromArray(SP, c, c2); x21 = FloatVector.fromArray(SP, c, c2 + L); x22 = FloatVector.fromArray(SP, c, c2 + 2 * L); x23 = FloatVector.fromArray(SP, c, c2 + 3 * L);
            x30 = FloatVector.fromArray(SP, c, c3); x31 = FloatVector.fromArray(SP, c, c3 + L); x32 = FloatVector.fromArray(SP, c, c3 + 2 * L); x33 = FloatVector.fromArray(SP, c, c3 + 3 * L);
            x40 = FloatVector.fromArray(SP, c, c4); x41 = FloatVector.fromArray(SP, c, c4 + L); x42 = FloatVector.fromArray(SP, c, c4 + 2 * L); x43 = FloatVector.fromArray(SP, c, c4 + 3 * L);
            x50 = FloatVector.fromArray(SP, c, c5); x51 = FloatVector.fromArray(SP, c, c5 + L); x52 = FloatVector.fromArray(SP, c, c5 + 2 * L); x53 = FloatVector.fromArray(SP, c, c5 + 3 * L);
        } else {
            x00 = x01 = x02 = x03 = x10 = x11 = x12 = x13 = x20 = x21 = x22 = x23 = x30 = x31 = x32 = x33 = x40 = x41 = x42 = x43 = x50 = x51 = x52 = x53 = FloatVector.zero(SP);
        }
        for (int p = 0, ap = a0, bp = j; p < k; p++, ap += acs, bp += ldb) {
            FloatVector b0 = FloatVector.fromArray(SP, b, bp), b1 = FloatVector.fromArray(SP, b, bp + L), b2 = FloatVector.fromArray(SP, b, bp + 2 * L), b3 = FloatVector.fromArray(SP, b, bp + 3 * L);
            FloatVector av = FloatVector.broadcast(SP, a[ap]);
            x00 = av.fma(b0, x00); x01 = av.fma(b1, x01); x02 = av.fma(b2, x02); x03 = av.fma(b3, x03);
            av = FloatVector.broadcast(SP, a[ap + 1]);
            x10 = av.fma(b0, x10); x11 = av.fma(b1, x11); x12 = av.fma(b2, x12); x13 = av.fma(b3, x13);
            av = FloatVector.broadcast(SP, a[ap + 2]);
            x20 = av.fma(b0, x20); x21 = av.fma(b1, x21); x22 = av.fma(b2, x22); x23 = av.fma(b3, x23);
            av = FloatVector.broadcast(SP, a[ap + 3]);
            x30 = av.fma(b0, x30); x31 = av.fma(b1, x31); x32 = av.fma(b2, x32); x33 = av.fma(b3, x33);
            av = FloatVector.broadcast(SP, a[ap + 4]);
            x40 = av.fma(b0, x40); x41 = av.fma(b1, x41); x42 = av.fma(b2, x42); x43 = av.fma(b3, x43);
            av = FloatVector.broadcast(SP, a[ap + 5]);
            x50 = av.fma(b0, x50); x51 = av.fma(b1, x51); x52 = av.fma(b2, x52); x53 = av.fma(b3, x53);
        }
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc;
        x00.intoArray(c, c0); x01.intoArray(c, c0 + L); x02.intoArray(c, c0 + 2 * L); x03.intoArray(c, c0 + 3 * L);
        x10.intoArray(c, c1); x11.intoArray(c, c1 + L); x12.intoArray(c, c1 + 2 * L); x13.intoArray(c, c1 + 3 * L);
        x20.intoArray(c, c2); x21.intoArray(c, c2 + L); x22.intoArray(c, c2 + 2 * L); x23.intoArray(c, c2 + 3 * L);
        x30.intoArray(c, c3); x31.intoArray(c, c3 + L); x32.intoArray(c, c3 + 2 * L); x33.intoArray(c, c3 + 3 * L);
        x40.intoArray(c, c4); x41.intoArray(c, c4 + L); x42.intoArray(c, c4 + 2 * L); x43.intoArray(c, c4 + 3 * L);
        x50.intoArray(c, c5); x51.intoArray(c, c5 + L); x52.intoArray(c, c5 + 2 * L); x53.intoArray(c, c5 + 3 * L);
    }

    /** 6 rows x 4 vectors, for a row of a contiguous along p (acs = 1): each broadcast's index is a row's start plus p. */
    private static void kernel6x4K(float[] c, int ldc, float[] a, int a0, int ars, float[] b, int ldb, int k,
                                  int c0, int j, boolean acc) {
        FloatVector x00, x01, x02, x03, x10, x11, x12, x13, x20, x21, x22, x23, x30, x31, x32, x33, x40, x41, x42, x43, x50, x51, x52, x53;
        if (acc) {
            int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc;
            x00 = FloatVector.fromArray(SP, c, c0); x01 = FloatVector.fromArray(SP, c, c0 + L); x02 = FloatVector.fromArray(SP, c, c0 + 2 * L); x03 = FloatVector.fromArray(SP, c, c0 + 3 * L);
            x10 = FloatVector.fromArray(SP, c, c1); x11 = FloatVector.fromArray(SP, c, c1 + L); x12 = FloatVector.fromArray(SP, c, c1 + 2 * L); x13 = FloatVector.fromArray(SP, c, c1 + 3 * L);
            x20 = FloatVector.fromArray(SP, c, c2); x21 = FloatVector.fromArray(SP, c, c2 + L); x22 = FloatVector.fromArray(SP, c, c2 + 2 * L); x23 = FloatVector.fromArray(SP, c, c2 + 3 * L);
            x30 = FloatVector.fromArray(SP, c, c3); x31 = FloatVector.fromArray(SP, c, c3 + L); x32 = FloatVector.fromArray(SP, c, c3 + 2 * L); x33 = FloatVector.fromArray(SP, c, c3 + 3 * L);
            x40 = FloatVector.fromArray(SP, c, c4); x41 = FloatVector.fromArray(SP, c, c4 + L); x42 = FloatVector.fromArray(SP, c, c4 + 2 * L); x43 = FloatVector.fromArray(SP, c, c4 + 3 * L);
            x50 = FloatVector.fromArray(SP, c, c5); x51 = FloatVector.fromArray(SP, c, c5 + L); x52 = FloatVector.fromArray(SP, c, c5 + 2 * L); x53 = FloatVector.fromArray(SP, c, c5 + 3 * L);
        } else {
            x00 = x01 = x02 = x03 = x10 = x11 = x12 = x13 = x20 = x21 = x22 = x23 = x30 = x31 = x32 = x33 = x40 = x41 = x42 = x43 = x50 = x51 = x52 = x53 = FloatVector.zero(SP);
        }
        int a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars, a4 = a3 + ars, a5 = a4 + ars;
        for (int p = 0, bp = j; p < k; p++, bp += ldb) {
            FloatVector b0 = FloatVector.fromArray(SP, b, bp), b1 = FloatVector.fromArray(SP, b, bp + L), b2 = FloatVector.fromArray(SP, b, bp + 2 * L), b3 = FloatVector.fromArray(SP, b, bp + 3 * L);
            FloatVector av = FloatVector.broadcast(SP, a[a0 + p]);
            x00 = av.fma(b0, x00); x01 = av.fma(b1, x01); x02 = av.fma(b2, x02); x03 = av.fma(b3, x03);
            av = FloatVector.broadcast(SP, a[a1 + p]);
            x10 = av.fma(b0, x10); x11 = av.fma(b1, x11); x12 = av.fma(b2, x12); x13 = av.fma(b3, x13);
            av = FloatVector.broadcast(SP, a[a2 + p]);
            x20 = av.fma(b0, x20); x21 = av.fma(b1, x21); x22 = av.fma(b2, x22); x23 = av.fma(b3, x23);
            av = FloatVector.broadcast(SP, a[a3 + p]);
            x30 = av.fma(b0, x30); x31 = av.fma(b1, x31); x32 = av.fma(b2, x32); x33 = av.fma(b3, x33);
            av = FloatVector.broadcast(SP, a[a4 + p]);
            x40 = av.fma(b0, x40); x41 = av.fma(b1, x41); x42 = av.fma(b2, x42); x43 = av.fma(b3, x43);
            av = FloatVector.broadcast(SP, a[a5 + p]);
            x50 = av.fma(b0, x50); x51 = av.fma(b1, x51); x52 = av.fma(b2, x52); x53 = av.fma(b3, x53);
        }
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc;
        x00.intoArray(c, c0); x01.intoArray(c, c0 + L); x02.intoArray(c, c0 + 2 * L); x03.intoArray(c, c0 + 3 * L);
        x10.intoArray(c, c1); x11.intoArray(c, c1 + L); x12.intoArray(c, c1 + 2 * L); x13.intoArray(c, c1 + 3 * L);
        x20.intoArray(c, c2); x21.intoArray(c, c2 + L); x22.intoArray(c, c2 + 2 * L); x23.intoArray(c, c2 + 3 * L);
        x30.intoArray(c, c3); x31.intoArray(c, c3 + L); x32.intoArray(c, c3 + 2 * L); x33.intoArray(c, c3 + 3 * L);
        x40.intoArray(c, c4); x41.intoArray(c, c4 + L); x42.intoArray(c, c4 + 2 * L); x43.intoArray(c, c4 + 3 * L);
        x50.intoArray(c, c5); x51.intoArray(c, c5 + L); x52.intoArray(c, c5 + 2 * L); x53.intoArray(c, c5 + 3 * L);
    }

    /** 8 rows x 2 vectors, for rows of a next to each other (ars = 1): the tile's 8 broadcasts share one index. */
    private static void kernel8x2U(float[] c, int ldc, float[] a, int a0, int acs, float[] b, int ldb, int k,
                                  int c0, int j, boolean acc) {
        FloatVector x00, x01, x10, x11, x20, x21, x30, x31, x40, x41, x50, x51, x60, x61, x70, x71;
        if (acc) {
            int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc, c6 = c5 + ldc, c7 = c6 + ldc;
            x00 = FloatVector.fromArray(SP, c, c0); x01 = FloatVector.fromArray(SP, c, c0 + L);
            x10 = FloatVector.fromArray(SP, c, c1); x11 = FloatVector.fromArray(SP, c, c1 + L);
            x20 = FloatVector.fromArray(SP, c, c2); x21 = FloatVector.fromArray(SP, c, c2 + L);
            x30 = FloatVector.fromArray(SP, c, c3); x31 = FloatVector.fromArray(SP, c, c3 + L);
            x40 = FloatVector.fromArray(SP, c, c4); x41 = FloatVector.fromArray(SP, c, c4 + L);
            x50 = FloatVector.fromArray(SP, c, c5); x51 = FloatVector.fromArray(SP, c, c5 + L);
            x60 = FloatVector.fromArray(SP, c, c6); x61 = FloatVector.fromArray(SP, c, c6 + L);
            x70 = FloatVector.fromArray(SP, c, c7); x71 = FloatVector.fromArray(SP, c, c7 + L);
        } else {
            x00 = x01 = x10 = x11 = x20 = x21 = x30 = x31 = x40 = x41 = x50 = x51 = x60 = x61 = x70 = x71 = FloatVector.zero(SP);
        }
        for (int p = 0, ap = a0, bp = j; p < k; p++, ap += acs, bp += ldb) {
            FloatVector b0 = FloatVector.fromArray(SP, b, bp), b1 = FloatVector.fromArray(SP, b, bp + L);
            FloatVector av = FloatVector.broadcast(SP, a[ap]);
            x00 = av.fma(b0, x00); x01 = av.fma(b1, x01);
            av = FloatVector.broadcast(SP, a[ap + 1]);
            x10 = av.fma(b0, x10); x11 = av.fma(b1, x11);
            av = FloatVector.broadcast(SP, a[ap + 2]);
            x20 = av.fma(b0, x20); x21 = av.fma(b1, x21);
            av = FloatVector.broadcast(SP, a[ap + 3]);
            x30 = av.fma(b0, x30); x31 = av.fma(b1, x31);
            av = FloatVector.broadcast(SP, a[ap + 4]);
            x40 = av.fma(b0, x40); x41 = av.fma(b1, x41);
            av = FloatVector.broadcast(SP, a[ap + 5]);
            x50 = av.fma(b0, x50); x51 = av.fma(b1, x51);
            av = FloatVector.broadcast(SP, a[ap + 6]);
            x60 = av.fma(b0, x60); x61 = av.fma(b1, x61);
            av = FloatVector.broadcast(SP, a[ap + 7]);
            x70 = av.fma(b0, x70); x71 = av.fma(b1, x71);
        }
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc, c6 = c5 + ldc, c7 = c6 + ldc;
        x00.intoArray(c, c0); x01.intoArray(c, c0 + L);
        x10.intoArray(c, c1); x11.intoArray(c, c1 + L);
        x20.intoArray(c, c2); x21.intoArray(c, c2 + L);
        x30.intoArray(c, c3); x31.intoArray(c, c3 + L);
        x40.intoArray(c, c4); x41.intoArray(c, c4 + L);
        x50.intoArray(c, c5); x51.intoArray(c, c5 + L);
        x60.intoArray(c, c6); x61.intoArray(c, c6 + L);
        x70.intoArray(c, c7); x71.intoArray(c, c7 + L);
    }

    /** 8 rows x 2 vectors, for a row of a contiguous along p (acs = 1): each broadcast's index is a row's start plus p. */
    private static void kernel8x2K(float[] c, int ldc, float[] a, int a0, int ars, float[] b, int ldb, int k,
                                  int c0, int j, boolean acc) {
        FloatVector x00, x01, x10, x11, x20, x21, x30, x31, x40, x41, x50, x51, x60, x61, x70, x71;
        if (acc) {
            int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc, c6 = c5 + ldc, c7 = c6 + ldc;
            x00 = FloatVector.fromArray(SP, c, c0); x01 = FloatVector.fromArray(SP, c, c0 + L);
            x10 = FloatVector.fromArray(SP, c, c1); x11 = FloatVector.fromArray(SP, c, c1 + L);
            x20 = FloatVector.fromArray(SP, c, c2); x21 = FloatVector.fromArray(SP, c, c2 + L);
            x30 = FloatVector.fromArray(SP, c, c3); x31 = FloatVector.fromArray(SP, c, c3 + L);
            x40 = FloatVector.fromArray(SP, c, c4); x41 = FloatVector.fromArray(SP, c, c4 + L);
            x50 = FloatVector.fromArray(SP, c, c5); x51 = FloatVector.fromArray(SP, c, c5 + L);
            x60 = FloatVector.fromArray(SP, c, c6); x61 = FloatVector.fromArray(SP, c, c6 + L);
            x70 = FloatVector.fromArray(SP, c, c7); x71 = FloatVector.fromArray(SP, c, c7 + L);
        } else {
            x00 = x01 = x10 = x11 = x20 = x21 = x30 = x31 = x40 = x41 = x50 = x51 = x60 = x61 = x70 = x71 = FloatVector.zero(SP);
        }
        int a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars, a4 = a3 + ars, a5 = a4 + ars, a6 = a5 + ars, a7 = a6 + ars;
        for (int p = 0, bp = j; p < k; p++, bp += ldb) {
            FloatVector b0 = FloatVector.fromArray(SP, b, bp), b1 = FloatVector.fromArray(SP, b, bp + L);
            FloatVector av = FloatVector.broadcast(SP, a[a0 + p]);
            x00 = av.fma(b0, x00); x01 = av.fma(b1, x01);
            av = FloatVector.broadcast(SP, a[a1 + p]);
            x10 = av.fma(b0, x10); x11 = av.fma(b1, x11);
            av = FloatVector.broadcast(SP, a[a2 + p]);
            x20 = av.fma(b0, x20); x21 = av.fma(b1, x21);
            av = FloatVector.broadcast(SP, a[a3 + p]);
            x30 = av.fma(b0, x30); x31 = av.fma(b1, x31);
            av = FloatVector.broadcast(SP, a[a4 + p]);
            x40 = av.fma(b0, x40); x41 = av.fma(b1, x41);
            av = FloatVector.broadcast(SP, a[a5 + p]);
            x50 = av.fma(b0, x50); x51 = av.fma(b1, x51);
            av = FloatVector.broadcast(SP, a[a6 + p]);
            x60 = av.fma(b0, x60); x61 = av.fma(b1, x61);
            av = FloatVector.broadcast(SP, a[a7 + p]);
            x70 = av.fma(b0, x70); x71 = av.fma(b1, x71);
        }
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc, c6 = c5 + ldc, c7 = c6 + ldc;
        x00.intoArray(c, c0); x01.intoArray(c, c0 + L);
        x10.intoArray(c, c1); x11.intoArray(c, c1 + L);
        x20.intoArray(c, c2); x21.intoArray(c, c2 + L);
        x30.intoArray(c, c3); x31.intoArray(c, c3 + L);
        x40.intoArray(c, c4); x41.intoArray(c, c4 + L);
        x50.intoArray(c, c5); x51.intoArray(c, c5 + L);
        x60.intoArray(c, c6); x61.intoArray(c, c6 + L);
        x70.intoArray(c, c7); x71.intoArray(c, c7 + L);
    }

    /** 6 rows x 2 vectors, for a row of a contiguous along p (acs = 1): each broadcast's index is a row's start plus p. */
    private static void kernel6x2K(float[] c, int ldc, float[] a, int a0, int ars, float[] b, int ldb, int k,
                                  int c0, int j, boolean acc) {
        FloatVector x00, x01, x10, x11, x20, x21, x30, x31, x40, x41, x50, x51;
        if (acc) {
            int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc;
            x00 = FloatVector.fromArray(SP, c, c0); x01 = FloatVector.fromArray(SP, c, c0 + L);
            x10 = FloatVector.fromArray(SP, c, c1); x11 = FloatVector.fromArray(SP, c, c1 + L);
            x20 = FloatVector.fromArray(SP, c, c2); x21 = FloatVector.fromArray(SP, c, c2 + L);
            x30 = FloatVector.fromArray(SP, c, c3); x31 = FloatVector.fromArray(SP, c, c3 + L);
            x40 = FloatVector.fromArray(SP, c, c4); x41 = FloatVector.fromArray(SP, c, c4 + L);
            x50 = FloatVector.fromArray(SP, c, c5); x51 = FloatVector.fromArray(SP, c, c5 + L);
        } else {
            x00 = x01 = x10 = x11 = x20 = x21 = x30 = x31 = x40 = x41 = x50 = x51 = FloatVector.zero(SP);
        }
        int a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars, a4 = a3 + ars, a5 = a4 + ars;
        for (int p = 0, bp = j; p < k; p++, bp += ldb) {
            FloatVector b0 = FloatVector.fromArray(SP, b, bp), b1 = FloatVector.fromArray(SP, b, bp + L);
            FloatVector av = FloatVector.broadcast(SP, a[a0 + p]);
            x00 = av.fma(b0, x00); x01 = av.fma(b1, x01);
            av = FloatVector.broadcast(SP, a[a1 + p]);
            x10 = av.fma(b0, x10); x11 = av.fma(b1, x11);
            av = FloatVector.broadcast(SP, a[a2 + p]);
            x20 = av.fma(b0, x20); x21 = av.fma(b1, x21);
            av = FloatVector.broadcast(SP, a[a3 + p]);
            x30 = av.fma(b0, x30); x31 = av.fma(b1, x31);
            av = FloatVector.broadcast(SP, a[a4 + p]);
            x40 = av.fma(b0, x40); x41 = av.fma(b1, x41);
            av = FloatVector.broadcast(SP, a[a5 + p]);
            x50 = av.fma(b0, x50); x51 = av.fma(b1, x51);
        }
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc;
        x00.intoArray(c, c0); x01.intoArray(c, c0 + L);
        x10.intoArray(c, c1); x11.intoArray(c, c1 + L);
        x20.intoArray(c, c2); x21.intoArray(c, c2 + L);
        x30.intoArray(c, c3); x31.intoArray(c, c3 + L);
        x40.intoArray(c, c4); x41.intoArray(c, c4 + L);
        x50.intoArray(c, c5); x51.intoArray(c, c5 + L);
    }


    /** Two rows x 1 vector (the column remainder of the 6-row tile's last two rows). */
    private static void kernel4x1Rows2(float[] c, int ldc, float[] a, int a0, int ars, int acs, float[] b, int ldb, int k,
                                       int c0, int j, boolean acc) {
        int c1 = c0 + ldc, a1 = a0 + ars;
        FloatVector x0 = acc ? FloatVector.fromArray(SP, c, c0) : FloatVector.zero(SP);
        FloatVector x1 = acc ? FloatVector.fromArray(SP, c, c1) : FloatVector.zero(SP);
        for (int p = 0; p < k; p++) {
            FloatVector bv = FloatVector.fromArray(SP, b, p * ldb + j);
            int ao = p * acs;
            x0 = FloatVector.broadcast(SP, a[a0 + ao]).fma(bv, x0);
            x1 = FloatVector.broadcast(SP, a[a1 + ao]).fma(bv, x1);
        }
        x0.intoArray(c, c0);
        x1.intoArray(c, c1);
    }

    /** 4 rows x 2 vectors, for rows of a next to each other (ars = 1): the broadcasts share one index. */
    private static void kernel4x2U(float[] c, int ldc, float[] a, int a0, int acs, float[] b, int ldb, int k,
                                   int c0, int j, boolean acc) {
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        FloatVector x00, x01, x10, x11, x20, x21, x30, x31;
        if (acc) {
            x00 = FloatVector.fromArray(SP, c, c0); x01 = FloatVector.fromArray(SP, c, c0 + L);
            x10 = FloatVector.fromArray(SP, c, c1); x11 = FloatVector.fromArray(SP, c, c1 + L);
            x20 = FloatVector.fromArray(SP, c, c2); x21 = FloatVector.fromArray(SP, c, c2 + L);
            x30 = FloatVector.fromArray(SP, c, c3); x31 = FloatVector.fromArray(SP, c, c3 + L);
        } else {
            x00 = x01 = x10 = x11 = x20 = x21 = x30 = x31 = FloatVector.zero(SP);
        }
        for (int p = 0, ap = a0, bp = j; p < k; p++, ap += acs, bp += ldb) {
            FloatVector b0 = FloatVector.fromArray(SP, b, bp), b1 = FloatVector.fromArray(SP, b, bp + L);
            FloatVector av = FloatVector.broadcast(SP, a[ap]);
            x00 = av.fma(b0, x00); x01 = av.fma(b1, x01);
            av = FloatVector.broadcast(SP, a[ap + 1]);
            x10 = av.fma(b0, x10); x11 = av.fma(b1, x11);
            av = FloatVector.broadcast(SP, a[ap + 2]);
            x20 = av.fma(b0, x20); x21 = av.fma(b1, x21);
            av = FloatVector.broadcast(SP, a[ap + 3]);
            x30 = av.fma(b0, x30); x31 = av.fma(b1, x31);
        }
        x00.intoArray(c, c0); x01.intoArray(c, c0 + L);
        x10.intoArray(c, c1); x11.intoArray(c, c1 + L);
        x20.intoArray(c, c2); x21.intoArray(c, c2 + L);
        x30.intoArray(c, c3); x31.intoArray(c, c3 + L);
    }

    /** 4 rows x 2 vectors, for a row of a contiguous along p (acs = 1): p is the loop counter. */
    private static void kernel4x2K(float[] c, int ldc, float[] a, int a0, int ars, float[] b, int ldb, int k,
                                   int c0, int j, boolean acc) {
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        FloatVector x00, x01, x10, x11, x20, x21, x30, x31;
        if (acc) {
            x00 = FloatVector.fromArray(SP, c, c0); x01 = FloatVector.fromArray(SP, c, c0 + L);
            x10 = FloatVector.fromArray(SP, c, c1); x11 = FloatVector.fromArray(SP, c, c1 + L);
            x20 = FloatVector.fromArray(SP, c, c2); x21 = FloatVector.fromArray(SP, c, c2 + L);
            x30 = FloatVector.fromArray(SP, c, c3); x31 = FloatVector.fromArray(SP, c, c3 + L);
        } else {
            x00 = x01 = x10 = x11 = x20 = x21 = x30 = x31 = FloatVector.zero(SP);
        }
        int a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars;
        for (int p = 0, bp = j; p < k; p++, bp += ldb) {
            FloatVector b0 = FloatVector.fromArray(SP, b, bp), b1 = FloatVector.fromArray(SP, b, bp + L);
            FloatVector av = FloatVector.broadcast(SP, a[a0 + p]);
            x00 = av.fma(b0, x00); x01 = av.fma(b1, x01);
            av = FloatVector.broadcast(SP, a[a1 + p]);
            x10 = av.fma(b0, x10); x11 = av.fma(b1, x11);
            av = FloatVector.broadcast(SP, a[a2 + p]);
            x20 = av.fma(b0, x20); x21 = av.fma(b1, x21);
            av = FloatVector.broadcast(SP, a[a3 + p]);
            x30 = av.fma(b0, x30); x31 = av.fma(b1, x31);
        }
        x00.intoArray(c, c0); x01.intoArray(c, c0 + L);
        x10.intoArray(c, c1); x11.intoArray(c, c1 + L);
        x20.intoArray(c, c2); x21.intoArray(c, c2 + L);
        x30.intoArray(c, c3); x31.intoArray(c, c3 + L);
    }

    /**
     * 4 rows x 2 vectors in the layout of a at hand: the 16-register tile where rows of a sit next to each other, and
     * the 4-row remainder of the 6 x 2 tile. One kernel indexing a as a0 + r ars + p acs (two multiplies and a range
     * check per load each step) was 1.03-1.20x slower in the attention forward and backward with -XX:UseAVX=2
     * (alternating in one JVM, 1,024-16,384 tokens, head dims 32-128); the sums run in the same order: same bits.
     */
    private static void kernel4x2(float[] c, int ldc, float[] a, int a0, int ars, int acs, float[] b, int ldb, int k,
                                  int c0, int j, boolean acc) {
        if (ars == 1) kernel4x2U(c, ldc, a, a0, acs, b, ldb, k, c0, j, acc);
        else kernel4x2K(c, ldc, a, a0, ars, b, ldb, k, c0, j, acc);
    }

    private static void kernel4x1(float[] c, int ldc, float[] a, int a0, int ars, int acs, float[] b, int ldb, int k,
                                  int c0, int j, boolean acc) {
        int c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        FloatVector x0, x1, x2, x3;
        if (acc) {
            x0 = FloatVector.fromArray(SP, c, c0); x1 = FloatVector.fromArray(SP, c, c1);
            x2 = FloatVector.fromArray(SP, c, c2); x3 = FloatVector.fromArray(SP, c, c3);
        } else {
            x0 = x1 = x2 = x3 = FloatVector.zero(SP);
        }
        int a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars;
        for (int p = 0; p < k; p++) {
            FloatVector bv = FloatVector.fromArray(SP, b, p * ldb + j);
            int ao = p * acs;
            x0 = FloatVector.broadcast(SP, a[a0 + ao]).fma(bv, x0);
            x1 = FloatVector.broadcast(SP, a[a1 + ao]).fma(bv, x1);
            x2 = FloatVector.broadcast(SP, a[a2 + ao]).fma(bv, x2);
            x3 = FloatVector.broadcast(SP, a[a3 + ao]).fma(bv, x3);
        }
        x0.intoArray(c, c0); x1.intoArray(c, c1); x2.intoArray(c, c2); x3.intoArray(c, c3);
    }
}
