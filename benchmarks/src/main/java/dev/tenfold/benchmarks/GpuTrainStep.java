package dev.tenfold.benchmarks;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cuda.CudaAllocator;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.cuda.CudaDriver;
import dev.tenfold.llama.HfSchema;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.LrSchedule;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.TrainingSettings;
import dev.tenfold.qlora.nf4.Nf4;
import dev.tenfold.qlora.nf4.Nf4Linear;
import dev.tenfold.qlora.nf4.Nf4Tensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * One QLoRA training step of a Llama-3-8B-shaped model on a GPU, with random weights: the frozen base in
 * NF4 with double quantization (random packed codes and random absmax indices, no real quantization: speed
 * does not depend on the values), BF16 embedding and lm_head, LoRA r=32 alpha=16 on q, k, v, o, then per
 * step the trainer's own {@link Trainer#step} on one sequence: gradients zeroed, {@link TrainingStep#run}
 * (checkpointing per layer, chunked loss), the global gradient norm, clipping and AdamW. Times whole steps
 * (wall clock, after a synchronize) and reads the allocator's peaks.
 */
final class GpuTrainStep {
    private GpuTrainStep() {}

    static final String LLAMA3_8B = """
            {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 8, "vocab_size": 128256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
             "max_position_embeddings": 8192}""";
    static final String LLAMA3_8B_DESCRIPTION = "Llama-3-8B shape (hidden 4096, 32 layers, 32/8 heads of 128, MLP 14336, vocab 128256)";

    /** For the fake CUDA stack: the same code path at toy size (head dim 64, as the flash kernels need). */
    static final String TINY = """
            {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 512, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
             "max_position_embeddings": 8192}""";
    static final String TINY_DESCRIPTION = "toy Llama (hidden 256, 2 layers, 4/2 heads of 64, MLP 512, vocab 512)";

    static final int LORA_RANK = 32;
    static final float LORA_ALPHA = 16f;

    /** What a run measured. Byte counts are the allocator's (in use: live tensors; reserved: in use + cached). */
    record Result(String description, int tokens, double[] stepSeconds, double loss, double buildSeconds, long weightBytes,
                  long peakInUseBytes, long peakReservedBytes, long deviceUsedBytes, long deviceTotalBytes, long trainableParams) {
        double medianSeconds() { return GpuWork.median(stepSeconds); }

        double tokensPerSecond() { return tokens / medianSeconds(); }
    }

    /**
     * Builds the model on {@code gpu}, runs one untimed step and {@code timedSteps} timed ones of {@code tokens}
     * tokens; {@code phase} hears the name of each phase (for a watchdog), {@code log} gets progress lines.
     */
    static Result run(CudaBackend gpu, String configJson, String description, int tokens, int timedSteps, long seed,
                      Consumer<String> phase, Consumer<String> log) throws IOException {
        if (tokens < 1 || timedSteps < 1) throw new IllegalArgumentException("train step: tokens and steps must be positive");
        LlamaConfig c = LlamaConfig.parse(configJson);
        phase.accept("qlora_step: building the random model");
        gpu.allocator().emptyCache(); // what earlier benchmarks left cached goes back to the driver first
        long b0 = System.nanoTime();
        try (LlamaModel model = build(gpu, c, seed)) {
            Lora.attach(model, LoraConfig.of(LORA_RANK, LORA_ALPHA).targets("q,k,v,o").seed(seed + 1));
            // the trainer allocates AdamW's moments (closed with the model); a constant rate, as the recipe's at its start
            Trainer trainer = new Trainer(model, TrainingSettings.defaults().lr(5e-5).schedule(LrSchedule.Kind.CONSTANT).maxSteps(timedSteps + 1));
            long trainable = 0;
            for (Parameter p : trainer.parameters()) trainable += p.value().numel();
            Trainer.Example example = new Trainer.Example(DeviceFill.randomInts(tokens, c.vocabSize(), seed + 2),
                    DeviceFill.randomInts(tokens, c.vocabSize(), seed + 3), TrainingStep.consecutive(tokens));
            gpu.synchronize();
            double buildSeconds = (System.nanoTime() - b0) / 1e9;
            CudaAllocator allocator = gpu.allocator();
            allocator.emptyCache();
            allocator.resetPeaks();
            long weights = allocator.stats().inUseBytes();
            log.accept(String.format("qlora_step: model built in %.1f s, %.2f GiB on the GPU, %,d trainable parameters",
                    buildSeconds, weights / (double) GpuWork.GiB, trainable));

            phase.accept("qlora_step: warm-up step");
            double loss = step(gpu, trainer, example);
            log.accept(String.format("qlora_step: warm-up step done, loss %.4f", loss));
            double[] seconds = new double[timedSteps];
            for (int i = 0; i < timedSteps; i++) {
                phase.accept("qlora_step: timed step " + (i + 1));
                long t0 = System.nanoTime();
                loss = step(gpu, trainer, example);
                seconds[i] = (System.nanoTime() - t0) / 1e9;
                log.accept(String.format("qlora_step: step %d: %.3f s, %.0f tokens/s, loss %.4f", i + 1, seconds[i],
                        tokens / seconds[i], loss));
            }
            CudaAllocator.Stats s = allocator.stats();
            CudaDriver.MemoryInfo mi = gpu.memoryInfo();
            return new Result(description, tokens, seconds, loss, buildSeconds, weights, s.peakInUseBytes(), s.peakReservedBytes(),
                    mi.total() - mi.free(), mi.total(), trainable);
        }
    }

    /** One optimizer step of the trainer on one sequence; returns the mean loss (after a synchronize). */
    static double step(CudaBackend gpu, Trainer trainer, Trainer.Example example) {
        Trainer.StepMetrics m = trainer.step(List.of(example));
        gpu.synchronize();
        if (m.diverged()) throw new IllegalStateException("qlora_step: " + m);
        return m.loss();
    }

    /**
     * The model: every layer's seven projections NF4 (double-quantized, as the recipe's base), uploaded
     * per layer from one random host tensor per projection shape; embedding and lm_head BF16, norms 1.
     */
    static LlamaModel build(CudaBackend gpu, LlamaConfig c, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int h = c.hiddenSize();
        List<AutoCloseable> host = new ArrayList<>();
        try {
            HfSchema.Projection[] projections = HfSchema.Projection.values();
            Nf4Tensor[] w = new Nf4Tensor[projections.length];
            for (HfSchema.Projection p : projections) w[p.ordinal()] = randomNf4(rng, p.out(c), p.in(c), host);
            Tensor ones = hostOnes(h, host);
            LlamaModel.Layer[] layers = new LlamaModel.Layer[c.numLayers()];
            for (int i = 0; i < layers.length; i++) {
                Linear[] linears = new Linear[w.length];
                for (int j = 0; j < w.length; j++) linears[j] = nf4(w[j]);
                layers[i] = new LlamaModel.Layer(ones, ones, linears);
            }
            Tensor embedding = hostBf16(rng, c.vocabSize(), h, 0.05f, host);
            Tensor output = hostBf16(rng, c.vocabSize(), h, (float) (1 / Math.sqrt(h)), host);
            // the constructor uploads every weight to the GPU (once per layer); the host copies are freed below
            return new LlamaModel(c, gpu, embedding, layers, ones, output, List.of());
        } finally {
            for (AutoCloseable a : host) {
                try {
                    a.close();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    private static Linear nf4(Nf4Tensor w) { return new Nf4Linear(w, DType.BF16, (int) w.rows()); }

    /**
     * A [rows, cols] NF4 weight with random codes: packed bytes and absmax indices uniform, nested absmax
     * chosen so that the block scales lie in [0.5, 1.5] / sqrt(cols) (outputs keep the inputs' scale).
     */
    static Nf4Tensor randomNf4(SplittableRandom rng, long rows, long cols, List<AutoCloseable> owned) {
        long n = rows * cols, blocks = n / Nf4.BLOCK, nested = Math.ceilDiv(blocks, Nf4.NESTED_BLOCK);
        Tensor packed = hostBytes(rng, n / 2, owned), absmax = hostBytes(rng, blocks, owned);
        float s = (float) (1 / Math.sqrt(cols));
        float[] nestedValues = new float[(int) nested];
        java.util.Arrays.fill(nestedValues, 0.5f * s); // dynamic code in [-1, 1] times 0.5 s, plus the offset s
        Tensor nestedAbsmax = Tensor.of(nestedValues, nested);
        owned.add(nestedAbsmax);
        Nf4Tensor t = Nf4Tensor.of(rows, cols, packed, absmax, nestedAbsmax, Nf4.DYNAMIC_MAP, s, DType.BF16);
        return t;
    }

    /** n random bytes on the host: a 1 MiB random pattern repeated. */
    private static Tensor hostBytes(SplittableRandom rng, long n, List<AutoCloseable> owned) {
        Tensor t = Tensor.allocate(DType.U8, n);
        owned.add(t);
        byte[] pattern = new byte[(int) Math.min(n, DeviceFill.PATTERN)];
        rng.nextBytes(pattern);
        MemorySegment d = t.data();
        for (long off = 0; off < n; off += pattern.length) {
            MemorySegment.copy(pattern, 0, d, ValueLayout.JAVA_BYTE, off, (int) Math.min(pattern.length, n - off));
        }
        return t;
    }

    /** A [rows, cols] BF16 host tensor of uniform values in [-scale, scale): a random pattern repeated. */
    private static Tensor hostBf16(SplittableRandom rng, long rows, long cols, float scale, List<AutoCloseable> owned) {
        long n = rows * cols;
        Tensor t = Tensor.allocate(DType.BF16, rows, cols);
        owned.add(t);
        int p = (int) Math.min(n, DeviceFill.PATTERN);
        try (Tensor pattern = DeviceFill.pattern(DType.BF16, p, rng, scale)) {
            MemorySegment src = pattern.data(), d = t.data();
            for (long off = 0; off < n; off += p) {
                long len = Math.min(p, n - off);
                MemorySegment.copy(src, 0, d, 2 * off, 2 * len);
            }
        }
        return t;
    }

    private static Tensor hostOnes(int n, List<AutoCloseable> owned) {
        Tensor t = Tensor.allocate(DType.F32, n);
        t.fill(1f);
        owned.add(t);
        return t;
    }
}
