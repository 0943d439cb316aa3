package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Brings the fast CPU kernels to compiled code before a run's first step. The Vector API is fast
 * only once C2 has compiled the method that holds the vector code: until then each vector op is a
 * Java fallback that allocates, 50 to 100 times slower than the compiled loop, and a training step
 * calls each kernel's outer loop only a few times, so the JIT took 10 to 15 steps to get there
 * (issue 16: the first step 16 times the steady one). Here every op the model uses runs on small
 * tensors, a round at a time, until a round costs no more than the best one so far (the JIT is
 * done with them) or the time budget is spent. The small shapes still cover each kernel's full
 * tiles and its edges, so the code compiled here is the code the real shapes run.
 *
 * <p>Every other round reads the frozen weights from a read-only mapped file, as a model loaded from
 * safetensors does, and the others from allocated memory, as activations and adapters are: the JIT
 * specializes memory accesses on the segment's class it has seen, and a kernel compiled on allocated
 * segments alone was thrown away and recompiled in the first real step (class-check deoptimizations
 * in MemorySegment.copy, the vector loads, pack, RmsNorm: the first step about 3 times the steady one
 * even after a warm-up that had run to an idle JIT).
 */
final class CpuWarmup {
    private CpuWarmup() {}

    /** What the warm-up did: rounds run, seconds spent, and the first and the last round's milliseconds. */
    record Report(int rounds, double seconds, double firstRoundMs, double lastRoundMs) {}

    /**
     * Runs rounds until the JIT is mostly idle (it compiled for less than {@link #BUSY_SHARE} of the last
     * {@link #WINDOW_SECONDS}: the kernels the rounds run are compiled as far as they go, what it still
     * does is small) or budgetSeconds pass. Where the JVM does not report compilation time, until the
     * rounds' time settles.
     */
    static Report run(CpuBackend backend, double budgetSeconds) {
        long start = System.nanoTime();
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        boolean jitTimed = jit != null && jit.isCompilationTimeMonitoringSupported();
        try (Arena arena = Arena.ofShared()) {
            Workload w = new Workload(arena);
            double best = Double.MAX_VALUE, first = 0, last = 0;
            int rounds = 0, settled = 0;
            long windowStart = start, windowJit = jitTimed ? jit.getTotalCompilationTime() : 0;
            while (true) {
                long t0 = System.nanoTime();
                w.round(backend, rounds);
                long t1 = System.nanoTime();
                last = (t1 - t0) / 1e6;
                if (rounds++ == 0) first = last;
                settled = last <= 1.25 * best ? settled + 1 : 0;
                best = Math.min(best, last);
                double elapsed = (t1 - start) / 1e9, window = (t1 - windowStart) / 1e9;
                boolean done = false;
                if (!jitTimed) {
                    done = settled >= 10 && rounds >= MIN_ROUNDS;
                } else if (window >= WINDOW_SECONDS) {
                    long now = jit.getTotalCompilationTime();
                    double busy = (now - windowJit) / 1e3 / window;
                    if (DEBUG) System.err.printf(Locale.ROOT, "warm-up: round %d, %.1f ms, JIT busy %.0f%%%n", rounds, last, 100 * busy);
                    done = busy < BUSY_SHARE && rounds >= MIN_ROUNDS;
                    windowStart = t1;
                    windowJit = now;
                }
                if (done || elapsed >= budgetSeconds) return new Report(rounds, elapsed, first, last);
            }
        }
    }

    private static final boolean DEBUG = Boolean.getBoolean("tenfold.warmupDebug");
    /** The JIT counts as done when it compiled for less than this share of the last window's wall time. */
    private static final double BUSY_SHARE = 0.25;
    private static final double WINDOW_SECONDS = 0.5;
    /** Enough rounds for every kernel's outer loop to reach C2's invocation threshold. */
    private static final int MIN_ROUNDS = 40;

    /** Small tensors for every op a training or evaluation step runs, allocated once. */
    static final class Workload {
        // Sizes: a few full micro-kernel tiles plus ragged edges in each dimension; T spans several
        // attention key tiles, so that fully visible tiles and the masked diagonal ones both run.
        static final int T = 208, HIDDEN = 96, KV = 32, HEAD = 32, HEADS = 4, KV_HEADS = 1, MLP = 160, RANK = 8, VOCAB = 224;
        final Tensor x, xb, dNorm, dTable, dAct2, dx2, rstd, wt, y, yKv, yBf16, dy, dx, loraA, loraB, loraH, dLoraA, dLoraB;
        /** The frozen weights in allocated memory, and the same in a read-only mapped file (or allocated again where mapping failed). */
        final Weights allocated, mapped;
        final Tensor q, k, v, att, lse, q1, att1, lse1, k2, v2, dk2, dv2, dAtt, dq, dk, dv, invFreq, positions, gate, up, act, dGate, dUp, dAct;
        final Tensor ids, targets, dVocabW, p, g, m, s, nf4Packed, nf4Absmax, nf4Out, soft, dSoft;
        final Backend.AdamW hp = new Backend.AdamW(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f);
        // Past the blocking and chunking limits: a product deeper than one K-block of the GEMM and wider
        // than one chunk of its B panels (and a BF16 one), and a loss over more tokens and a larger
        // vocabulary than one chunk of each, so the loops over blocks and chunks are compiled too (the real
        // shapes have them); small otherwise, to stay cheap.
        static final int DEEP = 1100, DEEP_N = 300, LOSS_T = 300, LOSS_H = 16, LOSS_V = 4200;
        // LoRA's dA (rank x hidden = h^T x) over enough tokens to run in parallel and split along them, as a real
        // step's does (untaken here, the JIT made those branches traps that the first step hit)
        static final int LORA_T = 1400;
        final Tensor deepX, deepY, lossX, lossDx, lossTargets, loraDeepH, loraDeepX, loraDeepDA;

        /** What a model's layers read and never write: its weights, norms, embedding table and output matrix. */
        record Weights(Tensor w, Tensor wBf16, Tensor wKv, Tensor norm, Tensor table, Tensor vocabW, Tensor deepW, Tensor deepWBf16,
                       Tensor lossW) {
            Tensor[] all() { return new Tensor[] {w, wBf16, wKv, norm, table, vocabW, deepW, deepWBf16, lossW}; }
        }

        Workload(Arena arena) {
            SplittableRandom rng = new SplittableRandom(16);
            x = random(arena, rng, T, HIDDEN);
            xb = cast(arena, x, DType.BF16);
            Tensor norm = random(arena, rng, HIDDEN);
            dNorm = Tensor.allocate(arena, DType.F32, HIDDEN);
            rstd = Tensor.allocate(arena, DType.F32, T);
            Tensor w = random(arena, rng, HIDDEN, HIDDEN);
            wt = random(arena, rng, HIDDEN, HIDDEN);
            Tensor wBf16 = cast(arena, random(arena, rng, HIDDEN, HIDDEN), DType.BF16);
            Tensor wKv = random(arena, rng, KV, HIDDEN);
            y = Tensor.allocate(arena, DType.F32, T, HIDDEN);
            yKv = Tensor.allocate(arena, DType.F32, T, KV);
            yBf16 = Tensor.allocate(arena, DType.BF16, T, HIDDEN);
            dy = random(arena, rng, T, HIDDEN);
            dx = Tensor.allocate(arena, DType.F32, T, HIDDEN);
            loraA = random(arena, rng, RANK, HIDDEN);
            loraB = random(arena, rng, HIDDEN, RANK);
            loraH = Tensor.allocate(arena, DType.F32, T, RANK);
            dLoraA = Tensor.allocate(arena, DType.F32, RANK, HIDDEN);
            dLoraB = Tensor.allocate(arena, DType.F32, HIDDEN, RANK);
            q = random(arena, rng, 1, T, HEADS, HEAD);
            k = random(arena, rng, 1, T, KV_HEADS, HEAD);
            v = random(arena, rng, 1, T, KV_HEADS, HEAD);
            att = Tensor.allocate(arena, DType.F32, 1, T, HEADS, HEAD);
            lse = Tensor.allocate(arena, DType.F32, 1, HEADS, T);
            q1 = random(arena, rng, 1, 1, HEADS, HEAD); // one decoded token against the keys
            att1 = Tensor.allocate(arena, DType.F32, 1, 1, HEADS, HEAD);
            lse1 = Tensor.allocate(arena, DType.F32, 1, HEADS, 1);
            // two kv heads: attention then packs its rows once per call (Attention.KeyRows, QueryTiles), which one does not
            k2 = random(arena, rng, 1, T, 2, HEAD);
            v2 = random(arena, rng, 1, T, 2, HEAD);
            dk2 = Tensor.allocate(arena, DType.F32, 1, T, 2, HEAD);
            dv2 = Tensor.allocate(arena, DType.F32, 1, T, 2, HEAD);
            dAtt = random(arena, rng, 1, T, HEADS, HEAD);
            dq = Tensor.allocate(arena, DType.F32, 1, T, HEADS, HEAD);
            dk = Tensor.allocate(arena, DType.F32, 1, T, KV_HEADS, HEAD);
            dv = Tensor.allocate(arena, DType.F32, 1, T, KV_HEADS, HEAD);
            invFreq = Tensor.allocate(arena, DType.F32, HEAD / 2);
            for (int i = 0; i < HEAD / 2; i++) invFreq.setFloat(i, (float) Math.pow(500000, -2.0 * i / HEAD));
            positions = Tensor.allocate(arena, DType.I32, T);
            for (int i = 0; i < T; i++) positions.setInt(i, i);
            gate = random(arena, rng, T, MLP);
            up = random(arena, rng, T, MLP);
            act = Tensor.allocate(arena, DType.F32, T, MLP);
            dAct = random(arena, rng, T, MLP);
            dGate = Tensor.allocate(arena, DType.F32, T, MLP);
            dUp = Tensor.allocate(arena, DType.F32, T, MLP);
            Tensor table = random(arena, rng, VOCAB, HIDDEN);
            dTable = Tensor.allocate(arena, DType.F32, VOCAB, HIDDEN);
            ids = Tensor.allocate(arena, DType.I32, T);
            targets = Tensor.allocate(arena, DType.I32, T);
            for (int i = 0; i < T; i++) {
                ids.setInt(i, rng.nextInt(VOCAB));
                targets.setInt(i, i % 7 == 0 ? -100 : rng.nextInt(VOCAB));
            }
            Tensor vocabW = random(arena, rng, VOCAB, HIDDEN);
            dVocabW = Tensor.allocate(arena, DType.F32, VOCAB, HIDDEN);
            p = random(arena, rng, HIDDEN * HIDDEN);
            g = random(arena, rng, HIDDEN * HIDDEN);
            m = Tensor.allocate(arena, DType.F32, HIDDEN * HIDDEN);
            s = Tensor.allocate(arena, DType.F32, HIDDEN * HIDDEN);
            int n = HIDDEN * HIDDEN;
            nf4Packed = Tensor.allocate(arena, DType.U8, n / 2);
            for (int i = 0; i < n / 2; i++) nf4Packed.data().set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) rng.nextInt(256));
            nf4Absmax = random(arena, rng, n / 64);
            nf4Out = Tensor.allocate(arena, DType.F32, HIDDEN, HIDDEN);
            deepX = random(arena, rng, 80, DEEP); // more rows than the skinny path takes: the blocked GEMM
            Tensor deepW = random(arena, rng, DEEP_N, DEEP);
            Tensor deepWBf16 = cast(arena, deepW, DType.BF16);
            deepY = Tensor.allocate(arena, DType.F32, 80, DEEP_N);
            loraDeepH = random(arena, rng, LORA_T, RANK);
            loraDeepX = random(arena, rng, LORA_T, HIDDEN);
            loraDeepDA = Tensor.allocate(arena, DType.F32, RANK, HIDDEN);
            lossX = random(arena, rng, LOSS_T, LOSS_H);
            Tensor lossW = random(arena, rng, LOSS_V, LOSS_H);
            lossDx = Tensor.allocate(arena, DType.F32, LOSS_T, LOSS_H);
            lossTargets = Tensor.allocate(arena, DType.I32, LOSS_T);
            for (int i = 0; i < LOSS_T; i++) lossTargets.setInt(i, rng.nextInt(LOSS_V));
            soft = random(arena, rng, HEADS * 4, T);
            dSoft = Tensor.allocate(arena, DType.F32, HEADS * 4, T);
            dAct2 = random(arena, rng, HEADS * 4, T);
            dx2 = Tensor.allocate(arena, DType.F32, HEADS * 4, T);
            allocated = new Weights(w, wBf16, wKv, norm, table, vocabW, deepW, deepWBf16, lossW);
            mapped = mappedCopy(arena, allocated);
        }

        /**
         * The weights copied into a temporary file that is mapped read-only into arena and deleted (the mapping
         * outlives it); where the file cannot be written or mapped, allocated copies (the warm-up then only
         * covers allocated segments, as before).
         */
        static Weights mappedCopy(Arena arena, Weights src) {
            Tensor[] ts = src.all();
            long[] at = new long[ts.length];
            long size = 0;
            for (int i = 0; i < ts.length; i++) {
                at[i] = size;
                size += (ts[i].data().byteSize() + 63) & ~63L; // 64-byte aligned, as allocated tensors are
            }
            Tensor[] out = new Tensor[ts.length];
            Path file = null;
            try {
                file = Files.createTempFile("tenfold-warmup", ".bin");
                MemorySegment seg;
                try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                    for (int i = 0; i < ts.length; i++) {
                        var buf = ts[i].data().asByteBuffer();
                        for (long pos = at[i]; buf.hasRemaining(); ) pos += ch.write(buf, pos);
                    }
                    seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
                }
                for (int i = 0; i < ts.length; i++) {
                    out[i] = Tensor.wrap(seg.asSlice(at[i], ts[i].data().byteSize()), ts[i].dtype(), ts[i].shape());
                }
            } catch (IOException | RuntimeException e) {
                for (int i = 0; i < ts.length; i++) {
                    out[i] = Tensor.allocate(arena, ts[i].dtype(), ts[i].shape());
                    MemorySegment.copy(ts[i].data(), 0, out[i].data(), 0, ts[i].data().byteSize());
                }
            } finally {
                if (file != null) {
                    try {
                        Files.deleteIfExists(file);
                    } catch (IOException e) {
                        file.toFile().deleteOnExit();
                    }
                }
            }
            return new Weights(out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8]);
        }

        static Tensor random(Arena arena, SplittableRandom rng, long... shape) {
            Tensor t = Tensor.allocate(arena, DType.F32, shape);
            for (long i = 0; i < t.numel(); i++) t.setFloat(i, (float) (rng.nextDouble() - 0.5));
            return t;
        }

        static Tensor cast(Arena arena, Tensor src, DType dtype) {
            Tensor t = Tensor.allocate(arena, dtype, src.shape());
            CpuBackend.reference().cast(src, t);
            return t;
        }

        /**
         * One pass over the ops of a decoder layer's forward and backward, LoRA, the loss and AdamW; odd rounds
         * read the weights from the mapped copy.
         */
        void round(CpuBackend b, int index) {
            Weights wts = index % 2 == 0 ? allocated : mapped;
            Tensor w = wts.w(), wBf16 = wts.wBf16(), wKv = wts.wKv(), norm = wts.norm(), table = wts.table(), vocabW = wts.vocabW();
            Tensor deepW = wts.deepW(), deepWBf16 = wts.deepWBf16(), lossW = wts.lossW();
            b.embedding(table, ids, x);
            b.embeddingBackward(dy, ids, dTable);
            b.rmsnorm(x, norm, 1e-5f, y, rstd);
            b.rmsnormBackward(dy, x, norm, rstd, dx, dNorm);
            // The products a linear layer runs: forward, input gradient, weight gradient, LoRA's rank-r pair.
            b.matmul(x, false, w, true, y, false);
            b.matmul(x, false, wKv, true, yKv, false);
            b.matmul(dy, false, w, false, dx, false);
            b.matmul(dy, false, wt, false, dx, true);
            b.matmul(dy, true, x, false, wt, false);
            b.matmul(x, false, wBf16, true, y, false);
            b.matmul(dy, false, wBf16, false, dx, true);
            b.matmul(x, false, wBf16, true, yBf16, false);
            b.matmul(x, false, loraA, true, loraH, false);
            b.matmul(loraH, false, loraB, true, y, true);
            b.matmul(dy, false, loraB, false, loraH, false);
            b.matmul(loraH, true, x, false, dLoraA, false);
            b.matmul(dy, true, loraH, false, dLoraB, false);
            b.matmul(loraH, false, loraA, false, dx, true);
            b.add(x, dy, y);
            b.mul(x, dy, y);
            b.scale(dy, 0.5f, dx);
            b.cast(x, xb);
            b.cast(xb, y);
            b.rope(q, invFreq, positions, 1f, q);
            b.ropeBackward(dq, invFreq, positions, 1f, dq);
            b.attention(q, k, v, 0.17f, att, lse);
            b.attentionBackward(dAtt, q, k, v, att, lse, 0.17f, dq, dk, dv);
            b.attention(q1, k, v, 0.17f, att1, lse1);
            b.attention(q, k2, v2, 0.17f, att, lse);
            b.attentionBackward(dAtt, q, k2, v2, att, lse, 0.17f, dq, dk2, dv2);
            Attention.exerciseKernels();
            b.swiglu(gate, up, act);
            b.swigluBackward(dAct, gate, up, dGate, dUp);
            b.softmax(soft, dSoft);
            b.softmaxBackward(dAct2, dSoft, dx2);
            b.crossEntropy(x, vocabW, targets, 1f / T, dx, dVocabW);
            b.crossEntropy(lossX, lossW, lossTargets, 1f / LOSS_T, lossDx, null);
            b.matmul(deepX, false, deepW, true, deepY, false);
            b.matmul(deepX, false, deepWBf16, true, deepY, false);
            b.matmul(loraDeepH, true, loraDeepX, false, loraDeepDA, false);
            b.adamw(p, g, m, s, hp, 1);
            b.dequantizeNf4(nf4Packed, nf4Absmax, null, null, 0f, nf4Out);
            b.sum(g);
            b.max(g);
            b.sumOfSquares(g);
            FiniteScan.firstNonFinite(p);
        }
    }
}
