package dev.tenfold.engine.testing;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Scratch;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.cpu.CpuBackend;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SimulatedDeviceBackendTest {
    final SimulatedDeviceBackend dev = new SimulatedDeviceBackend();

    @Test
    void tensorsAreZeroFilledDeviceTensorsThatRefuseHostAccessAndAreCounted() {
        SimulatedDeviceBackend.Counts before = dev.counts();
        Tensor t = dev.allocate(DType.F32, 3, 5);
        assertEquals(Device.cuda(0), t.device());
        assertEquals(Device.cuda(0), dev.device());
        SimulatedDeviceBackend.Counts after = dev.counts().minus(before);
        assertEquals(1, after.allocations());
        assertEquals(1, after.live());
        assertEquals(60, after.liveBytes());
        assertThrows(IllegalStateException.class, () -> t.getFloat(0));
        assertThrows(IllegalStateException.class, () -> t.setFloat(0, 1f));
        assertThrows(IllegalStateException.class, t::toFloatArray);
        assertThrows(IllegalStateException.class, () -> t.fill(0f));
        assertThrows(IllegalStateException.class, t::copy);
        assertThrows(IllegalStateException.class, () -> t.view(15).getFloat(3), "views stay device tensors");
        assertThrows(IllegalStateException.class, () -> t.slice(1, 2).toFloatArray(), "slices stay device tensors");
        // raw access to the memory fails too (a CUDA pointer would crash the JVM there)
        assertThrows(IllegalStateException.class, () -> t.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
        assertThrows(IllegalStateException.class, () -> java.lang.foreign.MemorySegment.copy(t.data(), 0, t.data(), 4, 4));
        assertThrows(IllegalStateException.class, () -> Tensor.wrap(t.data(), DType.F32, 3, 5).getFloat(0));
        assertArrayEquals(new float[15], Transfers.toFloatArray(dev, t), "zero-filled");
        t.close();
        t.close(); // harmless
        assertEquals(0, dev.counts().live());
        assertEquals(0, dev.counts().liveBytes());
        assertEquals(60, dev.counts().peakBytes());
    }

    @Test
    void copyMovesDataBothWaysAndCountsTransfers() {
        try (Tensor h = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3); Tensor d = dev.allocate(DType.F32, 6);
             Tensor d2 = dev.allocate(DType.F32, 3, 2); Tensor back = Tensor.allocate(DType.F32, 2, 3)) {
            SimulatedDeviceBackend.Counts before = dev.counts();
            dev.copy(h, d);      // up (shapes may differ, element counts match)
            dev.copy(d, d2);     // on the device
            dev.copy(d2, back);  // down
            SimulatedDeviceBackend.Counts c = dev.counts().minus(before);
            assertEquals(1, c.uploads());
            assertEquals(24, c.uploadBytes());
            assertEquals(1, c.downloads());
            assertEquals(24, c.downloadBytes());
            assertEquals(1, c.deviceCopies());
            assertEquals(2, c.transfers());
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, back.toFloatArray());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> dev.copy(h, dev.allocate(DType.BF16, 6)));
            assertTrue(e.getMessage().contains("same dtype"), e.getMessage());
            Tensor other = new SimulatedDeviceBackend(Device.cuda(1)).allocate(DType.F32, 6);
            e = assertThrows(IllegalArgumentException.class, () -> dev.copy(other, d));
            assertTrue(e.getMessage().contains("cuda:1"), e.getMessage());
            other.close();
        }
    }

    @Test
    void anOpGivenAHostTensorFailsNamingTheOpAndTheArgument() {
        try (Tensor x = dev.allocate(DType.F32, 2, 4); Tensor w = Tensor.allocate(DType.F32, 3, 4); Tensor y = dev.allocate(DType.F32, 2, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> dev.matmul(x, false, w, true, y, false));
            assertTrue(e.getMessage().startsWith("matmul: b is F32[3, 4] on cpu"), e.getMessage());
            try (Tensor hx = Tensor.allocate(DType.F32, 2, 4)) {
                e = assertThrows(IllegalArgumentException.class, () -> dev.rmsnorm(hx, null, 1e-5f, y, null));
                assertTrue(e.getMessage().startsWith("rmsnorm: x "), e.getMessage());
            }
            Tensor closed = dev.allocate(DType.F32, 2, 3);
            Tensor viewOfFreed = closed.view(6);
            closed.close();
            assertThrows(IllegalStateException.class, () -> dev.add(y, closed, y));
            IllegalStateException s = assertThrows(IllegalStateException.class, () -> dev.scale(viewOfFreed, 2f, viewOfFreed));
            assertTrue(s.getMessage().contains("freed device memory"), s.getMessage());
        }
    }

    @Test
    void opsGiveTheCpuBackendsNumbersBitForBit() {
        SplittableRandom rng = new SplittableRandom(11);
        Backend cpu = CpuBackend.fast();
        try (Tensor x = TestTensors.random(rng, 7, 19); Tensor w = TestTensors.random(rng, DType.BF16, 1f, 23, 19);
             Tensor norm = TestTensors.random(rng, 19); Tensor targets = Tensor.ofInts(new int[] {1, -100, 22, 0, 5, 5, 9}, 7);
             Tensor y = Tensor.allocate(DType.F32, 7, 23); Tensor xn = Tensor.allocate(DType.F32, 7, 19); Tensor rstd = Tensor.allocate(DType.F32, 7);
             Tensor dh = Tensor.allocate(DType.F32, 7, 19);
             Tensor dx = Transfers.upload(dev, x); Tensor dw = Transfers.upload(dev, w); Tensor dnorm = Transfers.upload(dev, norm);
             Tensor dtargets = Transfers.upload(dev, targets); Tensor dy = dev.allocate(DType.F32, 7, 23);
             Tensor dxn = dev.allocate(DType.F32, 7, 19); Tensor drstd = dev.allocate(DType.F32, 7); Tensor ddh = dev.allocate(DType.F32, 7, 19)) {
            cpu.matmul(x, false, w, true, y, false);
            dev.matmul(dx, false, dw, true, dy, false);
            assertArrayEquals(y.toFloatArray(), Transfers.toFloatArray(dev, dy));
            cpu.rmsnorm(x, norm, 1e-5f, xn, rstd);
            dev.rmsnorm(dx, dnorm, 1e-5f, dxn, drstd);
            assertArrayEquals(xn.toFloatArray(), Transfers.toFloatArray(dev, dxn));
            Backend.LossSum a = cpu.crossEntropy(xn, w, targets, 0.5f, dh, null);
            Backend.LossSum b = dev.crossEntropy(dxn, dw, dtargets, 0.5f, ddh, null);
            assertEquals(a, b);
            assertArrayEquals(dh.toFloatArray(), Transfers.toFloatArray(dev, ddh));
            assertEquals(cpu.sumOfSquares(dh), dev.sumOfSquares(ddh));
            assertEquals(cpu.globalNorm(List.of(dh, y)), dev.globalNorm(List.of(ddh, dy)));
        }
    }

    @Test
    void fillWorksOnTheDeviceAndTheDefaultFillGoesThroughCopy() {
        try (Tensor d = dev.allocate(DType.F32, 1000, 700)) {
            dev.fill(d, 2.5f);
            float[] v = Transfers.toFloatArray(dev, d);
            for (float f : v) assertEquals(2.5f, f);
            // Backend's default fill, as a device backend without its own fill runs it: uploads, a block at a time
            InvocationHandler h = (proxy, m, args) -> m.getName().equals("fill") ? InvocationHandler.invokeDefault(proxy, m, args)
                    : m.invoke(dev, args);
            Backend copyOnly = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, h);
            SimulatedDeviceBackend.Counts before = dev.counts();
            copyOnly.fill(d, 0f);
            SimulatedDeviceBackend.Counts c = dev.counts().minus(before);
            assertEquals(3, c.uploads(), "700,000 floats in blocks of 262,144");
            assertEquals(2_800_000, c.uploadBytes());
            for (float f : Transfers.toFloatArray(dev, d)) assertEquals(0f, Float.floatToRawIntBits(f));
            try (Tensor host = Tensor.of(new float[] {1, 2}, 2)) {
                copyOnly.fill(host, -1f);
                assertArrayEquals(new float[] {-1, -1}, host.toFloatArray());
            }
        }
    }

    @Test
    void scratchLivesOnTheDeviceAndIsFreedOnClose() {
        SimulatedDeviceBackend.Counts before = dev.counts();
        try (Scratch s = new Scratch(dev)) {
            Tensor a = s.tensor(DType.F32, 4, 4);
            Tensor ids = s.ints(new int[] {3, 1, 4});
            Tensor f = s.floats(new float[] {0.5f, 0.25f});
            assertEquals(Device.cuda(0), a.device());
            assertEquals(Device.cuda(0), ids.device());
            try (Tensor h = Transfers.download(dev, ids)) {
                assertArrayEquals(new int[] {3, 1, 4}, h.toIntArray());
            }
            assertArrayEquals(new float[] {0.5f, 0.25f}, Transfers.toFloatArray(dev, f));
            assertEquals(3, dev.counts().minus(before).live());
        }
        assertEquals(0, dev.counts().live());
        try (Scratch s = new Scratch(CpuBackend.fast())) {
            Tensor ids = s.ints(new int[] {3, 1, 4});
            assertTrue(ids.device().isCpu());
            assertArrayEquals(new int[] {3, 1, 4}, ids.toIntArray());
        }
    }

    @Test
    void onHostDownloadsOnlyDeviceTensors() {
        try (Tensor h = Tensor.of(new float[] {1, 2}, 2); Tensor d = Transfers.upload(dev, h)) {
            java.util.List<Tensor> temps = new java.util.ArrayList<>();
            assertSame(h, Transfers.onHost(dev, h, temps));
            Tensor got = Transfers.onHost(dev, d, temps);
            assertEquals(1, temps.size());
            assertArrayEquals(new float[] {1, 2}, got.toFloatArray());
            temps.forEach(Tensor::close);
            assertTrue(Transfers.needsUpload(dev, h));
            assertFalse(Transfers.needsUpload(dev, d));
        }
    }
}
