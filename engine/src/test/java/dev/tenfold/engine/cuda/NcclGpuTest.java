package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.GpuTests;
import dev.tenfold.engine.testing.TestTensors;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * NCCL on the device: a one-rank communicator (ncclCommInitRank with a fresh unique id) runs an all-reduce and
 * a broadcast on device tensors of cuda:0, out of place and in place, f32 and bf16, queued on the backend's
 * stream in order with its ops. With one rank the sum is the tensor itself: what this checks is that the
 * collectives move the right bytes between the right device buffers (outputs poisoned first). Skipped, saying
 * why, without a GPU or NCCL (failed instead where TENFOLD_REQUIRE_GPU=1). The split (ncclCommSplit) needs NCCL 2.18 or newer.
 */
@Tag("gpu")
class NcclGpuTest {

    @Test
    void aOneRankCommunicatorAllReducesAndBroadcastsDeviceTensors() {
        CudaBackend gpu = GpuTests.backendOrSkip();
        Nccl nccl = GpuTests.ncclOrSkip();
        int n = 1003; // no multiple of any chunk size
        SplittableRandom rng = new SplittableRandom(3);
        try (Tensor host = TestTensors.random(rng, n); Tensor host16 = TestTensors.random(rng, DType.BF16, 1f, n);
             Nccl.Communicator comm = nccl.initRank(gpu, 1, nccl.uniqueId(), 0);
             Tensor x = gpu.toDevice(host); Tensor sum = GpuTests.poisoned(gpu, DType.F32, n);
             Tensor copy = GpuTests.poisoned(gpu, DType.F32, n);
             Tensor x16 = gpu.toDevice(host16); Tensor copy16 = GpuTests.poisoned(gpu, DType.BF16, n)) {
            assertEquals(1, comm.ranks());
            assertEquals(0, comm.rank());
            float[] values = host.toFloatArray();

            comm.allReduceSum(x, sum);
            assertArrayEquals(values, floats(gpu, sum), "all-reduce (sum over one rank), out of place");
            comm.broadcast(x, copy, 0);
            assertArrayEquals(values, floats(gpu, copy), "broadcast from rank 0, out of place");
            comm.broadcast(x16, copy16, 0);
            assertArrayEquals(bytes(host16), bytes(gpu, copy16), "bf16 broadcast");

            // in place, after an op on the same stream: the collective sees the op's result
            gpu.scale(x, 2f, x);
            comm.allReduceSum(x, x);
            float[] twice = new float[n];
            for (int i = 0; i < n; i++) twice[i] = 2 * values[i];
            assertArrayEquals(twice, floats(gpu, x), "in-place all-reduce after scale");
            comm.broadcast(x16, x16, 0);
            assertArrayEquals(bytes(host16), bytes(gpu, x16), "in-place bf16 broadcast");
        }
    }

    /** ncclCommSplit of a one-rank communicator: the group is itself, on the same GPU, and the parent goes on after it is gone. */
    @Test
    void aOneRankCommunicatorSplitsIntoItsOwnGroup() {
        CudaBackend gpu = GpuTests.backendOrSkip();
        Nccl nccl = GpuTests.ncclOrSkip();
        int n = 257;
        try (Tensor host = TestTensors.random(new SplittableRandom(5), n); Nccl.Communicator comm = nccl.initRank(gpu, 1, nccl.uniqueId(), 0);
             Tensor x = gpu.toDevice(host); Tensor sum = GpuTests.poisoned(gpu, DType.F32, n)) {
            float[] values = host.toFloatArray();
            try (Nccl.Communicator group = comm.split(0, 0)) {
                assertEquals(1, group.ranks());
                assertEquals(0, group.rank());
                group.allReduceSum(x, sum);
                assertArrayEquals(values, floats(gpu, sum), "all-reduce over the split group");
            }
            try (Tensor again = GpuTests.poisoned(gpu, DType.F32, n)) {
                comm.allReduceSum(x, again);
                assertArrayEquals(values, floats(gpu, again), "all-reduce over the parent after its group is destroyed");
            }
        }
    }

    private static float[] floats(CudaBackend gpu, Tensor onDevice) {
        try (Tensor h = gpu.toHost(onDevice)) {
            return h.toFloatArray();
        }
    }

    private static byte[] bytes(Tensor host) { return host.data().toArray(ValueLayout.JAVA_BYTE); }

    private static byte[] bytes(CudaBackend gpu, Tensor onDevice) {
        try (Tensor h = gpu.toHost(onDevice)) {
            return bytes(h);
        }
    }
}
