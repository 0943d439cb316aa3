package dev.tenfold.benchmarks;

import java.util.Arrays;

/**
 * What each GPU benchmark counts as its work, written out once so that tenfold and the PyTorch peers
 * (benchmarks/scripts/kernel_peers.py mirrors these formulas; GpuWorkTest checks both agree) divide by
 * the same numbers.
 *
 * <p>Bandwidth: the bytes an op must read plus the bytes it must write, each tensor counted once (a
 * kernel that reads its input twice still counts it once: this is the "effective" bandwidth, comparable
 * with the copy bandwidth, which counts the bytes read plus the bytes written by a device-to-device copy).
 * GB is 10^9 bytes. FLOPs: 2 per multiply-add; attention as REFERENCE.md fixes it.
 */
final class GpuWork {
    private GpuWork() {}

    static final long KiB = 1L << 10, MiB = 1L << 20, GiB = 1L << 30;

    // ------------------------------------------------------------------ bytes moved

    /** A device-to-device copy of {@code bytes}: read once, written once. */
    static long copyBytes(long bytes) { return 2 * bytes; }

    /**
     * NF4 dequantization of n elements to an output of {@code outBytes} per element: the packed codes (n/2),
     * the absmax (one F32 per 64 elements, or with double quantization one U8 per 64 elements plus one F32
     * nested absmax per 256 blocks and the 256-entry F32 code table), and the output.
     */
    static long nf4DequantBytes(long n, boolean doubleQuant, int outBytes) {
        long blocks = n / 64;
        long stats = doubleQuant ? blocks + 4 * ceilDiv(blocks, 256) + 4 * 256 : 4 * blocks;
        return n / 2 + stats + n * outBytes;
    }

    /** RMSNorm forward over [rows, h] F32: x read, out written, the weight read, rstd (one F32 per row) written. */
    static long rmsnormFwdBytes(long rows, long h) { return 4 * (2 * rows * h + h + rows); }

    /** RoPE over [rows, heads, d] F32 into a separate output: x read, out written, positions (I32) and inv_freq (d/2 F32) read. */
    static long ropeBytes(long rows, long heads, long d) { return 4 * (2 * rows * heads * d + rows + d / 2); }

    /** SwiGLU forward over n F32 elements: gate and up read, out written. */
    static long swigluFwdBytes(long n) { return 3 * 4 * n; }

    /** AdamW over n F32 parameters: param, m and v read and written, grad read. */
    static long adamwBytes(long n) { return 7 * 4 * n; }

    /** A cast of n elements from {@code srcBytes} to {@code dstBytes} per element. */
    static long castBytes(long n, int srcBytes, int dstBytes) { return n * (srcBytes + dstBytes); }

    /** Embedding forward: t rows of width h gathered from a table of {@code tableBytes} per element into F32, and t I32 ids. */
    static long embeddingFwdBytes(long t, long h, int tableBytes) { return t * h * (tableBytes + 4) + 4 * t; }

    /**
     * Cross-entropy pass 1 over one logits chunk [t, vc] F32: the logits and the targets read, the running
     * row max and row sum read and written, the target logit written.
     */
    static long ceStatsBytes(long t, long vc) { return 4 * t * vc + 4 * t + 16 * t + 4 * t; }

    /** Cross-entropy pass 2 over one chunk [t, vc]: the logits read and overwritten, targets, row max and row sum read. */
    static long ceGradBytes(long t, long vc) { return 8 * t * vc + 12 * t; }

    /** Row softmax forward over [rows, n] F32: x read, out written. */
    static long softmaxFwdBytes(long rows, long n) { return 8 * rows * n; }

    // ------------------------------------------------------------------ FLOPs

    /** A matrix product [m, k] x [k, n]: 2mnk. */
    static double gemmFlops(long m, long n, long k) { return 2.0 * m * n * k; }

    /** Attention forward (REFERENCE.md): 4 * B * S^2 * H * d over the query heads H, halved when causal. */
    static double attentionFwdFlops(long batch, long seq, long heads, long d, boolean causal) {
        double f = 4.0 * batch * seq * seq * heads * d;
        return causal ? f / 2 : f;
    }

    /** Attention backward: 2.5 x the forward. */
    static double attentionBwdFlops(long batch, long seq, long heads, long d, boolean causal) {
        return 2.5 * attentionFwdFlops(batch, seq, heads, d, causal);
    }

    /** Forward plus backward: 3.5 x the forward. */
    static double attentionFwdBwdFlops(long batch, long seq, long heads, long d, boolean causal) {
        return 3.5 * attentionFwdFlops(batch, seq, heads, d, causal);
    }

    // ------------------------------------------------------------------ rates

    /** GB/s (10^9 bytes per second) of {@code bytes} moved in {@code ms}. */
    static double gbPerSecond(double bytes, double ms) { return bytes / (ms * 1e-3) / 1e9; }

    /** TFLOP/s of {@code flops} in {@code ms}. */
    static double tflopPerSecond(double flops, double ms) { return flops / (ms * 1e-3) / 1e12; }

    /** 100 * part / whole, or NaN when whole is not a positive number. */
    static double percent(double part, double whole) { return whole > 0 && Double.isFinite(whole) ? 100 * part / whole : Double.NaN; }

    // ------------------------------------------------------------------ samples

    /** The median of the samples (the mean of the middle two for an even count). */
    static double median(double[] samples) {
        if (samples.length == 0) throw new IllegalArgumentException("median of no samples");
        double[] s = samples.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    static double min(double[] samples) {
        if (samples.length == 0) throw new IllegalArgumentException("min of no samples");
        return Arrays.stream(samples).min().getAsDouble();
    }

    /**
     * How many runs of an op to time between one pair of events so that a sample lasts about
     * {@code targetMs}: ceil(targetMs / msOfOne), between 1 and {@code max} (launch overhead and the
     * event resolution then vanish beside the GPU time).
     */
    static int runsPerSample(double msOfOne, double targetMs, int max) {
        if (max < 1) throw new IllegalArgumentException("max runs must be at least 1, got " + max);
        if (!(msOfOne > 0) || !Double.isFinite(msOfOne)) return 1;
        double r = Math.ceil(targetMs / msOfOne);
        return (int) Math.max(1, Math.min(max, r));
    }

    static long ceilDiv(long a, long b) { return Math.ceilDiv(a, b); }
}
