package dev.tenfold.engine;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.plan.PlanningBackend;
import dev.tenfold.engine.testing.SimulatedDeviceBackend;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Backend.copy2d against a byte-by-byte loop, its argument checks, and the backends that take device tensors. */
class Copy2dTest {
    private final SplittableRandom rng = new SplittableRandom(18);

    /** What copy2d must do, one byte at a time. */
    private static void plainLoop(Tensor src, long srcOffset, long srcPitch, Tensor dst, long dstOffset, long dstPitch, long width, long rows) {
        for (long i = 0; i < rows; i++) {
            for (long b = 0; b < width; b++) {
                byte v = src.data().get(ValueLayout.JAVA_BYTE, srcOffset + i * srcPitch + b);
                dst.data().set(ValueLayout.JAVA_BYTE, dstOffset + i * dstPitch + b, v);
            }
        }
    }

    private Tensor randomBytes(long n) {
        Tensor t = Tensor.allocate(DType.U8, n);
        for (long i = 0; i < n; i++) t.data().set(ValueLayout.JAVA_BYTE, i, (byte) rng.nextInt(256));
        return t;
    }

    @Test
    void randomBlocksMatchThePlainLoopOnBothCpuBackends() {
        for (Backend b : new Backend[] {CpuBackend.reference(), CpuBackend.fast()}) {
            for (int trial = 0; trial < 200; trial++) {
                long width = rng.nextInt(0, 40), rows = rng.nextInt(0, 12);
                long srcPitch = width + rng.nextInt(0, 30), dstPitch = width + rng.nextInt(0, 30);
                long srcOffset = rng.nextInt(0, 20), dstOffset = rng.nextInt(0, 20);
                long srcBytes = srcOffset + Math.max(rows - 1, 0) * srcPitch + width + rng.nextInt(0, 5);
                long dstBytes = dstOffset + Math.max(rows - 1, 0) * dstPitch + width + rng.nextInt(0, 5);
                try (Tensor src = randomBytes(srcBytes); Tensor dst = randomBytes(dstBytes); Tensor want = dst.copy()) {
                    plainLoop(src, srcOffset, srcPitch, want, dstOffset, dstPitch, width, rows);
                    b.copy2d(src, srcOffset, srcPitch, dst, dstOffset, dstPitch, width, rows);
                    assertArrayEquals(want.data().toArray(ValueLayout.JAVA_BYTE), dst.data().toArray(ValueLayout.JAVA_BYTE),
                            b.name() + " trial " + trial);
                }
            }
        }
    }

    @Test
    void headGroupsOfF32TokensGoSideBySide() {
        // 3 tokens x 4 heads x 2 floats; group j (2 heads) of every token into block j: Ulysses' re-layout
        float[] x = new float[24];
        for (int i = 0; i < 24; i++) x[i] = i;
        try (Tensor src = Tensor.of(x, 3, 4, 2); Tensor dst = Tensor.allocate(DType.F32, 2, 3, 2, 2)) {
            long row = 2 * 2 * 4; // one token's heads of one group, bytes
            for (int j = 0; j < 2; j++) CpuBackend.fast().copy2d(src, j * row, 2 * row, dst, j * 3 * row, row, row, 3);
            assertArrayEquals(new float[] {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23},
                    dst.toFloatArray());
        }
    }

    @Test
    void badArgumentsAreRefusedNamingTheValue() {
        Backend b = CpuBackend.reference();
        try (Tensor src = Tensor.allocate(DType.F32, 16); Tensor dst = Tensor.allocate(DType.F32, 16)) {
            assertMessage("copy2d: srcOffsetBytes is -1, must be >= 0", () -> b.copy2d(src, -1, 8, dst, 0, 8, 8, 2));
            assertMessage("copy2d: rows is -3, must be >= 0", () -> b.copy2d(src, 0, 8, dst, 0, 8, 8, -3));
            assertMessage("copy2d: widthBytes is -8, must be >= 0", () -> b.copy2d(src, 0, 8, dst, 0, 8, -8, 2));
            assertMessage("copy2d: srcPitchBytes 4 is less than widthBytes 8", () -> b.copy2d(src, 0, 4, dst, 0, 8, 8, 2));
            assertMessage("copy2d: dstPitchBytes 7 is less than widthBytes 8", () -> b.copy2d(src, 0, 8, dst, 0, 7, 8, 2));
            assertMessage("copy2d: the last src block ends at byte 68, past the 64 bytes of src F32[16]",
                    () -> b.copy2d(src, 4, 16, dst, 0, 16, 16, 4));
            assertMessage("copy2d: the last dst block ends at byte 72, past the 64 bytes of dst F32[16]",
                    () -> b.copy2d(src, 0, 8, dst, 8, 8, 8, 8));
            assertMessage("copy2d: the last src block ends at byte (overflow)",
                    () -> b.copy2d(src, 0, Long.MAX_VALUE, dst, 0, 8, 8, 3));
            // interleaved blocks that share no byte are refused too: the spans of one tensor's memory meet
            assertMessage("copy2d: the source bytes [0, 40) of F32[16] and the destination bytes [8, 48) of F32[16] overlap",
                    () -> b.copy2d(src, 0, 16, src, 8, 16, 8, 3));
            assertMessage("copy2d: src is null", () -> b.copy2d(null, 0, 8, dst, 0, 8, 8, 1));
            // nothing to copy is fine, even at the very end
            b.copy2d(src, 64, 8, dst, 64, 8, 0, 5);
            b.copy2d(src, 0, 8, dst, 0, 8, 8, 0);
            // two views of one tensor's halves are different memory
            b.copy2d(src.slice(0, 8), 0, 8, src.slice(8, 16), 0, 8, 8, 4);
        }
    }

    @Test
    void deviceTensorsAreRefusedByTheCpuAndTakenByTheSimulatedDevice() {
        SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
        try (Tensor host = randomBytes(96); Tensor src = dev.allocate(DType.U8, 96); Tensor dst = dev.allocate(DType.U8, 40);
             Tensor want = Tensor.allocate(DType.U8, 40); Tensor back = Tensor.allocate(DType.U8, 40)) {
            assertMessage("copy2d: cpu-reference handles host tensors only", () -> CpuBackend.reference().copy2d(src, 0, 8, dst, 0, 4, 4, 10));
            dev.copy(host, src);
            long before = dev.counts().deviceCopies();
            dev.copy2d(src, 3, 9, dst, 0, 4, 4, 10);
            assertEquals(before + 1, dev.counts().deviceCopies());
            plainLoop(host, 3, 9, want, 0, 4, 4, 10);
            dev.copy(dst, back);
            assertArrayEquals(want.data().toArray(ValueLayout.JAVA_BYTE), back.data().toArray(ValueLayout.JAVA_BYTE));
            assertMessage("copy2d: simulated-cuda:0 copies within the host or within cuda:0", () -> dev.copy2d(host, 0, 8, dst, 0, 4, 4, 10));
        }
    }

    @Test
    void thePlanningBackendChecksAndMovesNothing() {
        PlanningBackend plan = new PlanningBackend(PlanningBackend.Target.CUDA, Device.cuda(0), Map.of());
        try (Tensor src = plan.allocate(DType.BF16, 64); Tensor dst = plan.allocate(DType.BF16, 64)) {
            plan.copy2d(src, 0, 16, dst, 0, 16, 16, 8);
            assertMessage("copy2d: the last dst block ends at byte 144", () -> plan.copy2d(src, 0, 16, dst, 16, 16, 16, 8));
            try (Tensor host = Tensor.allocate(DType.BF16, 64)) {
                assertMessage("copy2d: plan-cuda-cuda:0 copies within the host or within cuda:0", () -> plan.copy2d(host, 0, 16, dst, 0, 16, 16, 8));
            }
        }
    }

    private static void assertMessage(String part, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        assertTrue(x.getMessage().contains(part), x.getMessage());
    }
}
