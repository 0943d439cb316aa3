package dev.tenfold.engine.collective;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.testing.GpuTests;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The NCCL communicator as the trainer uses it, one rank on cuda:0: a sum over one rank leaves the
 * device tensors as they were, the doubles' sum keeps their value to ~48 bits, a broadcast from
 * rank 0 keeps the tensor. A machine with several GPUs runs the multi-rank path through
 * {@code tenfold train --nproc-per-node N} (see the README).
 */
@Tag("gpu")
class NcclCommunicatorGpuTest {

    @Test
    void oneRankAllReducesAndBroadcastsDeviceTensors() {
        CudaBackend gpu = GpuTests.backendOrSkip();
        GpuTests.ncclOrSkip();
        float[] values = new float[1003];
        for (int i = 0; i < values.length; i++) values[i] = MpiWorldMain.value(0, i);
        try (NcclCommunicator comm = NcclCommunicator.join(gpu, 1, 0, NcclCommunicator.newUniqueId(), Duration.ofMinutes(2));
             Tensor host = Tensor.of(values); Tensor x = gpu.toDevice(host); Tensor y = gpu.toDevice(host)) {
            assertEquals(0, comm.rank());
            assertEquals(1, comm.size());
            comm.allReduceSum(List.of(x, y));
            assertArrayEquals(values, GpuTests.toHost(gpu, x).toFloatArray());
            assertArrayEquals(values, GpuTests.toHost(gpu, y).toFloatArray());
            double[] d = {Math.PI * 1e6, -1.0 / 3};
            comm.allReduceSum(d);
            assertEquals(Math.PI * 1e6, d[0], 1e-7);
            assertEquals(-1.0 / 3, d[1], 1e-14);
            comm.broadcast(x, 0);
            assertArrayEquals(values, GpuTests.toHost(gpu, x).toFloatArray());
            comm.barrier();
            // one rank: an all-gather and an all-to-all are copies (ncclAllGather; ncclSend/ncclRecv to itself in a group)
            try (Tensor g = gpu.allocate(DType.F32, values.length); Tensor a = gpu.allocate(DType.F32, values.length)) {
                comm.allGather(x, g);
                assertArrayEquals(values, GpuTests.toHost(gpu, g).toFloatArray());
                comm.allToAll(x, a);
                assertArrayEquals(values, GpuTests.toHost(gpu, a).toFloatArray());
                comm.reduceScatter(x, g); // one rank: a copy (ncclReduceScatter)
                assertArrayEquals(values, GpuTests.toHost(gpu, g).toFloatArray());
            }
            assertThrows(IllegalArgumentException.class, () -> comm.broadcast(x, 1));
        }
    }
}
