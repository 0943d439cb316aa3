package dev.tenfold.tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a GGUF file back for the tests, written from gguf.md independently of {@link GgufWriter}
 * (its own type codes and block layouts), so a mistake in the writer is not repeated here. Checks
 * what the specification requires as it reads: the magic, version 3, known value types, offsets
 * aligned and inside the file, the padding zero.
 */
final class GgufReader {
    /** A metadata value: its type code, for arrays the element type code, and the value (List for arrays). */
    record Kv(int type, int elementType, Object value) {}

    record Info(String name, long[] ne, int type, long offset) {
        long numel() {
            long n = 1;
            for (long d : ne) n *= d;
            return n;
        }
    }

    final int version;
    final Map<String, Kv> metadata = new LinkedHashMap<>();
    final List<Info> tensors = new ArrayList<>();
    final long dataStart;
    final int alignment;
    private final ByteBuffer b;

    GgufReader(Path file) throws IOException {
        b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[4];
        b.get(magic);
        check(new String(magic, StandardCharsets.US_ASCII).equals("GGUF"), "magic");
        version = b.getInt();
        check(version == 3, "version " + version);
        long nTensors = b.getLong(), nKv = b.getLong();
        for (long i = 0; i < nKv; i++) {
            String key = string();
            check(!metadata.containsKey(key), "duplicate key " + key);
            int type = b.getInt();
            if (type == 9) {
                int et = b.getInt();
                long n = b.getLong();
                List<Object> items = new ArrayList<>();
                for (long k = 0; k < n; k++) items.add(scalar(et));
                metadata.put(key, new Kv(type, et, items));
            } else {
                metadata.put(key, new Kv(type, -1, scalar(type)));
            }
        }
        for (long i = 0; i < nTensors; i++) {
            String name = string();
            int dims = b.getInt();
            check(dims >= 1 && dims <= 4, name + ": dims " + dims);
            long[] ne = new long[dims];
            for (int d = 0; d < dims; d++) ne[d] = b.getLong();
            tensors.add(new Info(name, ne, b.getInt(), b.getLong()));
        }
        Kv a = metadata.get("general.alignment");
        alignment = a == null ? 32 : ((Number) a.value()).intValue();
        long pos = b.position();
        dataStart = (pos + alignment - 1) / alignment * alignment;
        for (long p = pos; p < dataStart; p++) check(b.get((int) p) == 0, "padding before the data");
        for (Info t : tensors) {
            check(t.offset() % alignment == 0, t.name() + ": offset " + t.offset() + " not aligned");
            check(dataStart + t.offset() + bytes(t) <= b.capacity(), t.name() + ": data past the end of the file");
        }
    }

    private static void check(boolean ok, String what) {
        if (!ok) throw new IllegalStateException("bad GGUF: " + what);
    }

    private String string() {
        long n = b.getLong();
        byte[] s = new byte[Math.toIntExact(n)];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    private Object scalar(int type) {
        return switch (type) {
            case 0 -> b.get() & 0xff;
            case 1 -> (int) b.get();
            case 2 -> b.getShort() & 0xffff;
            case 3 -> (int) b.getShort();
            case 4 -> b.getInt() & 0xffffffffL;
            case 5 -> b.getInt();
            case 6 -> b.getFloat();
            case 7 -> {
                int v = b.get();
                check(v == 0 || v == 1, "bool " + v);
                yield v == 1;
            }
            case 8 -> string();
            case 10, 11 -> b.getLong();
            case 12 -> b.getDouble();
            default -> throw new IllegalStateException("bad GGUF: value type " + type);
        };
    }

    Info info(String name) {
        for (Info t : tensors) if (t.name().equals(name)) return t;
        throw new AssertionError("no tensor " + name);
    }

    Object value(String key) {
        Kv kv = metadata.get(key);
        if (kv == null) throw new AssertionError("no key " + key);
        return kv.value();
    }

    /** Bytes of a tensor: F32 4, F16 and BF16 2 per element, Q8_0 34 per 32. */
    static long bytes(Info t) {
        return switch (t.type()) {
            case 0 -> 4 * t.numel();
            case 1, 30 -> 2 * t.numel();
            case 8 -> t.numel() / 32 * 34;
            default -> throw new IllegalStateException("bad GGUF: tensor type " + t.type());
        };
    }

    /** The tensor's elements as floats, in file order (Q8_0 dequantized: the F16 scale times each int8). */
    float[] floats(String name) {
        Info t = info(name);
        float[] out = new float[Math.toIntExact(t.numel())];
        int at = Math.toIntExact(dataStart + t.offset());
        for (int i = 0; i < out.length; i++) {
            switch (t.type()) {
                case 0 -> out[i] = b.getFloat(at + 4 * i);
                case 1 -> out[i] = Float.float16ToFloat(b.getShort(at + 2 * i));
                case 30 -> out[i] = Float.intBitsToFloat((b.getShort(at + 2 * i) & 0xffff) << 16);
                case 8 -> {
                    int block = at + i / 32 * 34;
                    out[i] = Float.float16ToFloat(b.getShort(block)) * b.get(block + 2 + i % 32);
                }
                default -> throw new IllegalStateException("type " + t.type());
            }
        }
        return out;
    }

    /** The F16 scale of Q8_0 block k of a tensor. */
    float q8Scale(String name, int k) {
        Info t = info(name);
        return Float.float16ToFloat(b.getShort(Math.toIntExact(dataStart + t.offset() + 34L * k)));
    }
}
