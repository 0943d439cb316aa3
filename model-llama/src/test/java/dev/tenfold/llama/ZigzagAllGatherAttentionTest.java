package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.collective.InProcessCommunicator;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.InProcessRanks;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The zigzag all-gather attention over N in-process ranks against one rank's attention over the whole
 * sequence, forward and backward, within 1e-6 of the tensor's largest element (dk and dv are f32 sums
 * over the queries taken in another order: each chunk's share, then over the ranks; their difference
 * is f32 rounding, about 1e-6 of the values). Includes N = 4 over 2 key/value heads, where Ulysses cannot run, and
 * uneven lengths padded at the end to 2N chunks.
 */
class ZigzagAllGatherAttentionTest {
    static final int HQ = 8, D = 16;
    static final double TOLERANCE = 1e-6;

    @ParameterizedTest
    @CsvSource({"2, 4, 64", "4, 4, 64", "4, 2, 64", "2, 2, 37", "4, 2, 37", "4, 4, 5", "3, 2, 30"})
    void forwardAndBackwardEqualOneRanks(int ranks, int hkv, int realTokens) throws Exception {
        ContextParallelScheme zigzag = ContextParallelScheme.ALL_GATHER;
        int t = zigzag.shardLength(realTokens, ranks), total = t * ranks; // padded length
        CpuBackend b = CpuBackend.fast();
        Random rnd = new Random(18 + realTokens + hkv);
        Tensor q = random(rnd, total, HQ, realTokens), k = random(rnd, total, hkv, realTokens), v = random(rnd, total, hkv, realTokens);
        Tensor dOut = random(rnd, total, HQ, realTokens);
        float scale = (float) (1 / Math.sqrt(D));
        // one rank over the real tokens
        Tensor att = Tensor.allocate(DType.F32, 1, realTokens, HQ, D), lse = Tensor.allocate(DType.F32, 1, HQ, realTokens);
        Tensor dq = Tensor.allocate(DType.F32, 1, realTokens, HQ, D), dk = Tensor.allocate(DType.F32, 1, realTokens, hkv, D);
        Tensor dv = Tensor.allocate(DType.F32, 1, realTokens, hkv, D);
        b.attention(rows(q, 0, realTokens), rows(k, 0, realTokens), rows(v, 0, realTokens), scale, att, lse);
        b.attentionBackward(rows(dOut, 0, realTokens), rows(q, 0, realTokens), rows(k, 0, realTokens), rows(v, 0, realTokens), att, lse, scale, dq, dk, dv);

        Tensor[] cpAtt = new Tensor[ranks], cpDq = new Tensor[ranks], cpDk = new Tensor[ranks], cpDv = new Tensor[ranks];
        int[][] tokens = new int[ranks][];
        InProcessRanks.run(InProcessCommunicator.group(ranks, Duration.ofSeconds(60)), c -> {
            int r = c.rank();
            tokens[r] = zigzag.tokens(realTokens, ranks, r);
            try (ShardedAttention attention = zigzag.attention(c, b)) {
                assertInstanceOf(ZigzagAllGatherAttention.class, attention);
                Tensor a = Tensor.allocate(DType.F32, 1, t, HQ, D), l = Tensor.allocate(DType.F32, 1, HQ, t);
                Tensor gq = Tensor.allocate(DType.F32, 1, t, HQ, D), gk = Tensor.allocate(DType.F32, 1, t, hkv, D), gv = Tensor.allocate(DType.F32, 1, t, hkv, D);
                Tensor qs = pick(q, tokens[r]), ks = pick(k, tokens[r]), vs = pick(v, tokens[r]);
                attention.forward(qs, ks, vs, scale, a, l);
                attention.backward(pick(dOut, tokens[r]), qs, ks, vs, a, l, scale, gq, gk, gv);
                cpAtt[r] = a;
                cpDq[r] = gq;
                cpDk[r] = gk;
                cpDv[r] = gv;
            }
        });
        // every token of the padded sequence is held by exactly one rank
        int[] held = Arrays.stream(tokens).flatMapToInt(Arrays::stream).sorted().toArray();
        for (int i = 0; i < total; i++) assertEquals(i, held[i], "the zigzag layout holds every token once");
        assertSameRows("att", att, cpAtt, tokens, realTokens);
        assertSameRows("dq", dq, cpDq, tokens, realTokens);
        assertSameRows("dk", dk, cpDk, tokens, realTokens);
        assertSameRows("dv", dv, cpDv, tokens, realTokens);
    }

    /**
     * BF16 activations (the GPU recipe's): the same against one rank's BF16 attention, to BF16 rounding (dk and dv are
     * rounded to BF16 per chunk before their sum, which runs in F32).
     */
    @Test
    void bf16ActivationsEqualOneRanksToBf16Rounding() throws Exception {
        int ranks = 4, hkv = 2, realTokens = 37;
        ContextParallelScheme zigzag = ContextParallelScheme.ALL_GATHER;
        int t = zigzag.shardLength(realTokens, ranks), total = t * ranks;
        CpuBackend b = CpuBackend.fast();
        Random rnd = new Random(5);
        Tensor q = bf16(random(rnd, total, HQ, realTokens)), k = bf16(random(rnd, total, hkv, realTokens)), v = bf16(random(rnd, total, hkv, realTokens));
        Tensor dOut = bf16(random(rnd, total, HQ, realTokens));
        float scale = (float) (1 / Math.sqrt(D));
        Tensor att = Tensor.allocate(DType.BF16, 1, realTokens, HQ, D), lse = Tensor.allocate(DType.F32, 1, HQ, realTokens);
        Tensor dq = Tensor.allocate(DType.BF16, 1, realTokens, HQ, D), dk = Tensor.allocate(DType.BF16, 1, realTokens, hkv, D);
        Tensor dv = Tensor.allocate(DType.BF16, 1, realTokens, hkv, D);
        b.attention(bf16Rows(q, realTokens), bf16Rows(k, realTokens), bf16Rows(v, realTokens), scale, att, lse);
        b.attentionBackward(bf16Rows(dOut, realTokens), bf16Rows(q, realTokens), bf16Rows(k, realTokens), bf16Rows(v, realTokens), att, lse, scale, dq, dk, dv);
        Tensor[] cpAtt = new Tensor[ranks], cpDq = new Tensor[ranks], cpDk = new Tensor[ranks], cpDv = new Tensor[ranks];
        int[][] tokens = new int[ranks][];
        InProcessRanks.run(InProcessCommunicator.group(ranks, Duration.ofSeconds(60)), c -> {
            int r = c.rank();
            tokens[r] = zigzag.tokens(realTokens, ranks, r);
            try (ShardedAttention attention = zigzag.attention(c, b)) {
                Tensor a = Tensor.allocate(DType.BF16, 1, t, HQ, D), l = Tensor.allocate(DType.F32, 1, HQ, t);
                Tensor gq = Tensor.allocate(DType.BF16, 1, t, HQ, D), gk = Tensor.allocate(DType.BF16, 1, t, hkv, D), gv = Tensor.allocate(DType.BF16, 1, t, hkv, D);
                Tensor qs = bf16(pick(f32(q), tokens[r])), ks = bf16(pick(f32(k), tokens[r])), vs = bf16(pick(f32(v), tokens[r]));
                attention.forward(qs, ks, vs, scale, a, l);
                attention.backward(bf16(pick(f32(dOut), tokens[r])), qs, ks, vs, a, l, scale, gq, gk, gv);
                cpAtt[r] = f32(a);
                cpDq[r] = f32(gq);
                cpDk[r] = f32(gk);
                cpDv[r] = f32(gv);
            }
        });
        assertClose("att", f32(att), cpAtt, tokens, realTokens, 0);
        assertClose("dq", f32(dq), cpDq, tokens, realTokens, 0);
        assertClose("dk", f32(dk), cpDk, tokens, realTokens, 1e-2);
        assertClose("dv", f32(dv), cpDv, tokens, realTokens, 1e-2);
    }

    static Tensor bf16(Tensor x) {
        Tensor out = Tensor.allocate(DType.BF16, x.shape());
        CpuBackend.fast().cast(x, out);
        return out;
    }

    static Tensor f32(Tensor x) {
        Tensor out = Tensor.allocate(DType.F32, x.shape());
        CpuBackend.fast().cast(x, out);
        return out;
    }

    /** The first n rows of a BF16 [1, T, heads, d]. */
    static Tensor bf16Rows(Tensor x, long n) {
        long row = x.dim(2) * x.dim(3) * 2;
        return Tensor.wrap(x.data().asSlice(0, n * row), DType.BF16, 1, n, x.dim(2), x.dim(3));
    }

    /** As assertSameRows with {@code relative} x the largest element as the tolerance (0: bit for bit). */
    static void assertClose(String what, Tensor whole, Tensor[] shards, int[][] tokens, int real, double relative) {
        long row = whole.dim(2) * whole.dim(3);
        double largest = 0;
        for (long i = 0; i < (long) real * row; i++) largest = Math.max(largest, Math.abs(whole.getFloat(i)));
        for (int r = 0; r < shards.length; r++) {
            for (int i = 0; i < tokens[r].length; i++) {
                if (tokens[r][i] >= real) continue;
                for (long e = 0; e < row; e++) {
                    assertEquals(whole.getFloat(tokens[r][i] * row + e), shards[r].getFloat(i * row + e), relative * largest,
                            what + " of token " + tokens[r][i] + " element " + e);
                }
            }
        }
    }

    @Test
    void theZigzagLayoutBalancesTheChunks() {
        // 2N = 8 chunks of 2 tokens: rank 0 holds chunks 0 and 7, rank 3 chunks 3 and 4
        assertArrayEquals(new int[] {0, 1, 14, 15}, ContextParallelScheme.ALL_GATHER.tokens(16, 4, 0));
        assertArrayEquals(new int[] {6, 7, 8, 9}, ContextParallelScheme.ALL_GATHER.tokens(16, 4, 3));
        // 13 tokens over 2 ranks: chunks of 4, padded to 16 (indices >= 13 are padding)
        assertArrayEquals(new int[] {0, 1, 2, 3, 12, 13, 14, 15}, ContextParallelScheme.ALL_GATHER.tokens(13, 2, 0));
        assertArrayEquals(new int[] {5, 6, 7, 8, 9}, ContextParallelScheme.ULYSSES.tokens(13, 3, 1)); // t = ceil(13 / 3)
    }

    @Test
    void theSchemeIsChosenAndUlyssesWhereItCannotRunIsRefused() {
        assertEquals(ContextParallelScheme.ULYSSES, ContextParallelScheme.AUTO.resolve(4, 8));
        assertEquals(ContextParallelScheme.ALL_GATHER, ContextParallelScheme.AUTO.resolve(4, 2));
        assertEquals(ContextParallelScheme.ALL_GATHER, ContextParallelScheme.ALL_GATHER.resolve(2, 8));
        assertEquals("context parallelism: Ulysses needs the 4 ranks to divide the model's 2 key/value heads; use --cp-scheme allgather"
                        + " (or auto) for 4 ranks",
                assertThrows(IllegalArgumentException.class, () -> ContextParallelScheme.ULYSSES.resolve(4, 2)).getMessage());
        assertEquals(ContextParallelScheme.ALL_GATHER, ContextParallelScheme.fromFlag("allgather"));
        assertEquals("context-parallel scheme 'ring': expected auto, ulysses or allgather",
                assertThrows(IllegalArgumentException.class, () -> ContextParallelScheme.fromFlag("ring")).getMessage());
    }

    @Test
    void aShardOfAnOddLengthIsRefused() {
        try (ZigzagAllGatherAttention a = ZigzagAllGatherAttention.over(dev.tenfold.engine.collective.Communicator.solo(), CpuBackend.fast())) {
            Tensor q = Tensor.allocate(DType.F32, 1, 3, HQ, D), k = Tensor.allocate(DType.F32, 1, 3, 2, D);
            assertEquals("all-gather attention: a rank holds two chunks of the same length, so an even number of tokens, got 3"
                            + " (the zigzag layout: ContextParallelScheme.ALL_GATHER.tokens)",
                    assertThrows(IllegalArgumentException.class, () -> a.forward(q, k, k.copy(), 1f, q.copy(), Tensor.allocate(DType.F32, 1, HQ, 3)))
                            .getMessage());
        }
    }

    /** [T, heads, d] of uniform values in [-2, 2) for the first {@code real} rows, zeros after. */
    static Tensor random(Random rnd, int tokens, int heads, int real) {
        return UlyssesAttentionTest.random(rnd, tokens, heads, real);
    }

    static Tensor rows(Tensor x, long start, long n) {
        return UlyssesAttentionTest.rows(x, start, n);
    }

    /** The rows {@code tokens} of a [1, T, heads, d], in that order, as a new [1, tokens, heads, d]. */
    static Tensor pick(Tensor x, int[] tokens) {
        Tensor out = Tensor.allocate(DType.F32, 1, tokens.length, x.dim(2), x.dim(3));
        long row = x.dim(2) * x.dim(3) * 4;
        for (int i = 0; i < tokens.length; i++) java.lang.foreign.MemorySegment.copy(x.data(), tokens[i] * row, out.data(), i * row, row);
        return out;
    }

    /** Each rank's row i (token tokens[r][i] of the sequence) against one rank's row, for the real tokens. */
    static void assertSameRows(String what, Tensor whole, Tensor[] shards, int[][] tokens, int real) {
        long row = whole.dim(2) * whole.dim(3);
        double largest = 0;
        for (long i = 0; i < (long) real * row; i++) largest = Math.max(largest, Math.abs(whole.getFloat(i)));
        double tolerance = TOLERANCE * Math.max(1, largest), worst = 0;
        for (int r = 0; r < shards.length; r++) {
            for (int i = 0; i < tokens[r].length; i++) {
                if (tokens[r][i] >= real) continue;
                for (long e = 0; e < row; e++) {
                    float one = whole.getFloat(tokens[r][i] * row + e), mine = shards[r].getFloat(i * row + e);
                    worst = Math.max(worst, Math.abs(one - mine));
                    assertEquals(one, mine, tolerance, what + " of token " + tokens[r][i] + " (rank " + r + " row " + i + ") element " + e);
                }
            }
        }
        System.out.printf("%s: largest %.3g, worst difference %.3g (%.2g of the largest)%n", what, largest, worst, worst / Math.max(1, largest));
    }
}
