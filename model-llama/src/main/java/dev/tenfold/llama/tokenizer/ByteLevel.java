package dev.tenfold.llama.tokenizer;

/**
 * The GPT-2 byte-level alphabet and a lossy UTF-8 decoder.
 *
 * <p>Byte-level BPE never sees raw bytes: each of the 256 byte values is first mapped to a printable
 * Unicode character, so that vocab and merges are plain strings. Bytes that are already printable
 * and not a space ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes are given
 * the code points 256, 257, ... in byte order (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
 */
final class ByteLevel {
    private ByteLevel() {}

    /** byte value (0..255) -> its character in the byte-level alphabet. */
    static final char[] BYTE_TO_CHAR = new char[256];
    /** character -> byte value, or -1 where the character is not in the alphabet. */
    private static final int[] CHAR_TO_BYTE = new int[256 + 68];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + extra++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    /** The byte a character of the alphabet stands for, or -1 if it is not one of the 256. */
    static int byteOf(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /**
     * The bytes a token string decodes to, as the Hugging Face ByteLevel decoder does it: if every
     * character of the token is in the byte alphabet, the bytes they stand for; otherwise (an added
     * token such as "&lt;|eot_id|&gt;" written in plain text) the token's own UTF-8 bytes.
     */
    static byte[] tokenBytes(String token) {
        byte[] out = new byte[token.length()];
        for (int i = 0; i < token.length(); i++) {
            int b = byteOf(token.charAt(i));
            if (b < 0) return token.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            out[i] = (byte) b;
        }
        return out;
    }

    /**
     * Decodes UTF-8, replacing each maximal ill-formed subsequence by one U+FFFD (the Unicode
     * "substitution of maximal subparts" practice, which Rust's from_utf8_lossy and so the Hugging
     * Face decoder follow; the JDK's decoder differs on some inputs, e.g. encoded surrogates).
     * Never throws.
     */
    static String decodeUtf8Lossy(byte[] b, int off, int len) {
        StringBuilder sb = new StringBuilder(len);
        int end = off + len;
        int i = off;
        while (i < end) {
            int b0 = b[i] & 0xFF;
            if (b0 < 0x80) {
                sb.append((char) b0);
                i++;
                continue;
            }
            // Number of continuation bytes and the allowed range of the first one (Unicode Table 3-7);
            // the narrower ranges exclude overlong forms, surrogates and code points above U+10FFFF.
            int need;
            int lo = 0x80, hi = 0xBF;
            if (b0 >= 0xC2 && b0 <= 0xDF) need = 1;
            else if (b0 == 0xE0) { need = 2; lo = 0xA0; }
            else if (b0 >= 0xE1 && b0 <= 0xEC) need = 2;
            else if (b0 == 0xED) { need = 2; hi = 0x9F; }
            else if (b0 >= 0xEE && b0 <= 0xEF) need = 2;
            else if (b0 == 0xF0) { need = 3; lo = 0x90; }
            else if (b0 >= 0xF1 && b0 <= 0xF3) need = 3;
            else if (b0 == 0xF4) { need = 3; hi = 0x8F; }
            else {
                sb.append('\uFFFD'); // a byte that can never start a sequence
                i++;
                continue;
            }
            int cp = b0 & (0x3F >> need);
            int j = i + 1;
            int got = 0;
            while (got < need && j < end) {
                int bj = b[j] & 0xFF;
                if (bj < lo || bj > hi) break;
                cp = (cp << 6) | (bj & 0x3F);
                lo = 0x80;
                hi = 0xBF;
                j++;
                got++;
            }
            if (got == need) sb.appendCodePoint(cp);
            else sb.append('\uFFFD'); // the well-formed prefix [i, j) is one maximal subpart
            i = j;
        }
        return sb.toString();
    }
}
