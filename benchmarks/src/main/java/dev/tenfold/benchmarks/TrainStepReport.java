package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.qlora.Lora;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One LoRA training step (forward with checkpointing, chunked loss, backward, AdamW excluded) on
 * a small Llama configuration with random BF16 weights, at sequence lengths 2048, 4096 and 8192:
 * tokens/s and the process's peak resident memory (heap and native, VmHWM) above the baseline of
 * weights + adapters. The long-context rule says that extra memory must grow linearly with the
 * sequence (nothing seq x seq, nothing seq x vocab). Run in a fresh JVM (VmHWM only grows), from
 * the shortest length up, with the heap committed up front ({@code -Xms = -Xmx, -XX:+AlwaysPreTouch})
 * so that the growth of the resident set is native memory. Prints one JSON object.
 */
public final class TrainStepReport {
    static final String CONFIG = """
            {"hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 8, "num_attention_heads": 8,
             "num_key_value_heads": 2, "vocab_size": 32000, "rope_theta": 500000.0, "max_position_embeddings": 8192}""";

    public static void main(String[] args) throws Exception {
        int[] lengths = args.length > 0 ? java.util.Arrays.stream(args).mapToInt(Integer::parseInt).toArray() : new int[] {2048, 4096, 8192};
        LlamaConfig c = LlamaConfig.parse(new ObjectMapper().readTree(CONFIG));
        SplittableRandom rng = new SplittableRandom(1);
        List<Tensor> owned = new ArrayList<>();
        int h = c.hiddenSize(), qo = c.numHeads() * c.headDim(), kvo = c.numKvHeads() * c.headDim(), m = c.intermediateSize();
        LlamaModel.Layer[] layers = new LlamaModel.Layer[c.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            layers[i] = new LlamaModel.Layer(ones(h, owned), dense(rng, qo, h, owned), dense(rng, kvo, h, owned), dense(rng, kvo, h, owned),
                    dense(rng, h, qo, owned), ones(h, owned), dense(rng, m, h, owned), dense(rng, m, h, owned), dense(rng, h, m, owned));
        }
        Tensor emb = bf16(rng, c.vocabSize(), h, owned), out = bf16(rng, c.vocabSize(), h, owned);
        ObjectNode report = new ObjectMapper().createObjectNode();
        try (LlamaModel model = new LlamaModel(c, CpuBackend.fast(), emb, layers, ones(h, owned), out, owned)) {
            Lora.attach(model, Lora.parseTargets("q,k,v,o"), 32, 16f, false, 3);
            List<Parameter> params = model.parameters();
            System.gc();
            long baseline = peakRss();
            report.put("config", "hidden 512, 8 layers, 8/2 heads of 64, MLP 1536, vocab 32000, BF16 weights, LoRA r 32 on q,k,v,o");
            report.put("baseline_rss_mb", baseline / 1e6);
            ArrayNode rows = report.putArray("steps");
            for (int t : lengths) {
                int[] ids = new int[t], targets = new int[t];
                for (int i = 0; i < t; i++) {
                    ids[i] = rng.nextInt(c.vocabSize());
                    targets[i] = rng.nextInt(c.vocabSize());
                }
                double best = Double.MAX_VALUE;
                for (int rep = 0; rep < 2; rep++) {
                    params.forEach(Parameter::zeroGrad);
                    long t0 = System.nanoTime();
                    TrainingStep.run(model, ids, targets, TrainingStep.consecutive(t), 1f / t);
                    best = Math.min(best, (System.nanoTime() - t0) / 1e9);
                }
                long peak = peakRss();
                Runtime rt = Runtime.getRuntime();
                rows.addObject().put("seq", t).put("seconds", best).put("tokens_per_s", t / best)
                        .put("peak_rss_mb", peak / 1e6).put("above_baseline_mb", (peak - baseline) / 1e6)
                        .put("heap_used_mb", (rt.totalMemory() - rt.freeMemory()) / 1e6);
                System.err.printf("seq %d: %.2f s/step, %.0f tok/s, peak RSS %.0f MB (+%.0f MB)%n", t, best, t / best, peak / 1e6,
                        (peak - baseline) / 1e6);
            }
        }
        System.out.println(report);
    }

    /** VmHWM of this process in bytes (Linux), or -1. */
    static long peakRss() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
        return -1;
    }

    private static DenseLinear dense(SplittableRandom rng, int out, int in, List<Tensor> owned) {
        return new DenseLinear(bf16(rng, out, in, owned));
    }

    private static Tensor bf16(SplittableRandom rng, long rows, long cols, List<Tensor> owned) {
        Tensor t = Tensor.allocate(DType.BF16, rows, cols);
        float[] v = new float[Math.toIntExact(rows * cols)];
        float s = (float) (1 / Math.sqrt(cols));
        for (int i = 0; i < v.length; i++) v[i] = (float) (rng.nextDouble() * 2 - 1) * s;
        t.copyFrom(v);
        owned.add(t);
        return t;
    }

    private static Tensor ones(int n, List<Tensor> owned) {
        Tensor t = Tensor.allocate(DType.F32, n);
        t.fill(1f);
        owned.add(t);
        return t;
    }
}
