package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
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

    public static void main(String[] args) throws Exception {
        int[] lengths = args.length > 0 ? java.util.Arrays.stream(args).mapToInt(Integer::parseInt).toArray() : new int[] {2048, 4096, 8192};
        SplittableRandom rng = new SplittableRandom(1);
        ObjectNode report = new ObjectMapper().createObjectNode();
        try (LlamaModel model = RandomLlama.small(1)) {
            LlamaConfig c = model.config();
            Lora.attach(model, LoraConfig.of(32, 16f).targets("q,k,v,o").seed(3));
            List<Parameter> params = model.parameters();
            System.gc();
            long baseline = peakRss();
            report.put("config", RandomLlama.SMALL_DESCRIPTION + ", LoRA r 32 on q,k,v,o");
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
}
