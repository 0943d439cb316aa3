package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Packed records train exactly as the same records one by one: attention stays inside each record. */
class PackingTest {

    static Trainer.Example record(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] tokens = new int[n + 1];
        for (int i = 0; i < tokens.length; i++) tokens[i] = 4 + rng.nextInt(50);
        return Trainer.Example.nextTokens(tokens, null);
    }

    @Test
    void firstFitInBatchOrderWithPositionsRestartingPerRecord() {
        List<Trainer.Example> batch = List.of(record(5, 1), record(9, 2), record(4, 3), record(20, 4), record(1, 5));
        List<Trainer.Example> packed = Packing.pack(batch, 10);
        // 5 -> seq 0; 9 -> seq 1; 4 -> seq 0 (9 tokens); 20 alone; 1 -> seq 0 (10 tokens)
        assertEquals(3, packed.size());
        Trainer.Example first = packed.get(0);
        assertArrayEquals(new int[] {0, 5, 9}, first.recordStarts());
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 0, 1, 2, 3, 0}, first.positions());
        assertArrayEquals(batch.get(2).targets(), java.util.Arrays.copyOfRange(first.targets(), 5, 9));
        assertArrayEquals(batch.get(4).ids(), java.util.Arrays.copyOfRange(first.ids(), 9, 10));
        assertSame(batch.get(1), packed.get(1), "a record alone is left as it is");
        assertSame(batch.get(3), packed.get(2), "a record longer than the budget runs alone");
        assertThrows(IllegalArgumentException.class, () -> Packing.pack(packed, 10));
        assertThrows(InvalidSettingException.class, () -> TrainingSettings.defaults().packing(-1));
    }

    /** One optimizer step on the batch, packed or not; returns the loss and keeps the (clipped) gradients it applied. */
    static double step(Path base, List<Trainer.Example> batch, int packing, List<float[]> grads) throws Exception {
        try (LlamaModel model = LlamaLoader.load(base, CpuBackend.fast())) {
            Lora.attach(model, LoraConfig.of(8, 16f).targets("q,k,v,o").seed(42));
            model.trainEmbedding();
            Trainer trainer = new Trainer(model, TrainingSettings.defaults().lr(1e-2).maxSteps(1).packing(packing));
            double loss = trainer.step(batch).loss();
            for (Parameter p : trainer.parameters()) grads.add(p.grad().toFloatArray());
            return loss;
        }
    }

    @Test
    void aPackedStepIsTheUnpackedBatchsStep(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 31, DType.F32, false);
        List<Trainer.Example> batch = new ArrayList<>();
        int[] lengths = {7, 30, 12, 3, 18, 40};
        for (int i = 0; i < lengths.length; i++) batch.add(record(lengths[i], 100 + i));
        List<float[]> plain = new ArrayList<>(), packed = new ArrayList<>();
        double lossPlain = step(base, batch, 0, plain);
        double lossPacked = step(base, batch, 48, packed);
        assertTrue(Packing.pack(batch, 48).size() < batch.size());
        assertEquals(lossPlain, lossPacked, 1e-6 * Math.abs(lossPlain));
        double worst = 0, largest = 0;
        for (int i = 0; i < plain.size(); i++) {
            for (int j = 0; j < plain.get(i).length; j++) {
                worst = Math.max(worst, Math.abs(plain.get(i)[j] - packed.get(i)[j]));
                largest = Math.max(largest, Math.abs(plain.get(i)[j]));
            }
        }
        // a leak of attention across records changes gradients at the scale of the gradients themselves
        assertTrue(largest > 0);
        assertTrue(worst < 1e-5 * largest, "largest gradient difference " + worst + " of gradients up to " + largest);
    }
}
