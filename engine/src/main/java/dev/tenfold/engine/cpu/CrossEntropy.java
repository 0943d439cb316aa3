package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.Elementwise.F;
import static dev.tenfold.engine.cpu.Elementwise.L;
import static dev.tenfold.engine.cpu.Elementwise.LE;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Chunked cross-entropy from hidden states and the output matrix: logits = hidden · weight^T,
 * loss per token = logsumexp(logits) - logits[target], never materializing T x V.
 *
 * <p>The fast path walks token chunks; within one it makes two passes over vocabulary chunks.
 * Pass 1 computes each chunk's logits and folds them into a running max and sum of exponentials
 * per token (online logsumexp). Pass 2, only when gradients are wanted, turns the logits into
 * d logits = gradScale * (softmax - onehot) and feeds them to two products: dHidden += dlogits ·
 * W_chunk, dWeight_chunk += dlogits^T · hidden. Pass 2 reuses pass 1's logits when a token
 * chunk's logits over the whole vocabulary fit {@link #KEPT_LOGITS} floats (256 tokens of
 * Llama-3's 128,256: 125 MiB), which saves a third of the loss's arithmetic; above that it
 * recomputes them chunk by chunk (never T x V). When they fit, the default chunks are as many
 * tokens as fit and the whole vocabulary ({@link #defaultChunks}): fewer, larger products. With
 * the whole vocabulary in one chunk pass 1 also leaves exp(logit - max) in place, and pass 2 only
 * scales it: one exponential per logit, not two.
 */
final class CrossEntropy {
    private CrossEntropy() {}

    static final int IGNORE = -100;
    static final int TOKEN_CHUNK = 256;
    static final int VOCAB_CHUNK = 4096;
    /** At most this many logits (a token chunk's, all vocabulary chunks) are kept from pass 1 for pass 2. */
    static final long KEPT_LOGITS = 1L << 25;

    /** Whether a step with gradients keeps a token chunk's logits for pass 2 (else recomputes them). */
    static boolean keepsLogits(long tokenChunk, long v) {
        return tokenChunk * v <= KEPT_LOGITS;
    }

    static Backend.LossSum compute(boolean fast, Tensor hidden, Tensor weight, Tensor targets, float gradScale,
                                   Tensor dHidden, Tensor dWeight) {
        int[] d = check(hidden, weight, targets, dHidden, dWeight);
        int[] c = defaultChunks(d[0], d[2], dHidden != null || dWeight != null);
        return fast ? chunked(d, hidden, weight, targets, gradScale, dHidden, dWeight, c[0], c[1], KEPT_LOGITS)
                : reference(d, hidden, weight, targets, gradScale, dHidden, dWeight);
    }

    /**
     * The fast path's token x vocabulary chunks for t tokens and a vocabulary of v. With gradients, when
     * {@link #TOKEN_CHUNK} tokens' logits over the whole vocabulary fit {@link #KEPT_LOGITS}: as many
     * tokens as fit (the same number in each chunk) and the whole vocabulary, so that each token chunk
     * is one product per pass. On 2 cores, 1,024 x 8,192 x 512 products ran at 1.5-1.7x the GEMM rate of
     * 256 x 4,096 x 512 ones (A blocks of 256 rows are too few to amortize B's packing and traffic).
     * Otherwise {@link #TOKEN_CHUNK} x {@link #VOCAB_CHUNK}.
     */
    static int[] defaultChunks(long t, long v, boolean grads) {
        if (grads && v > 0 && keepsLogits(TOKEN_CHUNK, v)) {
            long chunks = Math.max(1, Math.ceilDiv(t, KEPT_LOGITS / v));
            return new int[] {(int) Math.max(1, Math.ceilDiv(t, chunks)), (int) v};
        }
        return new int[] {TOKEN_CHUNK, VOCAB_CHUNK};
    }

    /**
     * As above with explicit chunk sizes and kept-logits limit (the fast path only), so tests can make V
     * span several chunks and take both pass 2s.
     */
    static Backend.LossSum compute(boolean fast, Tensor hidden, Tensor weight, Tensor targets, float gradScale,
                                   Tensor dHidden, Tensor dWeight, int tokenChunk, int vocabChunk, long keptLogits) {
        int[] d = check(hidden, weight, targets, dHidden, dWeight);
        if (tokenChunk < 1 || vocabChunk < 1) {
            throw new IllegalArgumentException("crossEntropy: chunk sizes must be positive, got " + tokenChunk + " x " + vocabChunk);
        }
        return fast ? chunked(d, hidden, weight, targets, gradScale, dHidden, dWeight, tokenChunk, vocabChunk, keptLogits)
                : reference(d, hidden, weight, targets, gradScale, dHidden, dWeight);
    }

    /** The shared checks, then the targets' range (read here: the host holds them); returns {T, H, V}. Every target must be -100 or in [0, V). */
    static int[] check(Tensor hidden, Tensor weight, Tensor targets, Tensor dHidden, Tensor dWeight) {
        String op = "crossEntropy";
        int[] d = OpChecks.crossEntropy(hidden, weight, targets, dHidden, dWeight);
        long t = d[0], v = d[2];
        MemorySegment ts = targets.data();
        for (long i = 0; i < t; i++) {
            int y = ts.getAtIndex(Tensor.I32, i);
            if (y != IGNORE && (y < 0 || y >= v)) {
                throw Check.fail(op, "target " + y + " at position " + i + " is out of range [0, " + v
                        + ") and not the ignore index " + IGNORE, hidden, weight, targets);
            }
        }
        return d;
    }

    /** One token at a time, its V logits in double: obviously correct, O(V) memory. */
    private static Backend.LossSum reference(int[] d, Tensor hidden, Tensor weight, Tensor targets, float gradScale,
                                             Tensor dHidden, Tensor dWeight) {
        int t = d[0], h = d[1], v = d[2];
        double[] logits = new double[v], dh = new double[h];
        double loss = 0;
        long count = 0;
        for (int i = 0; i < t; i++) {
            int y = targets.getInt(i);
            if (y == IGNORE) {
                if (dHidden != null) for (int k = 0; k < h; k++) dHidden.setFloat((long) i * h + k, 0f);
                continue;
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < v; c++) {
                double s = 0;
                for (int k = 0; k < h; k++) s += (double) hidden.getFloat((long) i * h + k) * weight.getFloat((long) c * h + k);
                logits[c] = s;
                max = Math.max(max, s);
            }
            double sum = 0;
            for (int c = 0; c < v; c++) sum += Math.exp(logits[c] - max);
            double lse = max + Math.log(sum);
            loss += lse - logits[y];
            count++;
            if (dHidden == null && dWeight == null) continue;
            Arrays.fill(dh, 0);
            for (int c = 0; c < v; c++) {
                double g = gradScale * (Math.exp(logits[c] - lse) - (c == y ? 1 : 0));
                for (int k = 0; k < h; k++) {
                    dh[k] += g * weight.getFloat((long) c * h + k);
                    if (dWeight != null) {
                        long o = (long) c * h + k;
                        dWeight.setFloat(o, (float) (dWeight.getFloat(o) + g * hidden.getFloat((long) i * h + k)));
                    }
                }
            }
            if (dHidden != null) for (int k = 0; k < h; k++) dHidden.setFloat((long) i * h + k, (float) dh[k]);
        }
        return new Backend.LossSum(loss, count);
    }

    private static Backend.LossSum chunked(int[] d, Tensor hidden, Tensor weight, Tensor targets, float gradScale,
                                           Tensor dHidden, Tensor dWeight, int tokenChunk, int vocabChunk, long keptLogits) {
        int t = d[0], v = d[2];
        int tc = Math.max(1, Math.min(tokenChunk, t)), vc = Math.max(1, Math.min(vocabChunk, v));
        boolean grads = dHidden != null || dWeight != null;
        int[] y = targets.toIntArray();
        // dHidden is a sum over vocabulary chunks: start it at zero (this also covers V = 0).
        if (dHidden != null) dHidden.fill(0f);
        double[] runMax = new double[tc], runSum = new double[tc];
        float[] lse = new float[tc], targetLogit = new float[tc];
        double loss = 0;
        long count = 0;
        boolean keep = grads && (long) tc * v <= keptLogits;
        // kept, and the whole vocabulary in one chunk: pass 1 leaves exp(logit - max) in place of each logit, so that
        // pass 2 only scales it (one exp per logit instead of two)
        boolean keepExp = keep && vc == v;
        // with keep, vocabulary chunk v0 of a token chunk of nt tokens lies at nt * v0: [nt, nv] row-major
        try (Tensor scratch = Tensor.allocate(DType.F32, keep ? (long) tc * v : (long) tc * vc)) {
            for (int t0 = 0; t0 < t; t0 += tc) {
                int nt = Math.min(tc, t - t0), tFirst = t0;
                Tensor hid = hidden.slice(t0, t0 + nt);
                Arrays.fill(runMax, Double.NEGATIVE_INFINITY);
                Arrays.fill(runSum, 0);
                // Pass 1: online logsumexp over vocabulary chunks, and each token's target logit.
                for (int v0 = 0; v0 < v; v0 += vc) {
                    int nv = Math.min(vc, v - v0), vFirst = v0;
                    Tensor logits = chunkLogits(scratch, keep ? (long) nt * v0 : 0, hid, weight, v0, nt, nv);
                    MemorySegment ls = logits.data();
                    Parallel.forRange(nt, RmsNorm.grain(nv), (r0, r1) -> {
                        for (int r = r0; r < r1; r++) {
                            int target = y[tFirst + r];
                            if (target == IGNORE) continue;
                            long base = (long) r * nv;
                            float m = rowMax(ls, base, nv);
                            if (keepExp) {
                                targetLogit[r] = ls.getAtIndex(Tensor.F32, base + target);
                                runSum[r] = rowExpInPlace(ls, base, nv, m);
                                runMax[r] = m;
                                continue;
                            }
                            double newMax = Math.max(runMax[r], m);
                            runSum[r] = runSum[r] * Math.exp(runMax[r] - newMax) + rowSumExp(ls, base, nv, (float) newMax);
                            runMax[r] = newMax;
                            if (target >= vFirst && target < vFirst + nv) targetLogit[r] = ls.getAtIndex(Tensor.F32, base + target - vFirst);
                        }
                    });
                }
                for (int r = 0; r < nt; r++) {
                    if (y[t0 + r] == IGNORE) continue;
                    double l = runMax[r] + Math.log(runSum[r]);
                    lse[r] = (float) l;
                    loss += l - targetLogit[r];
                    count++;
                }
                if (!grads) continue;
                // Pass 2: pass 1's logits (or the same logits recomputed), turned into d logits, back-propagated.
                for (int v0 = 0; v0 < v; v0 += vc) {
                    int nv = Math.min(vc, v - v0), vFirst = v0;
                    Tensor logits = keep ? Tensor.wrap(scratch.data().asSlice(4L * nt * v0, 4L * nt * nv), DType.F32, nt, nv)
                            : chunkLogits(scratch, 0, hid, weight, v0, nt, nv);
                    MemorySegment ls = logits.data();
                    Parallel.forRange(nt, RmsNorm.grain(nv), (r0, r1) -> {
                        for (int r = r0; r < r1; r++) {
                            if (keepExp) expToGradient(ls, (long) r * nv, nv, y[tFirst + r], (float) (gradScale / runSum[r]), gradScale);
                            else toGradient(ls, (long) r * nv, nv, y[tFirst + r], vFirst, lse[r], gradScale);
                        }
                    });
                    Tensor w = weight.slice(v0, v0 + nv);
                    if (dHidden != null) Matmul.matmul(true, logits, false, w, false, dHidden.slice(t0, t0 + nt), true);
                    if (dWeight != null) Matmul.matmul(true, logits, true, hid, false, dWeight.slice(v0, v0 + nv), true);
                }
            }
        }
        return new Backend.LossSum(loss, count);
    }

    /** logits[nt, nv] = hid · weight[v0 : v0+nv]^T, into the scratch buffer from element at. */
    private static Tensor chunkLogits(Tensor scratch, long at, Tensor hid, Tensor weight, int v0, int nt, int nv) {
        Tensor logits = Tensor.wrap(scratch.data().asSlice(4 * at, 4L * nt * nv), DType.F32, nt, nv);
        Matmul.matmul(true, hid, false, weight.slice(v0, v0 + nv), true, logits, false);
        return logits;
    }

    private static float rowMax(MemorySegment s, long base, int n) {
        FloatVector acc = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int j = 0;
        for (int upper = F.loopBound(n); j < upper; j += L) acc = acc.max(FloatVector.fromMemorySegment(F, s, 4 * (base + j), LE));
        float m = acc.reduceLanes(VectorOperators.MAX);
        for (; j < n; j++) m = Math.max(m, s.getAtIndex(Tensor.F32, base + j));
        return m;
    }

    /** sum of exp(x - max) over a row segment. */
    private static double rowSumExp(MemorySegment s, long base, int n, float max) {
        FloatVector acc = FloatVector.zero(F);
        int j = 0;
        for (int upper = F.loopBound(n); j < upper; j += L) {
            acc = acc.add(VectorMath.exp(FloatVector.fromMemorySegment(F, s, 4 * (base + j), LE).sub(max)));
        }
        double sum = VectorMath.sumDouble(acc);
        for (; j < n; j++) sum += Math.exp(s.getAtIndex(Tensor.F32, base + j) - max);
        return sum;
    }

    /** In place: a row segment -> exp(x - max); returns their sum. */
    private static double rowExpInPlace(MemorySegment s, long base, int n, float max) {
        FloatVector acc = FloatVector.zero(F);
        int j = 0;
        for (int upper = F.loopBound(n); j < upper; j += L) {
            long off = 4 * (base + j);
            FloatVector e = VectorMath.exp(FloatVector.fromMemorySegment(F, s, off, LE).sub(max));
            e.intoMemorySegment(s, off, LE);
            acc = acc.add(e);
        }
        double sum = VectorMath.sumDouble(acc);
        for (; j < n; j++) { // the sum as rowSumExp's, so that the loss has the same bits with gradients or without
            double e = Math.exp(s.getAtIndex(Tensor.F32, base + j) - max);
            s.setAtIndex(Tensor.F32, base + j, (float) e);
            sum += e;
        }
        return sum;
    }

    /**
     * In place: a whole row of exp(logit - max) (from {@link #rowExpInPlace}) -> gradScale * (softmax - onehot(target)),
     * softmax = exp(logit - max) * (1 / sum) with scaleOverSum = gradScale / sum; all zero for an ignored token.
     */
    private static void expToGradient(MemorySegment s, long base, int n, int target, float scaleOverSum, float gradScale) {
        if (target == IGNORE) {
            s.asSlice(4 * base, 4L * n).fill((byte) 0);
            return;
        }
        int j = 0;
        for (int upper = F.loopBound(n); j < upper; j += L) {
            long off = 4 * (base + j);
            FloatVector.fromMemorySegment(F, s, off, LE).mul(scaleOverSum).intoMemorySegment(s, off, LE);
        }
        for (; j < n; j++) s.setAtIndex(Tensor.F32, base + j, s.getAtIndex(Tensor.F32, base + j) * scaleOverSum);
        long at = base + target;
        s.setAtIndex(Tensor.F32, at, s.getAtIndex(Tensor.F32, at) - gradScale);
    }

    /** In place: logits row -> gradScale * (exp(logit - lse) - onehot(target)); all zero for an ignored token. */
    private static void toGradient(MemorySegment s, long base, int n, int target, int v0, float lse, float gradScale) {
        if (target == IGNORE) {
            s.asSlice(4 * base, 4L * n).fill((byte) 0);
            return;
        }
        int j = 0;
        for (int upper = F.loopBound(n); j < upper; j += L) {
            long off = 4 * (base + j);
            VectorMath.exp(FloatVector.fromMemorySegment(F, s, off, LE).sub(lse)).mul(gradScale).intoMemorySegment(s, off, LE);
        }
        for (; j < n; j++) s.setAtIndex(Tensor.F32, base + j, (float) Math.exp(s.getAtIndex(Tensor.F32, base + j) - lse) * gradScale);
        if (target >= v0 && target < v0 + n) {
            long at = base + target - v0;
            s.setAtIndex(Tensor.F32, at, s.getAtIndex(Tensor.F32, at) - gradScale);
        }
    }
}
