package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.collective.InProcessCommunicator;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.InProcessRanks;
import dev.tenfold.engine.testing.SimulatedDeviceBackend;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Both context-parallel schemes on device tensors (a simulated device per rank, with a communicator that moves
 * device tensors, as NCCL does) against the same ranks on host tensors: every output bit for bit, so the
 * device path runs the same re-layouts (Backend.copy2d, copy, cast, fill) as the host path. And a
 * communicator that moves host tensors only is refused up front for device tensors.
 */
class ShardedAttentionOnDeviceTest {
    static final int HQ = 8, D = 16;

    @ParameterizedTest
    @CsvSource({"ULYSSES, 2, 4, 12, F32", "ULYSSES, 4, 4, 6, BF16", "ALL_GATHER, 2, 2, 8, F32", "ALL_GATHER, 3, 2, 6, F32",
            "ALL_GATHER, 4, 2, 4, BF16"})
    void deviceTensorsGiveTheHostBits(ContextParallelScheme scheme, int ranks, int hkv, int t, DType dtype) throws Exception {
        float scale = (float) (1 / Math.sqrt(D));
        byte[][][] host = run(scheme, ranks, hkv, t, dtype, scale, false);
        byte[][][] device = run(scheme, ranks, hkv, t, dtype, scale, true);
        String[] names = {"att", "lse", "dq", "dk", "dv"};
        for (int r = 0; r < ranks; r++) {
            for (int i = 0; i < names.length; i++) {
                assertArrayEquals(host[r][i], device[r][i], scheme + " rank " + r + " " + names[i]);
            }
        }
    }

    /** Each rank's att, lse, dq, dk, dv bytes after a forward and a backward on random inputs of its own. */
    private static byte[][][] run(ContextParallelScheme scheme, int ranks, int hkv, int t, DType dtype, float scale, boolean onDevice)
            throws Exception {
        byte[][][] out = new byte[ranks][][];
        InProcessRanks.run(InProcessCommunicator.group(ranks, Duration.ofSeconds(60)), c -> {
            int r = c.rank();
            Random rnd = new Random(31 * r + 7);
            SimulatedDeviceBackend dev = onDevice ? new SimulatedDeviceBackend() : null;
            Backend b = onDevice ? dev : CpuBackend.fast();
            Communicator group = onDevice ? new DeviceGroup(c, dev) : c;
            List<Tensor> all = new ArrayList<>();
            try (ShardedAttention attention = scheme.attention(group, b)) {
                Tensor q = on(b, random(rnd, dtype, t, HQ), all), k = on(b, random(rnd, dtype, t, hkv), all);
                Tensor v = on(b, random(rnd, dtype, t, hkv), all), dOut = on(b, random(rnd, dtype, t, HQ), all);
                Tensor att = keep(b.allocate(dtype, 1, t, HQ, D), all), lse = keep(b.allocate(DType.F32, 1, HQ, t), all);
                Tensor dq = keep(b.allocate(dtype, 1, t, HQ, D), all), dk = keep(b.allocate(dtype, 1, t, hkv, D), all);
                Tensor dv = keep(b.allocate(dtype, 1, t, hkv, D), all);
                attention.forward(q, k, v, scale, att, lse);
                attention.backward(dOut, q, k, v, att, lse, scale, dq, dk, dv);
                Tensor[] results = {att, lse, dq, dk, dv};
                out[r] = new byte[results.length][];
                for (int i = 0; i < results.length; i++) {
                    try (Tensor h = Tensor.allocate(results[i].dtype(), results[i].shape())) {
                        b.copy(results[i], h);
                        out[r][i] = h.data().toArray(ValueLayout.JAVA_BYTE);
                    }
                }
            } finally {
                all.forEach(Tensor::close);
            }
        });
        return out;
    }

    @org.junit.jupiter.api.Test
    void deviceTensorsWithAHostCommunicatorAreRefused() throws Exception {
        for (ContextParallelScheme scheme : new ContextParallelScheme[] {ContextParallelScheme.ULYSSES, ContextParallelScheme.ALL_GATHER}) {
            List<String> errors = new ArrayList<>();
            InProcessRanks.run(InProcessCommunicator.group(2, Duration.ofSeconds(30)), c -> {
                SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
                try (ShardedAttention a = scheme.attention(c, dev); Tensor q = dev.allocate(DType.F32, 1, 4, HQ, D);
                     Tensor k = dev.allocate(DType.F32, 1, 4, 2, D); Tensor att = dev.allocate(DType.F32, 1, 4, HQ, D);
                     Tensor lse = dev.allocate(DType.F32, 1, HQ, 4)) {
                    a.forward(q, k, k, 1f, att, lse);
                } catch (UnsupportedOperationException e) {
                    synchronized (errors) {
                        errors.add(e.getMessage());
                    }
                }
            });
            assertEquals(2, errors.size(), scheme.toString());
            String name = scheme == ContextParallelScheme.ULYSSES ? "Ulysses attention" : "all-gather attention";
            assertTrue(errors.get(0).startsWith(name + ": the tensors are on cuda:0 (F32[1, 4, 8, 16]@cuda:0) but the communicator (2 in-process"
                    + " ranks, sums in rank order) moves tensors on cpu; device tensors need NCCL"), errors.get(0));
        }
    }

    private static Tensor random(Random rnd, DType dtype, int t, int heads) {
        try (Tensor x = Tensor.allocate(DType.F32, 1, t, heads, D)) {
            for (long i = 0; i < x.numel(); i++) x.setFloat(i, rnd.nextFloat() * 4 - 2);
            Tensor out = Tensor.allocate(dtype, 1, t, heads, D);
            CpuBackend.fast().cast(x, out);
            return out;
        }
    }

    /** The host tensor on b's device (itself on the CPU). */
    private static Tensor on(Backend b, Tensor hostTensor, List<Tensor> all) {
        all.add(hostTensor);
        if (b.device().isCpu()) return hostTensor;
        Tensor d = keep(b.allocate(hostTensor.dtype(), hostTensor.shape()), all);
        b.copy(hostTensor, d);
        return d;
    }

    private static Tensor keep(Tensor t, List<Tensor> all) {
        all.add(t);
        return t;
    }

    /** An in-process rank that moves the simulated device's tensors (their host memory), as NCCL moves a GPU's. */
    private record DeviceGroup(Communicator inner, SimulatedDeviceBackend dev) implements Communicator {
        @Override public int rank() { return inner.rank(); }
        @Override public int size() { return inner.size(); }
        @Override public Device device() { return dev.device(); }
        @Override public void allReduceSum(List<Tensor> tensors) { inner.allReduceSum(tensors.stream().map(dev::hostView).toList()); }
        @Override public void allReduceSum(double[] values) { inner.allReduceSum(values); }
        @Override public void broadcast(Tensor tensor, int root) { inner.broadcast(dev.hostView(tensor), root); }
        @Override public void barrier() { inner.barrier(); }
        @Override public void allGather(Tensor mine, Tensor all) { inner.allGather(dev.hostView(mine), dev.hostView(all)); }
        @Override public void allToAll(Tensor send, Tensor recv) { inner.allToAll(dev.hostView(send), dev.hostView(recv)); }
        @Override public void reduceScatter(Tensor send, Tensor recv) { inner.reduceScatter(dev.hostView(send), dev.hostView(recv)); }
        @Override public String describe() { return inner.describe() + " on simulated devices"; }
        @Override public void close() { inner.close(); }
    }
}
