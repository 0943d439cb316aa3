package dev.tenfold.qlora.nf4;

import dev.tenfold.engine.Nf4Format;
import java.util.Arrays;

/**
 * The NF4 data type as bitsandbytes defines it, and the 8-bit "dynamic" map its double
 * quantization uses. Everything here is plain float arithmetic in the order bitsandbytes' CUDA
 * kernels do it, so that the bytes we write are the bytes bitsandbytes would write.
 *
 * <h2>4-bit codes</h2>
 * A block of {@link #BLOCK} consecutive elements is scaled by {@code 1 / absmax} (the float
 * reciprocal, then a multiply, as the kernel does) and each scaled value gets the index of the
 * nearest of the 16 {@link #CODE} values. bitsandbytes finds it with a decision tree whose
 * thresholds are the float midpoints of neighbouring codes and whose every test is
 * {@code x > threshold}; so a value exactly on a midpoint goes to the <em>lower</em> code, and a
 * NaN (what {@code 0 * (1/0)} gives for an all-zero block) fails every test and gets code 0.
 * {@link #quantize(float)} is that tree, walked as a binary search over {@link #THRESHOLDS}.
 *
 * <h2>Double quantization</h2>
 * The per-block absmax values are themselves stored as 8-bit indices into
 * {@link #DYNAMIC_MAP} ({@code create_dynamic_map(signed=True, max_exponent_bits=7,
 * total_bits=8)}), blockwise by {@link #NESTED_BLOCK} after subtracting their mean; see
 * {@link #quantizeDynamic(float[], float)} for the search bitsandbytes uses there.
 */
public final class Nf4 {
    private Nf4() {}

    /** Elements per NF4 block (bitsandbytes' default and what Llama checkpoints use). */
    public static final int BLOCK = Nf4Format.BLOCK;

    /** absmax values per block of the double quantization. */
    public static final int NESTED_BLOCK = Nf4Format.NESTED_BLOCK;

    /** The NF4 codebook, index 0..15 (normal-distribution quantiles scaled to [-1, 1]); {@link Nf4Format}'s. */
    public static final float[] CODE = Nf4Format.code();

    /**
     * THRESHOLDS[i] is the float midpoint of CODE[i] and CODE[i+1]; a scaled value above it
     * belongs to code i+1 or higher. (These equal the constants of bitsandbytes' tree; a test
     * pins them.)
     */
    static final float[] THRESHOLDS = new float[15];

    static {
        for (int i = 0; i < 15; i++) THRESHOLDS[i] = (CODE[i] + CODE[i + 1]) * 0.5f;
    }

    /** The code of a scaled value x in [-1, 1] (see the class comment for ties and NaN). */
    public static int quantize(float x) {
        // Four comparisons, halving the candidate range each time: the same tree bitsandbytes uses.
        int i = x > THRESHOLDS[7] ? 8 : 0;
        if (x > THRESHOLDS[i + 3]) i += 4;
        if (x > THRESHOLDS[i + 1]) i += 2;
        if (x > THRESHOLDS[i]) i += 1;
        return i;
    }

    /**
     * Quantizes one block: src[off .. off+64) into 32 packed bytes at dst[dstOff ..), element 2j
     * in the high nibble of byte j. Returns the block's absmax (the largest |value|). Each value
     * is multiplied by the float reciprocal of absmax, as bitsandbytes' kernel does, then given
     * its {@link #quantize(float) code}.
     */
    public static float quantizeBlock(float[] src, int off, byte[] dst, int dstOff) {
        float absmax = 0f;
        for (int j = 0; j < BLOCK; j++) absmax = Math.max(absmax, Math.abs(src[off + j]));
        // an all-zero block gives 0 * (1/0) = NaN, which quantize() sends to code 0 (dequantized: -1 * 0 = 0)
        float inv = 1.0f / absmax;
        for (int j = 0; j < BLOCK; j += 2) {
            int hi = quantize(src[off + j] * inv);
            int lo = quantize(src[off + j + 1] * inv);
            dst[dstOff + (j >> 1)] = (byte) (hi << 4 | lo);
        }
        return absmax;
    }

    /** The largest |x| of the half-gaps between neighbouring codes: the worst rounding error of a scaled value. */
    public static float maxHalfGap() {
        float m = 0;
        for (int i = 0; i < 15; i++) m = Math.max(m, (CODE[i + 1] - CODE[i]) * 0.5f);
        return m;
    }

    // ------------------------------------------------------------------ the dynamic map

    /** {@code create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)}: 256 sorted floats. */
    public static final float[] DYNAMIC_MAP = createDynamicMap(true, 7, 8);

    /**
     * bitsandbytes' dynamic quantization map, rebuilt step by step in float32 as PyTorch computes
     * it. For each exponent i in [0, maxExponentBits): {@code torch.linspace(0.1, 1, k + 1)} with
     * k = 2^(i + nonSignBits - maxExponentBits) (twice that when unsigned), the means of
     * neighbouring boundaries, scaled by 10^(i - (maxExponentBits - 1)) and, when signed, also
     * negated; then the extra items of the all-zero exponent (none for 7 of 8 bits), 0 and 1.0,
     * zero padding to 256 and a sort. For (true, 7, 8) that is 127 negative values, 0, 127
     * positive values and 1.0: index 0 = -0.99296875, 127 = 0, 255 = 1.
     *
     * <p>The last bit of a few entries depends on how PyTorch rounds inside linspace; see
     * {@link #linspace}. Checkpoints store the table they were made with
     * ({@code nested_quant_map}) and loading always uses the stored one.
     */
    public static float[] createDynamicMap(boolean signed, int maxExponentBits, int totalBits) {
        int nonSignBits = totalBits - 1; // bitsandbytes subtracts one bit whether signed or not
        int additionalItems = (1 << (nonSignBits - maxExponentBits)) - 1;
        float[] data = new float[256];
        int n = 0;
        int i = 0;
        for (i = 0; i < maxExponentBits; i++) {
            int fractionItems = signed
                    ? (1 << (i + nonSignBits - maxExponentBits)) + 1
                    : (1 << (i + nonSignBits - maxExponentBits + 1)) + 1;
            n = appendScaledMeans(data, n, fractionItems, i - (maxExponentBits - 1), signed);
        }
        if (additionalItems > 0) {
            // Python's loop variable keeps its last value (maxExponentBits - 1), so these extra
            // items get the scale 10^0, as bitsandbytes writes it.
            n = appendScaledMeans(data, n, additionalItems + 1, (i - 1) - (maxExponentBits - 1), signed);
        }
        data[n++] = 0f;
        data[n++] = 1.0f;
        if (n != 1 << totalBits) throw new IllegalStateException("dynamic map has " + n + " values, expected " + (1 << totalBits));
        // the remaining entries (when totalBits < 8) stay 0, as bitsandbytes pads with zeros
        Arrays.sort(data);
        return data;
    }

    private static int appendScaledMeans(float[] data, int n, int boundaries, int exponent, boolean signed) {
        float[] b = linspace(0.1f, 1.0f, boundaries);
        // Python: 10 ** exponent is a double (or the int 1), which PyTorch casts to float for the multiply.
        float scale = (float) Double.parseDouble("1e" + exponent);
        for (int j = 0; j + 1 < boundaries; j++) {
            float mean = (b[j] + b[j + 1]) / 2.0f;
            data[n++] = scale * mean;
        }
        if (signed) {
            for (int j = 0; j + 1 < boundaries; j++) {
                float mean = (b[j] + b[j + 1]) / 2.0f;
                data[n++] = -scale * mean;
            }
        }
        return n;
    }

    /**
     * {@code torch.linspace(start, end, steps)} in float32 as PyTorch's CPU kernel writes it: the
     * step is (end - start) / (steps - 1) in float; the first half counts up from start
     * ({@code start + step * i}), the second half counts down from end
     * ({@code end - step * (steps - 1 - i)}), each product and sum rounded separately. (A PyTorch
     * build whose compiler fuses these into multiply-adds rounds once instead; for this map the
     * two readings differ by one ulp in some entries.)
     */
    static float[] linspace(float start, float end, int steps) {
        float[] out = new float[steps];
        if (steps == 1) {
            out[0] = start;
            return out;
        }
        float step = (end - start) / (float) (steps - 1);
        int halfway = steps / 2;
        for (int i = 0; i < steps; i++) {
            out[i] = i < halfway ? start + step * (float) i : end - step * (float) (steps - i - 1);
        }
        return out;
    }

    /**
     * The 8-bit index of x (already scaled to [-1, 1]) in a sorted 256-entry code table, found as
     * bitsandbytes' blockwise kernel finds it: seven halving steps from index 127 (moving up when
     * x is above the pivot's value, down otherwise), remembering the last pivot passed on each
     * side; then the pivot or that neighbour, whichever side of their float midpoint x is on
     * (a value on the midpoint keeps the pivot). This is the nearest entry except in rare
     * near-ties; reproducing the search keeps our bytes equal to theirs.
     */
    public static int quantizeDynamic(float[] code, float x) {
        int pivot = 127, lower = 0, upper = 255;
        for (int step = 64; step > 0; step >>= 1) {
            if (x > code[pivot]) {
                lower = pivot;
                pivot += step;
            } else {
                upper = pivot;
                pivot -= step;
            }
        }
        float v = code[pivot];
        if (x > v) {
            return x > (code[upper] + v) * 0.5f ? upper : pivot;
        } else {
            return x < (code[lower] + v) * 0.5f ? lower : pivot;
        }
    }

    // ------------------------------------------------------------------ double quantization

    /**
     * Double-quantized absmax values: {@code absmax[i] ~ code[codes[i] & 0xff] * nested[i / 256] + offset}.
     * {@code code} is the 256-entry table the indices refer to.
     */
    public record DoubleQuant(byte[] codes, float[] nested, float offset, float[] code) {
        /** The absmax of block i, computed exactly as bitsandbytes dequantizes it (float ops, this order). */
        public float absmax(int i) {
            return code[codes[i] & 0xff] * nested[i / NESTED_BLOCK] + offset;
        }
    }

    /**
     * bitsandbytes' double quantization of the block absmax values: offset = their mean, then
     * (absmax - offset) quantized blockwise by 256 with {@link #DYNAMIC_MAP}: each nested block
     * keeps its largest |value| (nested absmax) and every value is scaled by its reciprocal and
     * given the index {@link #quantizeDynamic} picks. A last partial block uses its own values only.
     *
     * <p>The mean is accumulated in double and rounded once; PyTorch's float reduction may differ
     * from it in the last bit. That changes no compatibility: the offset is stored in the checkpoint.
     */
    public static DoubleQuant doubleQuantize(float[] absmax) {
        int n = absmax.length;
        double sum = 0;
        for (float a : absmax) sum += a;
        float offset = n == 0 ? 0f : (float) (sum / n);
        byte[] codes = new byte[n];
        float[] nested = new float[(n + NESTED_BLOCK - 1) / NESTED_BLOCK];
        for (int nb = 0; nb < nested.length; nb++) {
            int s = nb * NESTED_BLOCK, e = Math.min(n, s + NESTED_BLOCK);
            float m = 0f;
            for (int i = s; i < e; i++) m = Math.max(m, Math.abs(absmax[i] - offset));
            nested[nb] = m;
            float inv = 1.0f / m;
            for (int i = s; i < e; i++) codes[i] = (byte) quantizeDynamic(DYNAMIC_MAP, (absmax[i] - offset) * inv);
        }
        return new DoubleQuant(codes, nested, offset, DYNAMIC_MAP.clone());
    }

    // ------------------------------------------------------------------ JSON numbers as Python writes them

    /**
     * A double as Python's {@code repr} (and so {@code json.dumps}) writes it: the shortest digits
     * that read back to the same double, positional for decimal exponents -4..15 ("0.0123",
     * "5.0"), scientific otherwise ("1.5e-05", "1e+16"). Used for quant_state's nested_offset
     * so that our JSON bytes match bitsandbytes'.
     */
    public static String pythonRepr(double d) {
        if (Double.isNaN(d)) return "NaN";
        if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
        if (d == 0) return (Double.doubleToRawLongBits(d) < 0) ? "-0.0" : "0.0";
        // Java's Double.toString also gives the shortest round-tripping digits (JDK 19+); reformat them.
        java.math.BigDecimal bd = new java.math.BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = bd.unscaledValue().toString();
        int n = digits.length();
        int exp = n - 1 - bd.scale(); // value = d.ddd x 10^exp
        StringBuilder sb = new StringBuilder(d < 0 ? "-" : "");
        if (exp >= -4 && exp < 16) {
            if (exp >= n - 1) {
                sb.append(digits).append("0".repeat(exp - (n - 1))).append(".0");
            } else if (exp >= 0) {
                sb.append(digits, 0, exp + 1).append('.').append(digits, exp + 1, n);
            } else {
                sb.append("0.").append("0".repeat(-exp - 1)).append(digits);
            }
        } else {
            sb.append(digits.charAt(0));
            if (n > 1) sb.append('.').append(digits, 1, n);
            sb.append('e').append(exp < 0 ? '-' : '+');
            int a = Math.abs(exp);
            if (a < 10) sb.append('0');
            sb.append(a);
        }
        return sb.toString();
    }
}
