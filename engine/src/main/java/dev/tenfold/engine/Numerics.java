package dev.tenfold.engine;

/** Conversions between f32 and the 16-bit float formats, as the hardware and PyTorch round. */
public final class Numerics {
    private Numerics() {}

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** f32 to bf16 with round-to-nearest-even; NaN stays NaN (quiet), infinities stay infinite. */
    public static short floatToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7fffffff) > 0x7f800000) return (short) ((x >>> 16) | 0x0040);
        int rounding = 0x7fff + ((x >>> 16) & 1);
        return (short) ((x + rounding) >>> 16);
    }

    /** Rounds an f32 value to the nearest bf16 value, returned as f32. */
    public static float roundToBf16(float f) { return bf16ToFloat(floatToBf16(f)); }

    public static float f16ToFloat(short bits) { return Float.float16ToFloat(bits); }

    public static short floatToF16(float f) { return Float.floatToFloat16(f); }
}
