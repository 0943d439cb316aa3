package dev.tenfold.engine;

import java.util.Locale;

/**
 * Element types of tensor storage. Every safetensors dtype is here so that any file can be
 * read; NF4 is tenfold's packed 4-bit storage type (two elements per byte, bitsandbytes order:
 * element 2j in the high nibble of byte j), not a safetensors dtype.
 */
public enum DType {
    F64(64, true), F32(32, true), F16(16, true), BF16(16, true),
    F8_E4M3(8, true), F8_E5M2(8, true),
    I64(64, false), I32(32, false), I16(16, false), I8(8, false),
    U64(64, false), U32(32, false), U16(16, false), U8(8, false),
    BOOL(8, false),
    NF4(4, true);

    private final int bits;
    private final boolean floating;

    DType(int bits, boolean floating) {
        this.bits = bits;
        this.floating = floating;
    }

    /** Bits one element occupies in storage (4 for NF4). */
    public int bits() { return bits; }

    public boolean isFloating() { return floating; }

    /** Bytes needed to store {@code numel} elements, rounding a packed type up to whole bytes. */
    public long byteSize(long numel) {
        if (numel < 0) throw new IllegalArgumentException("negative element count " + numel);
        return Math.ceilDiv(Math.multiplyExact(numel, (long) bits), 8L);
    }

    /** The name safetensors headers use, or null for NF4 which has none. */
    public String safetensorsName() { return this == NF4 ? null : name(); }

    /** Parses a safetensors dtype string; the error names the string. */
    public static DType fromSafetensors(String name) {
        if (name != null) {
            for (DType t : values()) {
                if (t != NF4 && t.name().equals(name)) return t;
            }
        }
        throw new IllegalArgumentException("unknown safetensors dtype '" + name + "'");
    }

    public String lower() { return name().toLowerCase(Locale.ROOT); }
}
