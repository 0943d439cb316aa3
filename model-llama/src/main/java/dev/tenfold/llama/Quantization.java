package dev.tenfold.llama;

import java.util.Locale;

/** How the frozen projections of a loaded model are stored: as the checkpoint has them, or in NF4 (QLoRA). */
public enum Quantization {
    /** As stored (BF16, F16 or F32; a pre-quantized checkpoint stays in its format). */
    NONE,
    /** bitsandbytes' 4-bit NormalFloat with double quantization; provided by tenfold-qlora. */
    NF4;

    /** "none" or "nf4", any case. */
    public static Quantization parse(String s) {
        for (Quantization q : values()) if (q.name().equalsIgnoreCase(s.strip())) return q;
        throw new IllegalArgumentException("unknown quantization '" + s + "' (none or nf4)");
    }

    @Override
    public String toString() { return name().toLowerCase(Locale.ROOT); }
}
