package dev.tenfold.engine;

/**
 * bitsandbytes' NF4 format as {@link Backend#dequantizeNf4} reads it: the 16-value codebook
 * (normal-distribution quantiles scaled to [-1, 1]), 64 weights per block with one absmax each, and
 * with double quantization 256 absmax values per nested block. Written here once; the CPU kernel,
 * the quantizer and the checkpoint reader and writer take them from here.
 */
public final class Nf4Format {
    private Nf4Format() {}

    /** Elements per NF4 block (bitsandbytes' default and what Llama checkpoints use). */
    public static final int BLOCK = 64;

    /** absmax values per block of the double quantization. */
    public static final int NESTED_BLOCK = 256;

    private static final float[] CODE = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    };

    /** The codebook, index 0..15 (a copy). */
    public static float[] code() { return CODE.clone(); }
}
