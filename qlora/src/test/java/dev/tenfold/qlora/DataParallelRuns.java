package dev.tenfold.qlora;

import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The data-parallel tests' run, the same in a thread (in-process ranks), in an mpirun process
 * ({@link DataParallelRankMain}) and alone: a tiny model with LoRA (dropout on) and a trained
 * embedding, sequences of unequal lengths in batches of 5 (which 2 and 4 ranks do not divide).
 */
final class DataParallelRuns {
    private DataParallelRuns() {}

    static final int STEPS = 4, BATCH = 5;

    /** Sequences of lengths 4 to 19, the second half of each repeating the first. */
    static List<Trainer.Example> data() {
        SplittableRandom rng = new SplittableRandom(11);
        List<Trainer.Example> out = new ArrayList<>();
        for (int n = 0; n < STEPS * BATCH; n++) {
            int half = 2 + rng.nextInt(9);
            int[] seq = new int[2 * half + 1];
            for (int i = 0; i < half; i++) seq[i] = seq[i + half] = 4 + rng.nextInt(50);
            seq[2 * half] = 2;
            int[] targets = new int[2 * half];
            for (int i = 0; i < targets.length; i++) targets[i] = i + 1 >= half ? seq[i + 1] : -100;
            out.add(new Trainer.Example(java.util.Arrays.copyOf(seq, 2 * half), targets, null));
        }
        return out;
    }

    static LlamaModel model(Path base) throws IOException {
        LlamaModel model = LlamaLoader.load(base, CpuBackend.fast());
        Lora.attach(model, LoraConfig.of(4, 8f).targets("q,k,v,o").dropout(0.1f).trainEmbeddings(true).seed(5));
        return model;
    }

    static Trainer trainer(LlamaModel model) {
        List<Trainer.Example> data = data();
        TrainingSettings s = TrainingSettings.defaults().lr(2e-2).warmupSteps(1).maxSteps(STEPS).maxGradNorm(0.5).saveEvery(0);
        return new Trainer(model, s, data, TrainerTest.plan(data.size(), BATCH));
    }

    /** Every trainable value, in order: what the replicas and the runs are compared on. */
    static float[] weights(LlamaModel model) {
        int n = 0;
        for (Parameter p : model.parameters()) n += (int) p.value().numel();
        float[] out = new float[n];
        int at = 0;
        for (Parameter p : model.parameters()) {
            float[] v = p.value().toFloatArray();
            System.arraycopy(v, 0, out, at, v.length);
            at += v.length;
        }
        return out;
    }

    /**
     * Trains as rank {@code comm.rank()}; returns the weights after every step (the last is the
     * run's result) and writes them to {@code out} when it is given.
     */
    static List<float[]> train(Path base, Communicator comm, Path out) throws IOException {
        try (LlamaModel model = model(base)) {
            Trainer t = trainer(model);
            if (comm != null) t.dataParallel(comm);
            List<float[]> steps = new ArrayList<>();
            t.addListener(m -> steps.add(weights(model)));
            t.fit();
            if (out != null) {
                try (DataOutputStream o = new DataOutputStream(Files.newOutputStream(out))) {
                    o.writeInt(steps.size());
                    for (float[] w : steps) {
                        o.writeInt(w.length);
                        for (float f : w) o.writeInt(Float.floatToRawIntBits(f));
                    }
                }
            }
            return steps;
        }
    }

    static List<float[]> read(Path file) throws IOException {
        try (var in = new java.io.DataInputStream(Files.newInputStream(file))) {
            List<float[]> steps = new ArrayList<>();
            int n = in.readInt();
            for (int s = 0; s < n; s++) {
                float[] w = new float[in.readInt()];
                for (int i = 0; i < w.length; i++) w[i] = Float.intBitsToFloat(in.readInt());
                steps.add(w);
            }
            return steps;
        }
    }
}
