package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The void** argument array cuLaunchKernel reads: one pointer per argument, to a value of the C type's size. */
class KernelArgsTest {

    @Test
    void packsEachValueAtItsPointer() {
        KernelAbi.Kernel k = new KernelAbi.Kernel("tf_test", List.of(KernelAbi.Arg.PTR, KernelAbi.Arg.F32, KernelAbi.Arg.PTR,
                KernelAbi.Arg.I32, KernelAbi.Arg.I64, KernelAbi.Arg.PTR, KernelAbi.Arg.I64, KernelAbi.Arg.PTR));
        try (Arena arena = Arena.ofConfined(); Tensor t = Tensor.allocate(DType.F32, 4)) {
            MemorySegment params = KernelArgs.pack(arena, k, t, -1.5f, 0xdead_beef_0000L, 7, 1L << 40, null, 3, arena.allocate(8));
            assertEquals(8 * 8, params.byteSize());
            assertEquals(t.data().address(), at(params, 0).get(ValueLayout.JAVA_LONG, 0));
            assertEquals(-1.5f, at(params, 1).get(ValueLayout.JAVA_FLOAT, 0));
            assertEquals(0xdead_beef_0000L, at(params, 2).get(ValueLayout.JAVA_LONG, 0));
            assertEquals(7, at(params, 3).get(ValueLayout.JAVA_INT, 0));
            assertEquals(1L << 40, at(params, 4).get(ValueLayout.JAVA_LONG, 0));
            assertEquals(0L, at(params, 5).get(ValueLayout.JAVA_LONG, 0));
            assertEquals(3L, at(params, 6).get(ValueLayout.JAVA_LONG, 0)); // an int widened for a long long
            assertNotEquals(0L, at(params, 7).get(ValueLayout.JAVA_LONG, 0));
        }
    }

    private static MemorySegment at(MemorySegment params, int i) {
        return params.getAtIndex(ValueLayout.ADDRESS, i).reinterpret(8);
    }

    @Test
    void refusesAWrongCountOrKind() {
        try (Arena arena = Arena.ofConfined()) {
            KernelAbi.Kernel add = KernelAbi.ADD_F32;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KernelArgs.pack(arena, add, 1L, 2L, 3L));
            assertEquals("tf_add_f32 takes 4 arguments, got 3", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> KernelArgs.pack(arena, KernelAbi.SCALE_F32, 1L, 2.0, 3L, 4L));
            assertEquals("tf_scale_f32: argument 1 is a float, got Double 2.0", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> KernelArgs.pack(arena, KernelAbi.SOFTMAX_FWD_F32, 1L, 2L, 3L, 4));
            assertEquals("tf_softmax_fwd_f32: argument 2 is a int, got Long 3", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> KernelArgs.pack(arena, KernelAbi.FILL_F32, "x", 1f, 1L));
            assertTrue(e.getMessage().startsWith("tf_fill_f32: argument 0 is a pointer"), e.getMessage());
        }
    }
}
