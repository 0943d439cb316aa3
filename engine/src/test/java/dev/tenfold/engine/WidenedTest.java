package dev.tenfold.engine;

import static dev.tenfold.engine.testing.TestTensors.assertClose;
import static dev.tenfold.engine.testing.TestTensors.poisoned;
import static dev.tenfold.engine.testing.TestTensors.random;
import static dev.tenfold.engine.testing.TestTensors.randomInts;
import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * BF16 activations: every op computed through {@link Widened} gives the F32 op's result on the widened inputs,
 * rounded once to BF16 — bit for bit where rows are independent, to the last bits where a weight gradient sums
 * over chunks — however small the chunks, and never holds more than a chunk in temporaries.
 */
class WidenedTest {
    private static final Backend CPU = CpuBackend.fast();
    private final List<Long> temporaries = new ArrayList<>();
    /** Chunks of 48 elements: every op below runs in several. */
    private final Widened small = new Widened(CPU, (dtype, shape) -> {
        Tensor t = Tensor.allocate(dtype, shape);
        temporaries.add(t.numel());
        return t;
    }, 48);

    /** A BF16 copy of x (rounded). */
    private static Tensor bf16(Tensor x) {
        Tensor t = Tensor.allocate(DType.BF16, x.shape());
        CPU.cast(x, t);
        return t;
    }

    /** The BF16 values as F32 (exact). */
    private static Tensor f32(Tensor x) {
        Tensor t = Tensor.allocate(DType.F32, x.shape());
        CPU.cast(x, t);
        return t;
    }

    /** Fails unless bf16 holds exactly round(f32). */
    private static void assertRounded(String what, Tensor f32, Tensor bf16) {
        try (Tensor want = bf16(f32)) {
            assertArrayEquals(want.toFloatArray(), bf16.toFloatArray(), what);
        }
    }

    @Test
    void rowwiseOpsAreTheF32OpRoundedOnce() {
        SplittableRandom rng = new SplittableRandom(1);
        try (Tensor a = bf16(random(rng, 5, 37)); Tensor b = bf16(random(rng, 5, 37)); Tensor af = f32(a); Tensor bf = f32(b);
             Tensor sum = poisoned(DType.BF16, 5, 37); Tensor want = Tensor.allocate(DType.F32, 5, 37)) {
            small.add(a, b, sum);
            CPU.add(af, bf, want);
            assertRounded("add", want, sum);
            small.mul(a, bf, sum); // mixed: a BF16, b F32
            CPU.mul(af, bf, want);
            assertRounded("mul", want, sum);
            small.add(a, b, a); // in place
            CPU.add(af, bf, want);
            assertRounded("add in place", want, a);
        }
        try (Tensor x = bf16(random(rng, 7, 40)); Tensor xf = f32(x); Tensor w = random(rng, 40); Tensor out = poisoned(DType.BF16, 7, 40);
             Tensor rstd = poisoned(7); Tensor want = Tensor.allocate(DType.F32, 7, 40); Tensor wantRstd = Tensor.allocate(DType.F32, 7)) {
            small.rmsnorm(x, w, 1e-5f, out, rstd);
            CPU.rmsnorm(xf, w, 1e-5f, want, wantRstd);
            assertRounded("rmsnorm", want, out);
            assertArrayEquals(wantRstd.toFloatArray(), rstd.toFloatArray(), "rmsnorm rstd");
        }
        try (Tensor q = bf16(random(rng, 6, 2, 16)); Tensor qf = f32(q); Tensor inv = Tensor.of(new float[] {1, 0.5f, 0.25f, 0.1f, 0.05f, 0.01f, 0.005f, 0.001f});
             Tensor pos = Tensor.ofInts(new int[] {0, 3, 9, 4, 100, 7}); Tensor want = Tensor.allocate(DType.F32, 6, 2, 16);
             Tensor back = Tensor.allocate(DType.F32, 6, 2, 16); Tensor back16 = poisoned(DType.BF16, 6, 2, 16)) {
            CPU.rope(qf, inv, pos, 1.2f, want);
            CPU.ropeBackward(qf, inv, pos, 1.2f, back);
            small.rope(q, inv, pos, 1.2f, back16, true);
            assertRounded("ropeBackward", back, back16);
            small.rope(q, inv, pos, 1.2f, q, false); // in place, as the model rotates q and k
            assertRounded("rope in place", want, q);
        }
        try (Tensor g = bf16(random(rng, 3, 50)); Tensor u = bf16(random(rng, 3, 50)); Tensor d = bf16(random(rng, 3, 50));
             Tensor gf = f32(g); Tensor uf = f32(u); Tensor df = f32(d); Tensor s = poisoned(DType.BF16, 3, 50);
             Tensor dg = poisoned(DType.BF16, 3, 50); Tensor du = poisoned(DType.BF16, 3, 50); Tensor ws = Tensor.allocate(DType.F32, 3, 50);
             Tensor wg = Tensor.allocate(DType.F32, 3, 50); Tensor wu = Tensor.allocate(DType.F32, 3, 50)) {
            small.swiglu(g, u, s);
            CPU.swiglu(gf, uf, ws);
            assertRounded("swiglu", ws, s);
            small.swigluBackward(d, g, u, dg, du);
            CPU.swigluBackward(df, gf, uf, wg, wu);
            assertRounded("swigluBackward dGate", wg, dg);
            assertRounded("swigluBackward dUp", wu, du);
        }
        try (Tensor table = random(rng, 11, 20); Tensor ids = randomInts(rng, 11, 9); Tensor out = poisoned(DType.BF16, 9, 20);
             Tensor want = Tensor.allocate(DType.F32, 9, 20)) {
            small.embedding(table, ids, out);
            CPU.embedding(table, ids, want);
            assertRounded("embedding", want, out);
        }
        for (long t : temporaries) assertTrue(t <= 48, "a temporary of " + t + " elements, more than a chunk");
    }

    @Test
    void reductionsOverRowsAgreeToTheLastBits() {
        SplittableRandom rng = new SplittableRandom(2);
        // rmsnorm backward: dx row by row exactly; dWeight summed chunk by chunk
        try (Tensor x = bf16(random(rng, 9, 24)); Tensor dy = random(rng, 9, 24); Tensor xf = f32(x); Tensor w = random(rng, 24);
             Tensor rstd = Tensor.allocate(DType.F32, 9); Tensor n = Tensor.allocate(DType.F32, 9, 24);
             Tensor dx = poisoned(DType.BF16, 9, 24); Tensor dw = Tensor.allocate(DType.F32, 24);
             Tensor wantDx = Tensor.allocate(DType.F32, 9, 24); Tensor wantDw = Tensor.allocate(DType.F32, 24)) {
            CPU.rmsnorm(xf, w, 1e-5f, n, rstd);
            small.rmsnormBackward(dy, x, w, rstd, dx, dw);
            CPU.rmsnormBackward(dy, xf, w, rstd, wantDx, wantDw);
            assertRounded("rmsnormBackward dx", wantDx, dx);
            assertClose("rmsnormBackward dWeight", wantDw, dw, 1e-6, 1e-5);
        }
        // the loss: sums and counts of the chunks added; dHidden row by row
        try (Tensor h = bf16(random(rng, 10, 16)); Tensor hf = f32(h); Tensor w = random(rng, 30, 16);
             Tensor y = Tensor.ofInts(new int[] {1, -100, 29, 0, 7, 7, -100, 3, 12, 25}); Tensor dh = poisoned(DType.F32, 10, 16);
             Tensor dw = Tensor.allocate(DType.F32, 30, 16); Tensor wantDh = Tensor.allocate(DType.F32, 10, 16);
             Tensor wantDw = Tensor.allocate(DType.F32, 30, 16)) {
            Backend.LossSum got = small.crossEntropy(h, w, y, 0.125f, dh, dw);
            Backend.LossSum want = CPU.crossEntropy(hf, w, y, 0.125f, wantDh, wantDw);
            assertEquals(want.count(), got.count());
            assertEquals(want.sum(), got.sum(), 1e-9 * Math.abs(want.sum()));
            assertClose("crossEntropy dHidden", wantDh, dh, 1e-7, 1e-6);
            assertClose("crossEntropy dWeight", wantDw, dw, 1e-7, 1e-5);
        }
        // a BF16 product: rows in chunks, accumulate included
        try (Tensor a = bf16(random(rng, 13, 8)); Tensor b = random(rng, 6, 8); Tensor out = bf16(random(rng, 13, 6));
             Tensor want = f32(out)) {
            small.matmul(a, false, b, true, out, true);
            try (Tensor af = f32(a)) {
                CPU.matmul(af, false, b, true, want, true);
            }
            try (Tensor wantRounded = bf16(want)) {
                assertClose("matmul into bf16", wantRounded, out, 0, 0.008);
            }
        }
    }

    @Test
    void attentionThroughF32Copies() {
        SplittableRandom rng = new SplittableRandom(3);
        try (Tensor q = bf16(random(rng, 1, 9, 4, 16)); Tensor k = bf16(random(rng, 1, 9, 2, 16)); Tensor v = bf16(random(rng, 1, 9, 2, 16));
             Tensor qf = f32(q); Tensor kf = f32(k); Tensor vf = f32(v); Tensor out = poisoned(DType.BF16, 1, 9, 4, 16);
             Tensor lse = poisoned(1, 4, 9); Tensor want = Tensor.allocate(DType.F32, 1, 9, 4, 16); Tensor wantLse = Tensor.allocate(DType.F32, 1, 4, 9)) {
            CPU.attention(q, k, v, 0.25f, out, lse); // the backend routes BF16 here
            CPU.attention(qf, kf, vf, 0.25f, want, wantLse);
            assertRounded("attention", want, out);
            assertArrayEquals(wantLse.toFloatArray(), lse.toFloatArray());
            try (Tensor dOut = bf16(random(rng, 1, 9, 4, 16)); Tensor dof = f32(dOut); Tensor dq = poisoned(DType.BF16, 1, 9, 4, 16);
                 Tensor dk = poisoned(DType.BF16, 1, 9, 2, 16); Tensor dv = poisoned(DType.BF16, 1, 9, 2, 16);
                 Tensor outF = f32(out); Tensor wq = Tensor.allocate(DType.F32, 1, 9, 4, 16); Tensor wk = Tensor.allocate(DType.F32, 1, 9, 2, 16);
                 Tensor wv = Tensor.allocate(DType.F32, 1, 9, 2, 16)) {
                CPU.attentionBackward(dOut, q, k, v, out, lse, 0.25f, dq, dk, dv);
                CPU.attentionBackward(dof, qf, kf, vf, outF, lse, 0.25f, wq, wk, wv);
                assertRounded("attention dq", wq, dq);
                assertRounded("attention dk", wk, dk);
                assertRounded("attention dv", wv, dv);
            }
        }
    }

    @Test
    void badDtypesAndShapesAreNamed() {
        try (Tensor a = Tensor.allocate(DType.BF16, 2, 3); Tensor b = Tensor.allocate(DType.BF16, 3, 2); Tensor i = Tensor.allocate(DType.I32, 2, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CPU.add(a, b, a));
            assertTrue(e.getMessage().startsWith("add: b must have the shape of a"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> CPU.add(a, i, a));
            assertTrue(e.getMessage().startsWith("add: b must be [F32, BF16]"), e.getMessage());
        }
    }
}
