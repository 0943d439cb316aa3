package dev.tenfold.benchmarks;

import dev.tenfold.llama.LlamaModel;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.Packing;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.TrainingSettings;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * What packing gains: whole trainer steps (forward, loss, backward, AdamW) on one batch of records of
 * mixed lengths, as the recipe's data mixes long records with many short ones, unpacked (one record
 * per pass) and packed into sequences of up to {@code --max-length}, alternating, the median of each.
 * The model is the benchmarks' small random Llama with LoRA r 32 on q,k,v,o.
 *
 * <pre>./tenfold bench packing [SHORT LONG MAX_LENGTH REPS]</pre>  (default 14 short of 32..256 tokens, 2 long of
 * 1024..2048, packed into 2048, 5 steps each)
 */
public final class PackingReport {

    public static void main(String[] args) throws Exception {
        int shortCount = args.length > 0 ? Integer.parseInt(args[0]) : 14;
        int longCount = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int maxLength = args.length > 2 ? Integer.parseInt(args[2]) : 2048;
        int reps = args.length > 3 ? Integer.parseInt(args[3]) : 5;
        SplittableRandom rng = new SplittableRandom(7);
        try (LlamaModel model = RandomLlama.small(1)) {
            int vocab = model.config().vocabSize();
            List<Trainer.Example> batch = new ArrayList<>();
            for (int i = 0; i < shortCount + longCount; i++) {
                int n = i < shortCount ? 32 + rng.nextInt(225) : 1024 + rng.nextInt(1025);
                int[] tokens = new int[n + 1];
                for (int j = 0; j <= n; j++) tokens[j] = rng.nextInt(vocab);
                batch.add(Trainer.Example.nextTokens(tokens, null));
            }
            long tokens = batch.stream().mapToLong(e -> e.ids().length).sum();
            int sequences = Packing.pack(batch, maxLength).size();
            Lora.attach(model, LoraConfig.of(32, 16f).targets("q,k,v,o").seed(3));
            Trainer plain = new Trainer(model, TrainingSettings.defaults().lr(1e-5).maxSteps(reps + 1));
            Trainer packed = new Trainer(model, TrainingSettings.defaults().lr(1e-5).maxSteps(reps + 1).packing(maxLength));
            System.err.printf(Locale.ROOT, "packing: %d records (%d tokens) in %d passes unpacked, %d packed into %d tokens%n",
                    batch.size(), tokens, batch.size(), sequences, maxLength);
            plain.step(batch); // warm-up, both
            packed.step(batch);
            double[] a = new double[reps], b = new double[reps];
            for (int r = 0; r < reps; r++) { // alternating, so that the machine's load falls on both alike
                a[r] = plain.step(batch).seconds();
                b[r] = packed.step(batch).seconds();
                System.err.printf(Locale.ROOT, "  step %d: unpacked %.2f s, packed %.2f s%n", r + 1, a[r], b[r]);
            }
            double ma = GpuWork.median(a), mb = GpuWork.median(b);
            System.out.printf(Locale.ROOT, "| records | tokens | passes unpacked | passes packed | unpacked tok/s | packed tok/s | packed / unpacked |%n");
            System.out.printf(Locale.ROOT, "|---:|---:|---:|---:|---:|---:|---:|%n");
            System.out.printf(Locale.ROOT, "| %d | %,d | %d | %d | %,.0f | %,.0f | %.2fx |%n", batch.size(), tokens, batch.size(), sequences,
                    tokens / ma, tokens / mb, ma / mb);
        }
    }

}
