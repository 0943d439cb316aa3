package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.SimulatedDeviceBackend;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The model on a backend whose device is not the host (simulated: any host access of a device
 * tensor throws, and every op refuses a host argument) computes exactly what it computes on the
 * CPU: the same ops run underneath, so logits, tokens and losses agree bit for bit.
 */
class DeviceModelTest {
    private static final int[] PROMPT = {1, 5, 9, 17, 33, 2, 60, 0, 41, 7, 7, 12, 50, 3, 29, 8, 44};

    @Test
    void prefillAndCachedGreedyDecodingGiveTheCpusLogitsAndTokens(@TempDir Path dir) throws Exception {
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            for (boolean tied : new boolean[] {false, true}) {
                String what = dtype + (tied ? " tied" : " untied");
                Path m = TinyLlama.write(dir.resolve(what.replace(' ', '-')), 21, dtype, tied);
                SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
                try (LlamaModel cpu = LlamaLoader.load(m, CpuBackend.fast()); LlamaModel gpu = LlamaLoader.load(m, dev)) {
                    assertEquals(Device.cuda(0), gpu.embedding().device(), what);
                    assertEquals(Device.cuda(0), gpu.finalNorm().device(), what);
                    assertEquals(Device.cuda(0), gpu.layer(1).mlpNorm.device(), what);
                    assertEquals(Device.cuda(0), ((DenseLinear) gpu.layer(1).down).weight().device(), what);
                    assertEquals(tied, gpu.outputIsEmbedding(), what);
                    cpu.setChunkTokens(5); // the prompt in four chunks
                    gpu.setChunkTokens(5);
                    try (KvCache cc = new KvCache(cpu, 40); KvCache gc = new KvCache(gpu, 40)) {
                        assertEquals(Device.cuda(0), gc.device());
                        float[] a = cpu.forward(PROMPT, cc, null), b = gpu.forward(PROMPT, gc, null);
                        assertArrayEquals(a, b, what + ": prefill logits");
                        for (int step = 0; step < 8; step++) {
                            int next = Sampler.argmax(a);
                            SimulatedDeviceBackend.Counts before = dev.counts();
                            a = cpu.forward(new int[] {next}, cc, null);
                            b = gpu.forward(new int[] {next}, gc, null);
                            SimulatedDeviceBackend.Counts c = dev.counts().minus(before);
                            assertArrayEquals(a, b, what + ": logits of decode step " + step);
                            // per decoded token: the token id, its position and the RoPE frequencies go up; one logits row comes back
                            assertEquals(3, c.uploads(), what);
                            assertEquals(1, c.downloads(), what);
                            assertEquals(4L * TinyLlama.VOCAB, c.downloadBytes(), what);
                            assertEquals(before.live(), c.live(), what + ": the step's scratch is freed");
                        }
                    }
                    List<Integer> x = Generator.generate(cpu, PROMPT, GenerationSettings.greedy(12).stopIds(Set.of()));
                    List<Integer> y = Generator.generate(gpu, PROMPT, GenerationSettings.greedy(12).stopIds(Set.of()));
                    assertEquals(x, y, what + ": generated tokens");
                    List<Integer> xs = Generator.generate(cpu, PROMPT, GenerationSettings.greedy(12).sampling(0.8f, 0.9f, 5).stopIds(Set.of()));
                    List<Integer> ys = Generator.generate(gpu, PROMPT, GenerationSettings.greedy(12).sampling(0.8f, 0.9f, 5).stopIds(Set.of()));
                    assertEquals(xs, ys, what + ": sampled tokens");
                }
                assertEquals(0, dev.counts().live(), what + ": every device tensor is freed with the model");
            }
        }
    }

    @Test
    void perplexityIsTheCpus(@TempDir Path dir) throws Exception {
        Path m = TinyLlama.write(dir, 4, DType.BF16, false);
        List<int[]> seqs = List.of(PROMPT, new int[] {3, 3, 9, 14, 15, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3},
                new int[] {7, 1});
        SimulatedDeviceBackend dev = new SimulatedDeviceBackend();
        try (LlamaModel cpu = LlamaLoader.load(m, CpuBackend.fast()); LlamaModel gpu = LlamaLoader.load(m, dev)) {
            cpu.setChunkTokens(4);
            gpu.setChunkTokens(4);
            Backend.LossSum a = Perplexity.evaluate(cpu, seqs, 10, 4), b = Perplexity.evaluate(gpu, seqs, 10, 4);
            assertEquals(a.count(), b.count());
            assertEquals(a.sum(), b.sum(), "bit for bit");
            assertTrue(a.count() > 30 && Double.isFinite(a.sum()));
        }
        assertEquals(0, dev.counts().live());
    }

    @Test
    void aHostCacheForADeviceModelIsAClearError(@TempDir Path dir) throws Exception {
        Path m = TinyLlama.write(dir, 4, DType.BF16, false);
        try (LlamaModel gpu = LlamaLoader.load(m, new SimulatedDeviceBackend()); KvCache host = new KvCache(gpu.config(), 8)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.forward(new int[] {1, 2}, host, null));
            assertTrue(e.getMessage().contains("KV cache is on cpu but the model computes on cuda:0"), e.getMessage());
        }
    }
}
