package dev.tenfold.llama;

import dev.tenfold.engine.testing.InProcessRanks;
import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.collective.InProcessCommunicator;
import dev.tenfold.engine.cpu.CpuBackend;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Ulysses attention over N in-process ranks against one rank's attention over the whole sequence,
 * forward and backward, bit for bit on the CPU. An uneven length is padded at the end to a multiple
 * of N (the padded rows are ignored: causal attention keeps them out of the real rows).
 */
class UlyssesAttentionTest {
    static final int HQ = 8, HKV = 4, D = 16;

    @ParameterizedTest
    @CsvSource({"2, 64", "4, 64", "2, 37", "4, 37", "4, 5"})
    void forwardAndBackwardEqualOneRanksBitForBit(int ranks, int realTokens) throws Exception {
        int t = Math.ceilDiv(realTokens, ranks), T = t * ranks; // padded length
        CpuBackend b = CpuBackend.fast();
        Random rnd = new Random(18 + realTokens);
        // the whole (padded) sequence's q, k, v and the gradient of the output; padding rows hold zeros
        Tensor q = random(rnd, T, HQ, realTokens), k = random(rnd, T, HKV, realTokens), v = random(rnd, T, HKV, realTokens);
        Tensor dOut = random(rnd, T, HQ, realTokens);
        float scale = (float) (1 / Math.sqrt(D));
        // one rank over the real tokens
        Tensor att = Tensor.allocate(DType.F32, 1, realTokens, HQ, D), lse = Tensor.allocate(DType.F32, 1, HQ, realTokens);
        Tensor dq = Tensor.allocate(DType.F32, 1, realTokens, HQ, D), dk = Tensor.allocate(DType.F32, 1, realTokens, HKV, D);
        Tensor dv = Tensor.allocate(DType.F32, 1, realTokens, HKV, D);
        b.attention(rows(q, 0, realTokens), rows(k, 0, realTokens), rows(v, 0, realTokens), scale, att, lse);
        b.attentionBackward(rows(dOut, 0, realTokens), rows(q, 0, realTokens), rows(k, 0, realTokens), rows(v, 0, realTokens), att, lse, scale, dq, dk, dv);

        Tensor[] cpAtt = new Tensor[ranks], cpDq = new Tensor[ranks], cpDk = new Tensor[ranks], cpDv = new Tensor[ranks], cpLse = new Tensor[ranks];
        InProcessRanks.run(InProcessCommunicator.group(ranks, Duration.ofSeconds(60)), c -> {
            int r = c.rank();
            try (UlyssesAttention ulysses = UlyssesAttention.over(c, b)) {
                Tensor a = Tensor.allocate(DType.F32, 1, t, HQ, D), l = Tensor.allocate(DType.F32, 1, HQ, t);
                Tensor gq = Tensor.allocate(DType.F32, 1, t, HQ, D), gk = Tensor.allocate(DType.F32, 1, t, HKV, D), gv = Tensor.allocate(DType.F32, 1, t, HKV, D);
                Tensor qs = rows(q, r * t, t).copy(), ks = rows(k, r * t, t).copy(), vs = rows(v, r * t, t).copy();
                ulysses.forward(qs, ks, vs, scale, a, l);
                ulysses.backward(rows(dOut, r * t, t).copy(), qs, ks, vs, a, l, scale, gq, gk, gv);
                cpAtt[r] = a;
                cpLse[r] = l;
                cpDq[r] = gq;
                cpDk[r] = gk;
                cpDv[r] = gv;
            }
        });
        assertSameRows("att", att, cpAtt, t, realTokens);
        assertSameRows("dq", dq, cpDq, t, realTokens);
        assertSameRows("dk", dk, cpDk, t, realTokens);
        assertSameRows("dv", dv, cpDv, t, realTokens);
        // rank r's lse: its heads [r Hq/N, (r+1) Hq/N) over the whole padded sequence
        int hn = HQ / ranks;
        for (int r = 0; r < ranks; r++) {
            for (int h = 0; h < hn; h++) {
                for (int i = 0; i < realTokens; i++) {
                    assertEquals(Float.floatToRawIntBits(lse.getFloat((long) (r * hn + h) * realTokens + i)),
                            Float.floatToRawIntBits(cpLse[r].getFloat((long) h * T + i)), "lse of head " + (r * hn + h) + " row " + i);
                }
            }
        }
    }

    @Test
    void aGroupThatDoesNotDivideTheKvHeadsIsRefused() throws Exception {
        List<String> errors = new ArrayList<>();
        InProcessRanks.run(InProcessCommunicator.group(3, Duration.ofSeconds(30)), c -> {
            try (UlyssesAttention u = UlyssesAttention.over(c, CpuBackend.fast())) {
                Tensor q = Tensor.allocate(DType.F32, 1, 2, HQ, D), k = Tensor.allocate(DType.F32, 1, 2, HKV, D);
                u.forward(q, k, k.copy(), 1f, q.copy(), Tensor.allocate(DType.F32, 1, HQ, 2));
            } catch (IllegalArgumentException e) {
                synchronized (errors) {
                    errors.add(e.getMessage());
                }
            }
        });
        assertEquals(3, errors.size());
        assertEquals("Ulysses attention: 3 ranks must divide the 4 key/value heads (and 4 the 8 query heads); use a group of at most 4 ranks"
                + " that divides it", errors.get(0));
    }

    /** [T, heads, d] of uniform values in [-2, 2) for the first {@code real} rows, zeros after. */
    static Tensor random(Random rnd, int tokens, int heads, int real) {
        Tensor x = Tensor.allocate(DType.F32, 1, tokens, heads, D);
        for (long i = 0; i < x.numel(); i++) x.setFloat(i, i < (long) real * heads * D ? rnd.nextFloat() * 4 - 2 : 0f);
        return x;
    }

    /** Rows [start, start + n) of a [1, T, heads, d] as a [1, n, heads, d] view. */
    static Tensor rows(Tensor x, long start, long n) {
        long row = x.dim(2) * x.dim(3) * 4;
        return Tensor.wrap(x.data().asSlice(start * row, n * row), DType.F32, 1, n, x.dim(2), x.dim(3));
    }

    static void assertSameRows(String what, Tensor whole, Tensor[] shards, int t, int real) {
        long row = whole.dim(2) * whole.dim(3);
        for (long i = 0; i < (long) real * row; i++) {
            int rank = (int) (i / row / t);
            float mine = shards[rank].getFloat(i - (long) rank * t * row);
            assertEquals(Float.floatToRawIntBits(whole.getFloat(i)), Float.floatToRawIntBits(mine),
                    what + " element " + i + ": one rank " + whole.getFloat(i) + ", Ulysses " + mine);
        }
    }

}
