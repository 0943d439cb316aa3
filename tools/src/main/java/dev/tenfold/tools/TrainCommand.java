package dev.tenfold.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.engine.DType;
import dev.tenfold.qlora.FullTraining;
import dev.tenfold.qlora.InvalidSettingException;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
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
    @Option(names = "--lora-r", paramLabel = "R", description = "LoRA rank (default 32).")
    @Range(min = 1, max = 65536) Integer loraR;
    @Option(names = "--lora-alpha", paramLabel = "A", description = "LoRA alpha: the update is scaled by alpha/r (default 16).")
    @Range(min = 0, minExclusive = true) Float loraAlpha;
    @Option(names = "--lora-dropout", paramLabel = "P", description = "Dropout on the LoRA input (default 0).")
    @Range(min = 0, max = 1, maxExclusive = true) Float loraDropout;
    @Option(names = "--lora-targets", paramLabel = "LIST", description = "Among q,k,v,o,gate,up,down (default q,k,v,o).") String loraTargets;
    @Option(names = "--rslora", description = "Scale by alpha/sqrt(r) (rank-stabilised LoRA).") boolean rsLora;
    @Option(names = "--train-embeddings", description = "Train the input embedding as a whole (PEFT modules_to_save).") Boolean trainEmbeddings;
    @Option(names = "--quantize", paramLabel = "nf4|none", description = "Base weights in NF4 (QLoRA) or as stored.") String quantize;
    @Option(names = "--full", description = "Train every weight (F32 master copies); the output is a whole model folder, F32.") boolean full;
    @Option(names = "--lr", paramLabel = "LR", description = "Peak learning rate (default 2e-4; the recipe's 5e-5).")
    @Range(min = 0, minExclusive = true) Double lr;
    @Option(names = "--lr-schedule", paramLabel = "constant|linear|cosine") String lrSchedule;
    @Option(names = "--warmup-steps", paramLabel = "N") @Range(min = 0, max = Integer.MAX_VALUE) Integer warmupSteps;
    @Option(names = "--batch-size", paramLabel = "N", description = "Sequences per optimizer step (gradients accumulated over them).")
    @Range(min = 1, max = Integer.MAX_VALUE) Integer batchSize;
    @Option(names = "--micro-batch-size", paramLabel = "N", defaultValue = "1",
            description = "Sequences per forward pass; tenfold runs one at a time (1).") int microBatchSize;
    @Option(names = "--epochs", paramLabel = "N", description = "Passes over the data (default 1).") @Range(min = 1, max = 1_000_000) Integer epochs;
    @Option(names = "--max-steps", paramLabel = "N", description = "Stop after N optimizer steps (overrides --epochs).")
    @Range(min = 1, max = Integer.MAX_VALUE) Integer maxSteps;
    @Option(names = "--max-length", paramLabel = "N", description = "Chat records longer are dropped; text records are cut.")
    @Range(min = 2, max = Flags.MAX_TOKENS) Integer maxLength;
    @Option(names = "--seed", defaultValue = "42") long seed;
    @Option(names = "--weight-decay", defaultValue = "0") @Range(min = 0) float weightDecay;
    @Option(names = "--adam-beta1", defaultValue = "0.9") @Range(min = 0, max = 1, maxExclusive = true) float beta1;
    @Option(names = "--adam-beta2", defaultValue = "0.999") @Range(min = 0, max = 1, maxExclusive = true) float beta2;
    @Option(names = "--adam-eps", defaultValue = "1e-8") @Range(min = 0, minExclusive = true, max = 1) float adamEps;
    @Option(names = "--max-grad-norm", defaultValue = "1.0", description = "Clip the global gradient norm (0: off).")
    @Range(min = 0) double maxGradNorm;
    @Option(names = "--group-by-length", negatable = true, defaultValue = "true", fallbackValue = "true") boolean groupByLength;
    @Option(names = "--init-adapter", paramLabel = "DIR", description = "Start from this PEFT adapter's weights.") Path initAdapter;
    @Option(names = "--resume", paramLabel = "DIR", description = "Continue the run whose output folder is DIR from its newest checkpoint.") Path resume;
    @Option(names = "--save-every", paramLabel = "N", defaultValue = "0", description = "Checkpoint every N steps (0: only the end).")
    @Range(min = 0, max = Integer.MAX_VALUE) int saveEvery;
    @Option(names = "--skip-bad-lines", description = "Skip malformed data lines (counted) instead of refusing to start.") boolean skipBadLines;
    @Option(names = "--json", description = "Print one JSON summary object on standard output at the end.") boolean json;
    @Option(names = "--step-delay-ms", hidden = true, defaultValue = "0", description = "Test hook: pause after each step.")
    @Range(min = 0, max = 3_600_000) int stepDelayMs;

    @Override
    public Integer call() throws Exception {
        applyRecipe();
        if (microBatchSize != 1) throw new Flags.BadFlag("--micro-batch-size: tenfold processes one sequence at a time; use 1");
        boolean nf4 = switch (quantize.toLowerCase(Locale.ROOT)) {
            case "nf4" -> true;
            case "none" -> false;
            default -> throw new Flags.BadFlag("--quantize " + quantize + ": choose nf4 or none");
        };
        if (full && nf4) throw new Flags.BadFlag("--full trains dense weights: use --quantize none");
        if (full && initAdapter != null) throw new Flags.BadFlag("--init-adapter is for LoRA training, not --full");
        if (resume != null) {
            if (output != null && !Outputs.sameFile(output, resume)) {
                throw new Flags.BadFlag("--resume DIR continues in DIR; leave --output out or make it the same");
            }
            output = resume;
        }
        if (output == null) throw new Flags.BadFlag("--output DIR is required");
        Set<String> targets;
        LrSchedule.Kind schedule;
        try {
            targets = Lora.parseTargets(loraTargets);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--lora-targets: " + e.getMessage());
        }
        try {
            schedule = LrSchedule.parse(lrSchedule);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--lr-schedule: " + e.getMessage());
        }
        // everything that can be checked without the weights, before they load
        checkOutput();
        if (initAdapter != null && !Files.isDirectory(initAdapter)) throw new IllegalArgumentException("--init-adapter " + initAdapter + ": not a folder");
        LlamaConfig config = model.config();
        Tokenizer tok = null;
        if (Files.isRegularFile(model.model.resolve("tokenizer.json"))) {
            tok = model.tokenizer();
        } else {
            System.err.println("tenfold: no tokenizer.json in " + model.model + ": only pre-tokenized {\"input_ids\"} records can be used");
        }
        long t0 = System.nanoTime();
        JsonlDataset ds = JsonlDataset.load(tok, new JsonlDataset.Options().maxLength(maxLength).skipBadLines(skipBadLines)
                .vocabSize(config.vocabSize()), data);
        System.err.println("tenfold: data: " + ds.report().summary());
        List<Trainer.Example> examples = Trainer.examples(ds);
        int[] lengths = ds.lengths();
        if (examples.isEmpty()) throw new IllegalArgumentException("no usable training records in " + data);
        LengthGroupedBatches batches = groupByLength ? LengthGroupedBatches.grouped(lengths, batchSize, seed)
                : LengthGroupedBatches.shuffled(lengths, batchSize, seed);
        long steps = maxSteps != null ? maxSteps : (long) epochs * batches.plan(0).size();
        if (steps > Integer.MAX_VALUE) {
            throw new Flags.BadFlag("--epochs " + epochs + " x " + batches.plan(0).size() + " steps per epoch is " + steps
                    + " steps, more than " + Integer.MAX_VALUE + "; use fewer epochs or --max-steps");
        }
        Trainer.Settings s = settings(schedule);
        checkMemory(config, nf4, targets, ds.report().maxLength());
        try (LlamaModel m = model.load(nf4)) {
            if (full) {
                FullTraining.makeTrainable(m);
            } else if (initAdapter != null) {
                PeftAdapter.load(initAdapter, m);
                System.err.println("tenfold: starting from adapter " + initAdapter);
            } else {
                Lora.attach(m, LoraConfig.of(loraR, loraAlpha).targetModules(targets).dropout(loraDropout).rsLora(rsLora)
                        .trainEmbeddings(trainEmbeddings).seed(seed));
            }
            Path base = model.model;
            Trainer.OutputWriter writer = full ? (dir, mm) -> FullTraining.save(dir, mm, base, DType.F32) : PeftAdapter::save;
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

    /**
     * The output folder, before anything loads. A new run needs a new or empty folder: a folder with
     * anything in it may hold the user's own files (a metrics.jsonl, a tokenizer.json) that the run
     * would replace. --resume needs a folder whose run has a checkpoint and is not complete (the
     * trainer's own rules, checked here without a model).
     */
    private void checkOutput() throws java.io.IOException {
        Outputs.checkWritableFolder(resume != null ? "--resume" : "--output", output);
        if (resume != null) {
            try {
                Trainer.checkOutput(output, true);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--resume " + e.getMessage(), e);
            }
            return;
        }
        List<String> names = Outputs.names(output);
        List<String> checkpoints = Outputs.checkpoints(output);
        if (!checkpoints.isEmpty()) {
            throw new IllegalArgumentException("--output " + output + " already holds a training run (" + Outputs.sample(checkpoints)
                    + "); continue it with --resume " + output + " or choose another --output");
        }
        if (names.contains(PeftAdapter.WEIGHTS) || names.contains("config.json")) {
            throw new IllegalArgumentException("--output " + output + " already holds "
                    + (names.contains(PeftAdapter.WEIGHTS) ? "an adapter" : "a model (config.json)") + "; choose another --output");
        }
        if (names.contains("metrics.jsonl") && names.stream().allMatch(n -> n.equals("metrics.jsonl") || n.equals("loss.png") || n.startsWith("."))) {
            throw new IllegalArgumentException("--output " + output + " holds a run that stopped before its first checkpoint ("
                    + Outputs.sample(names) + "), so nothing to resume: delete it or choose another --output");
        }
        Outputs.checkNewFolder("--output", output);
    }

    /** What training will hold, from config.json, the flags and the longest record, against what this machine has. */
    private void checkMemory(LlamaConfig c, boolean nf4, Set<String> targets, int longest) throws java.io.IOException {
        long trainable;
        if (full) {
            trainable = MemoryCheck.parameters(c);
        } else {
            Set<String> short_ = new java.util.HashSet<>();
            for (String t : targets) short_.add(t.replace("_proj", ""));
            trainable = MemoryCheck.loraParameters(c, loraR, short_);
            if (trainEmbeddings) trainable = MemoryCheck.add(trainable, (long) c.vocabSize() * c.hiddenSize());
        }
        new MemoryCheck("train on records of up to " + longest + " tokens (--max-length " + maxLength + ")", model.onHost())
                .tensors("weights", model.weightBytes(c, nf4))
                // F32 value, gradient and AdamW's two moments
                .tensors("trainable parameters and optimizer state", MemoryCheck.sat(16, trainable))
                .tensors("activations", MemoryCheck.trainingActivations(c, longest))
                .check();
    }

    /** The trainer's settings from the flags; a value the trainer refuses is named by its flag. */
    private Trainer.Settings settings(LrSchedule.Kind schedule) {
        try {
            return new Trainer.Settings(lr, schedule, warmupSteps, epochs, maxSteps, beta1, beta2, adamEps, weightDecay, maxGradNorm,
                    saveEvery, 2, seed);
        } catch (InvalidSettingException e) {
            String flag = switch (e.setting()) {
                case "schedule" -> "--lr-schedule";
                case "warmupSteps" -> "--warmup-steps";
                case "maxSteps" -> "--max-steps";
                case "beta1" -> "--adam-beta1";
                case "beta2" -> "--adam-beta2";
                case "eps" -> "--adam-eps";
                case "weightDecay" -> "--weight-decay";
                case "maxGradNorm" -> "--max-grad-norm";
                case "saveEvery" -> "--save-every";
                default -> "--" + e.setting();
            };
            throw new Flags.BadFlag(flag + ": " + e.getMessage());
        }
    }

    /** Fills unset flags from --recipe, then from the defaults. */
    private void applyRecipe() {
        boolean paper = recipe != null && recipe.toLowerCase(Locale.ROOT).equals("llama3-80k");
        if (recipe != null && !paper) throw new Flags.BadFlag("unknown --recipe '" + recipe + "' (known: llama3-80k)");
        if (paper && model.ropeTheta == null) model.ropeTheta = 200e6;
        if (loraR == null) loraR = 32;
        if (loraAlpha == null) loraAlpha = 16f;
        if (loraDropout == null) loraDropout = 0f;
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
