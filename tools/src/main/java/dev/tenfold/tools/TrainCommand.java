package dev.tenfold.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.engine.DType;
import dev.tenfold.qlora.FullTraining;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LrSchedule;
import dev.tenfold.qlora.PeftAdapter;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.data.JsonlDataset;
import dev.tenfold.qlora.data.LengthGroupedBatches;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Fine-tunes LoRA adapters (and optionally the embedding) on JSON-lines data; the output folder is a PEFT adapter. */
@Command(name = "train", mixinStandardHelpOptions = true, description = {
        "Fine-tune LoRA adapters on JSON-lines data; the output folder is a PEFT adapter.",
        "--recipe llama3-80k sets the paper's values: rope_theta 200e6, LoRA r 32 / alpha 16 on q,k,v,o, trained embedding,",
        "NF4 base, lr 5e-5 linear to 0, batch 8, 1 epoch, max length 81920. Flags given explicitly win over the recipe."})
final class TrainCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    @Option(names = "--data", required = true, paramLabel = "FILE.jsonl", description = "Training data (repeat to mix several files).")
    List<Path> data;

    @Option(names = "--output", paramLabel = "DIR", description = "Where the adapter, checkpoints, metrics.jsonl and loss.png go.")
    Path output;

    @Option(names = "--recipe", paramLabel = "NAME", description = "Preset: llama3-80k.") String recipe;
    @Option(names = "--lora-r", paramLabel = "R") Integer loraR;
    @Option(names = "--lora-alpha", paramLabel = "A") Float loraAlpha;
    @Option(names = "--lora-dropout", paramLabel = "P") Float loraDropout;
    @Option(names = "--lora-targets", paramLabel = "LIST", description = "Among q,k,v,o,gate,up,down (default q,k,v,o).") String loraTargets;
    @Option(names = "--rslora", description = "Scale by alpha/sqrt(r) (rank-stabilised LoRA).") boolean rsLora;
    @Option(names = "--train-embeddings", description = "Train the input embedding as a whole (PEFT modules_to_save).") Boolean trainEmbeddings;
    @Option(names = "--quantize", paramLabel = "nf4|none", description = "Base weights in NF4 (QLoRA) or as stored.") String quantize;
    @Option(names = "--full", description = "Train every weight (F32 master copies); the output is a whole model folder, F32.") boolean full;
    @Option(names = "--lr", paramLabel = "LR") Double lr;
    @Option(names = "--lr-schedule", paramLabel = "constant|linear|cosine") String lrSchedule;
    @Option(names = "--warmup-steps", paramLabel = "N") Integer warmupSteps;
    @Option(names = "--batch-size", paramLabel = "N", description = "Sequences per optimizer step (gradients accumulated over them).") Integer batchSize;
    @Option(names = "--micro-batch-size", paramLabel = "N", defaultValue = "1",
            description = "Sequences per forward pass; tenfold runs one at a time (1).") int microBatchSize;
    @Option(names = "--epochs", paramLabel = "N") Integer epochs;
    @Option(names = "--max-steps", paramLabel = "N", description = "Stop after N optimizer steps (overrides --epochs).") Integer maxSteps;
    @Option(names = "--max-length", paramLabel = "N", description = "Chat records longer are dropped; text records are cut.") Integer maxLength;
    @Option(names = "--seed", defaultValue = "42") long seed;
    @Option(names = "--weight-decay", defaultValue = "0") float weightDecay;
    @Option(names = "--adam-beta1", defaultValue = "0.9") float beta1;
    @Option(names = "--adam-beta2", defaultValue = "0.999") float beta2;
    @Option(names = "--adam-eps", defaultValue = "1e-8") float adamEps;
    @Option(names = "--max-grad-norm", defaultValue = "1.0", description = "Clip the global gradient norm (0: off).") double maxGradNorm;
    @Option(names = "--group-by-length", negatable = true, defaultValue = "true", fallbackValue = "true") boolean groupByLength;
    @Option(names = "--init-adapter", paramLabel = "DIR", description = "Start from this PEFT adapter's weights.") Path initAdapter;
    @Option(names = "--resume", paramLabel = "DIR", description = "Continue the run whose output folder is DIR from its newest checkpoint.") Path resume;
    @Option(names = "--save-every", paramLabel = "N", defaultValue = "0", description = "Checkpoint every N steps (0: only the end).") int saveEvery;
    @Option(names = "--skip-bad-lines", description = "Skip malformed data lines (counted) instead of refusing to start.") boolean skipBadLines;
    @Option(names = "--json", description = "Print one JSON summary object on standard output at the end.") boolean json;
    @Option(names = "--step-delay-ms", hidden = true, defaultValue = "0", description = "Test hook: pause after each step.") int stepDelayMs;

    @Override
    public Integer call() throws Exception {
        applyRecipe();
        if (loraDropout == null) loraDropout = 0f;
        if (!(loraDropout >= 0 && loraDropout < 1)) throw new IllegalArgumentException("--lora-dropout must be in [0, 1), got " + loraDropout);
        if (microBatchSize != 1) throw new IllegalArgumentException("--micro-batch-size: tenfold processes one sequence at a time; use 1");
        boolean nf4 = switch (quantize.toLowerCase(Locale.ROOT)) {
            case "nf4" -> true;
            case "none" -> false;
            default -> throw new IllegalArgumentException("--quantize " + quantize + ": choose nf4 or none");
        };
        if (resume != null) {
            if (output != null && !output.equals(resume)) throw new IllegalArgumentException("--resume DIR continues in DIR; leave --output out or make it the same");
            output = resume;
        }
        if (output == null) throw new IllegalArgumentException("--output DIR is required");
        if (full && nf4) throw new IllegalArgumentException("--full trains dense weights: use --quantize none");
        if (resume == null && (Files.exists(output.resolve(PeftAdapter.WEIGHTS)) || Files.exists(output.resolve("config.json")))) {
            throw new IllegalArgumentException(output + " already holds an adapter; choose another --output or continue it with --resume " + output);
        }
        Set<String> targets = Lora.parseTargets(loraTargets);
        Tokenizer tok = model.tokenizer();
        long t0 = System.nanoTime();
        try (LlamaModel m = model.load(nf4)) {
            JsonlDataset ds = JsonlDataset.load(tok, new JsonlDataset.Options().maxLength(maxLength).skipBadLines(skipBadLines)
                    .vocabSize(m.config().vocabSize()), data);
            System.err.println("tenfold: data: " + ds.report().summary());
            List<Trainer.Example> examples = Trainer.examples(ds);
            int[] lengths = ds.lengths();
            if (examples.isEmpty()) throw new IllegalArgumentException("no usable training records in " + data);
            LengthGroupedBatches batches = groupByLength ? LengthGroupedBatches.grouped(lengths, batchSize, seed)
                    : LengthGroupedBatches.shuffled(lengths, batchSize, seed);
            PeftAdapter.Config cfg = null;
            if (full) {
                if (initAdapter != null) throw new IllegalArgumentException("--init-adapter is for LoRA training, not --full");
                FullTraining.makeTrainable(m);
            } else if (initAdapter != null) {
                cfg = PeftAdapter.load(initAdapter, m);
                System.err.println("tenfold: starting from adapter " + initAdapter);
            } else {
                Lora.attach(m, targets, loraR, loraAlpha, rsLora, seed);
                Lora.setDropout(m, loraDropout);
                if (trainEmbeddings) m.trainEmbedding();
                cfg = new PeftAdapter.Config(model.model.toAbsolutePath().toString(), loraR, loraAlpha, loraDropout, targets, trainEmbeddings,
                        rsLora, m.config().ropeTheta());
            }
            Trainer.Settings s = new Trainer.Settings(lr, LrSchedule.parse(lrSchedule), warmupSteps, epochs, maxSteps, beta1, beta2,
                    adamEps, weightDecay, maxGradNorm, saveEvery, 2, seed);
            PeftAdapter.Config adapterCfg = cfg;
            Path base = model.model;
            Trainer.OutputWriter writer = full ? (dir, mm) -> FullTraining.save(dir, mm, base, DType.F32)
                    : (dir, mm) -> PeftAdapter.save(dir, mm, adapterCfg);
            Trainer trainer = new Trainer(m, examples, batches::plan, s, output, writer);
            long trainable = m.parameters().stream().mapToLong(p -> p.value().numel()).sum();
            System.err.printf("tenfold: %,d trainable parameters, %d steps (%d per epoch), rope_theta %s%n", trainable,
                    trainer.totalSteps(), trainer.stepsPerEpoch(), m.config().ropeTheta());
            List<Double> losses = new ArrayList<>();
            ProgressBar bar = new ProgressBar(System.err);
            int from = trainer.train(resume != null, step -> {
                losses.add(step.loss());
                bar.onStep(step);
                if (stepDelayMs > 0) {
                    try {
                        Thread.sleep(stepDelayMs);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            });
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.err.printf("tenfold: %s written to %s (%s); metrics.jsonl and loss.png beside it; %.1f s%n",
                    full ? "model" : "adapter", output,
                    from > 0 ? "resumed at step " + from : "from scratch", seconds);
            if (json) {
                var o = new ObjectMapper().createObjectNode().put("output", output.toString()).put("steps", trainer.totalSteps())
                        .put("resumed_from", from).put("seconds", seconds);
                if (!losses.isEmpty()) o.put("final_loss", losses.get(losses.size() - 1));
                System.out.println(o);
            }
        }
        return 0;
    }

    /** Fills unset flags from --recipe, then from the defaults. */
    private void applyRecipe() {
        boolean paper = recipe != null && recipe.toLowerCase(Locale.ROOT).equals("llama3-80k");
        if (recipe != null && !paper) throw new IllegalArgumentException("unknown --recipe '" + recipe + "' (known: llama3-80k)");
        if (paper && model.ropeTheta == null) model.ropeTheta = 200e6;
        if (loraR == null) loraR = 32;
        if (loraAlpha == null) loraAlpha = 16f;
        if (loraTargets == null) loraTargets = "q,k,v,o";
        if (trainEmbeddings == null) trainEmbeddings = paper;
        if (quantize == null) quantize = paper ? "nf4" : "none";
        if (lr == null) lr = paper ? 5e-5 : 2e-4;
        if (lrSchedule == null) lrSchedule = "linear";
        if (warmupSteps == null) warmupSteps = 0;
        if (batchSize == null) batchSize = paper ? 8 : 4;
        if (epochs == null) epochs = 1;
        if (maxLength == null) maxLength = paper ? 81920 : 8192;
    }
}
