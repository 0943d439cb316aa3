package dev.tenfold.engine.cuda;

import dev.tenfold.engine.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * Packs a kernel's arguments the way cuLaunchKernel wants them: a void* array whose entry i points at
 * argument i's value, stored with the size of its C type (pointer and long long 8 bytes, int and float 4).
 * The Java values are checked against the kernel's declared parameters first, so a wrong count or kind
 * is an exception here, never a garbled launch.
 *
 * <p>Accepted values: PTR — a {@link Tensor} (its device address), a {@link MemorySegment}, a {@code Long}
 * address, or null (NULL); I32 — Integer; I64 — Long or Integer; F32 — Float.
 */
final class KernelArgs {
    private KernelArgs() {}

    private static final int SLOT = 8;

    /** The void** array (allocated in {@code arena}) for launching {@code kernel} with {@code args}. */
    static MemorySegment pack(Arena arena, KernelAbi.Kernel kernel, Object... args) {
        List<KernelAbi.Arg> params = kernel.params();
        if (args.length != params.size()) {
            throw new IllegalArgumentException(kernel.name() + " takes " + params.size() + " arguments, got " + args.length);
        }
        MemorySegment values = arena.allocate((long) SLOT * Math.max(1, args.length), SLOT);
        MemorySegment pointers = arena.allocate(ValueLayout.ADDRESS, Math.max(1, args.length));
        for (int i = 0; i < args.length; i++) {
            long at = (long) SLOT * i;
            Object v = args[i];
            switch (params.get(i)) {
                case PTR -> values.set(ValueLayout.JAVA_LONG, at, address(kernel, i, v));
                case I32 -> {
                    if (!(v instanceof Integer x)) throw wrong(kernel, i, "int", v);
                    values.set(ValueLayout.JAVA_INT, at, x);
                }
                case I64 -> {
                    if (v instanceof Long x) values.set(ValueLayout.JAVA_LONG, at, x);
                    else if (v instanceof Integer x) values.set(ValueLayout.JAVA_LONG, at, x.longValue());
                    else throw wrong(kernel, i, "long long", v);
                }
                case F32 -> {
                    if (!(v instanceof Float x)) throw wrong(kernel, i, "float", v);
                    values.set(ValueLayout.JAVA_FLOAT, at, x);
                }
            }
            pointers.setAtIndex(ValueLayout.ADDRESS, i, values.asSlice(at, SLOT));
        }
        return pointers;
    }

    private static long address(KernelAbi.Kernel kernel, int i, Object v) {
        if (v == null) return 0;
        if (v instanceof Tensor t) return t.data().address();
        if (v instanceof MemorySegment s) return s.address();
        if (v instanceof Long l) return l;
        throw wrong(kernel, i, "pointer", v);
    }

    private static IllegalArgumentException wrong(KernelAbi.Kernel kernel, int i, String type, Object v) {
        return new IllegalArgumentException(kernel.name() + ": argument " + i + " is a " + type + ", got "
                + (v == null ? "null" : v.getClass().getSimpleName() + " " + v));
    }
}
