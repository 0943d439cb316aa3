package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** NCCL's argument checks and ids, without NCCL. */
class NcclTest {

    private static Tensor onCuda0(DType dtype, long n) {
        // a device tensor over a fake address: the checks never dereference it
        return Tensor.onDevice(MemorySegment.ofAddress(0x1000).reinterpret(dtype.byteSize(n)), Device.cuda(0), dtype, () -> {}, n);
    }

    @Test
    void splitNeedsNccl218() {
        Nccl.checkSplit(true, 21800, "libnccl.so.2");
        Nccl.checkSplit(true, 22703, "libnccl.so.2");
        String old = assertThrows(CudaUnavailableException.class, () -> Nccl.checkSplit(false, 21703, "/opt/nccl/libnccl.so.2")).getMessage();
        assertTrue(old.startsWith("splitting an NCCL communicator into groups (ncclCommSplit) needs NCCL 2.18.0 or newer;"
                + " /opt/nccl/libnccl.so.2 is NCCL 2.17.3"), old);
        // the version decides even where the symbol is there
        assertThrows(CudaUnavailableException.class, () -> Nccl.checkSplit(true, 21703, "libnccl.so.2"));
        assertThrows(CudaUnavailableException.class, () -> Nccl.checkSplit(false, 22703, "libnccl.so.2"));
    }

    @Test
    void ranksAndRoots() {
        Nccl.checkRanks(8, 0);
        Nccl.checkRanks(8, 7);
        assertEquals("ncclCommInitRank: rank 8 is not in [0, 8)",
                assertThrows(IllegalArgumentException.class, () -> Nccl.checkRanks(8, 8)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> Nccl.checkRanks(0, 0));
        assertThrows(IllegalArgumentException.class, () -> Nccl.checkRanks(2, -1));
        Nccl.checkRoot(1, 2);
        assertEquals("broadcast: root 2 is not in [0, 2)", assertThrows(IllegalArgumentException.class, () -> Nccl.checkRoot(2, 2)).getMessage());
    }

    @Test
    void collectivesCheckTheirBuffers() {
        Device cuda0 = Device.cuda(0);
        Tensor a = onCuda0(DType.F32, 10), b = onCuda0(DType.F32, 10);
        assertEquals(Nccl.FLOAT32, Nccl.checkCollective("allReduceSum", a, b, cuda0, true));
        assertEquals(Nccl.FLOAT32, Nccl.checkCollective("allReduceSum", a, a, cuda0, true)); // in place
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Nccl.checkCollective("allReduceSum", a, onCuda0(DType.F32, 11), cuda0, true));
        assertTrue(e.getMessage().startsWith("allReduceSum: send and recv need the same dtype and element count"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Nccl.checkCollective("allReduceSum", onCuda0(DType.BF16, 10), onCuda0(DType.BF16, 10), cuda0, true));
        assertTrue(e.getMessage().startsWith("allReduceSum: send must be [F32]"), e.getMessage());
        assertEquals(Nccl.BFLOAT16, Nccl.checkCollective("broadcast", onCuda0(DType.BF16, 10), onCuda0(DType.BF16, 10), cuda0, false));
        try (Tensor host = Tensor.allocate(DType.F32, 10)) {
            e = assertThrows(IllegalArgumentException.class, () -> Nccl.checkCollective("broadcast", a, host, cuda0, false));
            assertTrue(e.getMessage().startsWith("broadcast: buffers must be on cuda:0"), e.getMessage());
        }
        e = assertThrows(IllegalArgumentException.class, () -> Nccl.checkCollective("broadcast", a, b, Device.cuda(1), false));
        assertTrue(e.getMessage().contains("cuda:1"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> Nccl.checkCollective("broadcast", onCuda0(DType.NF4, 10), onCuda0(DType.NF4, 10), cuda0, false));
    }

    @Test
    void uniqueIdsTravelAsHex() {
        byte[] raw = new byte[128];
        for (int i = 0; i < raw.length; i++) raw[i] = (byte) (i * 7);
        Nccl.UniqueId id = Nccl.UniqueId.fromBytes(raw);
        raw[0] = 99; // the id keeps its own copy
        assertEquals(0, id.bytes()[0]);
        assertEquals(256, id.toHex().length());
        assertEquals(id, Nccl.UniqueId.fromHex(id.toHex()));
        assertThrows(IllegalArgumentException.class, () -> Nccl.UniqueId.fromBytes(new byte[127]));
        assertThrows(IllegalArgumentException.class, () -> Nccl.UniqueId.fromHex("abc"));
        assertEquals(128, Nccl.UNIQUE_ID.byteSize());
    }

    @Test
    void versionCodes() {
        assertEquals("2.27.3", Nccl.versionString(22703));
        assertEquals("2.8.4", Nccl.versionString(2804));
    }
}
