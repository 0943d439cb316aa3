package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.SimulatedDeviceBackend;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.llama.TrainingMemory;
import dev.tenfold.llama.TrainingStep;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The lean training step (BF16 activations, offloaded checkpoints, the MLP in token tiles) against today's F32
 * step: offload changes no bit on the CPU or the simulated device; tiles change the F32 step only by the order of
 * a few sums; BF16 activations keep the loss and every gradient within BF16 precision of the F32 step.
 */
class LeanStepTest {
    static final int[] IDS = {1, 5, 9, 17, 33, 2, 60, 0, 41, 12, 12, 30, 7, 8, 44};
    static final int[] TARGETS = {5, 9, -100, 33, 2, 60, 0, 41, 7, -100, 30, 4, 8, 44, 3};
    static final int[] POSITIONS = {0, 1, 2, 3, 9, 10, 11, 12, 13, 30, 31, 32, 33, 34, 35}; // PoSE-like gaps

    /** One step's loss and every parameter's gradient (on the host). */
    record Step(double loss, long count, List<float[]> grads) {}

    /** LoRA on all seven projections (the MLP's too: its tiles then carry weight gradients), the embedding trained. */
    static LlamaModel model(Path base, Backend b, boolean nf4, TrainingMemory memory) throws Exception {
        LlamaModel m = DeviceTrainingTest.qlora(base, b, DType.F32, nf4, "q,k,v,o,gate,up,down");
        m.setTrainingMemory(memory);
        return m;
    }

    static Step step(LlamaModel m) {
        Backend b = m.backend();
        for (Parameter p : m.parameters()) b.fill(p.grad(), 0f);
        Backend.LossSum loss = TrainingStep.run(m, IDS, TARGETS, POSITIONS, 1f / 13);
        List<float[]> grads = new ArrayList<>();
        for (Parameter p : m.parameters()) grads.add(Transfers.toFloatArray(b, p.grad()));
        return new Step(loss.sum(), loss.count(), grads);
    }

    static Step run(Path base, Backend b, boolean nf4, TrainingMemory memory) throws Exception {
        try (LlamaModel m = model(base, b, nf4, memory)) {
            step(m);
            return step(m); // the second step: every buffer reused from the first
        }
    }

    static void assertSameBits(String what, Step a, Step b) {
        assertEquals(a.loss(), b.loss(), what + ": loss");
        for (int i = 0; i < a.grads().size(); i++) assertArrayEquals(a.grads().get(i), b.grads().get(i), what + ": gradient " + i);
    }

    /** |a - b| / |a| over a whole gradient (its L2 norms). */
    static double relativeError(float[] a, float[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - b[i];
            num += d * d;
            den += (double) a[i] * a[i];
        }
        return Math.sqrt(num / den);
    }

    @Test
    void offloadedCheckpointsGiveTheSameBits(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 21, DType.BF16, false);
        for (DType act : new DType[] {DType.F32, DType.BF16}) {
            TrainingMemory kept = new TrainingMemory(act, false, 4), offloaded = new TrainingMemory(act, true, 4);
            assertSameBits("cpu " + act, run(base, CpuBackend.fast(), false, kept), run(base, CpuBackend.fast(), false, offloaded));
            SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
            SimulatedDeviceBackend.Counts c0 = dev.counts();
            Step devKept = run(base, dev, true, kept);
            SimulatedDeviceBackend.Counts c1 = dev.counts();
            Step devOff = run(base, dev, true, offloaded);
            SimulatedDeviceBackend.Counts c2 = dev.counts();
            assertSameBits("simulated device " + act, devKept, devOff);
            // per step, offloaded: layers 0 and 1's inputs go to the host; layer 0's comes back (layer 1's never left)
            assertEquals(2 * 2, c2.minus(c1).downloads() - c1.minus(c0).downloads(), "checkpoints sent to the host in two steps");
            assertEquals(2 * 1, c2.minus(c1).uploads() - c1.minus(c0).uploads(), "checkpoints brought back in two steps");
        }
    }

    @Test
    void mlpTilesChangeTheF32StepOnlyInTheLastBits(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 22, DType.BF16, false);
        Step whole = run(base, CpuBackend.fast(), false, TrainingMemory.f32());
        for (int tile : new int[] {1, 4, 7}) {
            Step tiled = run(base, CpuBackend.fast(), false, TrainingMemory.f32().withMlpTile(tile));
            assertEquals(whole.loss(), tiled.loss(), 1e-6 * Math.abs(whole.loss()), "tile " + tile);
            for (int i = 0; i < whole.grads().size(); i++) {
                assertTrue(relativeError(whole.grads().get(i), tiled.grads().get(i)) < 1e-5, "tile " + tile + ": gradient " + i);
            }
        }
    }

    @Test
    void theLeanStepIsTheF32StepToBf16Precision(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 23, DType.BF16, false);
        for (boolean device : new boolean[] {false, true}) {
            Backend b = device ? new SimulatedDeviceBackend() : CpuBackend.fast();
            Step f32 = run(base, b, device, TrainingMemory.f32());
            Step lean = run(base, b, device, TrainingMemory.lean(true).withMlpTile(4));
            String what = device ? "simulated device, NF4" : "cpu, BF16 base";
            assertEquals(f32.count(), lean.count());
            double lossError = Math.abs(lean.loss() - f32.loss()) / Math.abs(f32.loss());
            double worst = 0;
            for (int i = 0; i < f32.grads().size(); i++) worst = Math.max(worst, relativeError(f32.grads().get(i), lean.grads().get(i)));
            System.out.printf("%s: loss %.6f vs %.6f (relative %.2e); worst gradient error %.2e%n", what, f32.loss(), lean.loss(), lossError, worst);
            assertTrue(lossError < 2e-3, what + ": loss " + lean.loss() + " vs " + f32.loss());
            assertTrue(worst < 6e-2, what + ": worst relative gradient error " + worst);
            assertTrue(worst > 0, what + ": BF16 activations round something");
        }
    }

    @Test
    void aFrozenEmbeddingSkipsTheFirstLayersInputGradient(@TempDir Path dir) throws Exception {
        // Under a frozen embedding nothing reads layer 0's input gradient (autograd does not compute it either):
        // its q, k and v input gradients, attention norm backward and residual add are skipped. The adapters'
        // gradients and the loss must keep their bits: the same step with the embedding trained (which needs that
        // input gradient) gives them.
        Path dense = TinyLlama.write(dir.resolve("dense"), 24, DType.BF16, false);
        Path bnb = dir.resolve("nf4");
        dev.tenfold.qlora.nf4.Nf4Checkpoint.write(bnb, dense);
        for (Path base : new Path[] {dense, bnb}) {
            boolean nf4 = base == bnb;
            Map<String, Integer> trainedCalls = new ConcurrentHashMap<>(), frozenCalls = new ConcurrentHashMap<>();
            try (LlamaModel trained = DeviceTrainingTest.qlora(base, counting(trainedCalls), DType.F32, nf4, "q,k,v,o", true);
                 LlamaModel frozen = DeviceTrainingTest.qlora(base, counting(frozenCalls), DType.F32, nf4, "q,k,v,o", false)) {
                Step t = step(trained);
                trainedCalls.clear();
                Step f = step(frozen);
                assertEquals(t.loss(), f.loss(), base + ": loss");
                List<Parameter> tp = trained.parameters(), fp = frozen.parameters();
                assertEquals("model.embed_tokens.weight", tp.get(0).name());
                assertEquals(tp.size() - 1, fp.size(), base + ": the frozen model trains all but the embedding");
                for (int i = 0; i < fp.size(); i++) {
                    assertEquals(tp.get(i + 1).name(), fp.get(i).name());
                    assertArrayEquals(t.grads().get(i + 1), f.grads().get(i), base + ": " + fp.get(i).name());
                }
                trainedCalls.clear();
                frozenCalls.clear();
                step(trained);
                step(frozen);
                assertEquals(trainedCalls.get("rmsnormBackward") - 1, frozenCalls.get("rmsnormBackward"),
                        base + ": layer 0's attention norm backward is skipped");
                assertTrue(frozenCalls.get("matmul") < trainedCalls.get("matmul"),
                        base + ": layer 0's q, k and v input gradients are skipped: " + frozenCalls.get("matmul") + " products against "
                                + trainedCalls.get("matmul"));
            }
        }
    }

    /** The CPU backend, counting its calls by method name into calls. */
    static Backend counting(Map<String, Integer> calls) {
        Backend cpu = CpuBackend.fast();
        return (Backend) java.lang.reflect.Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> {
                    calls.merge(method.getName(), 1, Integer::sum);
                    try {
                        return method.invoke(cpu, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    @Test
    void keptLayerActivationsGiveTheRecomputedStepsBits(@TempDir Path dir) throws Exception {
        // f32() on the CPU keeps every layer's activations (a tiny model fits); an MLP tile larger than the
        // sequence is the same arithmetic with recomputation: the two must agree to the last bit, in both
        // steps (the second reuses every buffer, kept ones included).
        Path base = TinyLlama.write(dir.resolve("base"), 24, DType.BF16, false);
        try (LlamaModel m = model(base, CpuBackend.fast(), false, TrainingMemory.f32())) {
            assertTrue(TrainingStep.keepsLayerActivations(m, IDS.length), "a tiny model's step keeps its activations");
            m.setTrainingMemory(TrainingMemory.f32().withMlpTile(64));
            assertFalse(TrainingStep.keepsLayerActivations(m, IDS.length), "other memory settings recompute");
        }
        // a backend that wraps the CPU's (as step-peer's op timer does) computes on the CPU: the same choice
        Backend wrapped = (Backend) java.lang.reflect.Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> {
                    try {
                        return method.invoke(CpuBackend.fast(), args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        try (LlamaModel m = model(base, wrapped, false, TrainingMemory.f32())) {
            assertTrue(TrainingStep.keepsLayerActivations(m, IDS.length), "a backend wrapping the CPU's keeps them too");
        }
        assertSameBits("kept vs recomputed", run(base, CpuBackend.fast(), false, TrainingMemory.f32()),
                run(base, CpuBackend.fast(), false, TrainingMemory.f32().withMlpTile(64)));
    }
}
