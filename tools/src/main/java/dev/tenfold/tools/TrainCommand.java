package dev.tenfold.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.llama.ContextParallelScheme;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Quantization;
import dev.tenfold.llama.TrainingMemory;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.FullTraining;
import dev.tenfold.qlora.InvalidSettingException;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.LrSchedule;
import dev.tenfold.qlora.PeftAdapter;
import dev.tenfold.qlora.Recipe;
import dev.tenfold.qlora.Recipes;
import dev.tenfold.qlora.RunFolder;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.TrainingSettings;
import dev.tenfold.qlora.data.JsonlDataset;
import dev.tenfold.qlora.data.LengthGroupedBatches;
import dev.tenfold.tools.charts.LossCurve;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Fine-tunes LoRA adapters (and optionally the embedding) on JSON-lines data; the output folder is a PEFT adapter. */
@Command(name = "train", mixinStandardHelpOptions = true)
final class TrainCommand implements Callable<Integer> {
    /** The help's description: the recipes' values come from the recipes themselves. */
    static String[] description() {
        List<String> lines = new ArrayList<>(List.of("Fine-tune LoRA adapters on JSON-lines data; the output folder is a PEFT adapter."));
        for (String name : Recipes.names()) lines.add("--recipe " + name + " sets: " + Recipes.named(name) + ".");
        lines.add("Flags given explicitly win over the recipe.");
        return lines.toArray(String[]::new);
    }

    @Mixin ModelOptions model;
    @Mixin DataParallelOptions dataParallel;
    @Spec CommandSpec spec;

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
    @Option(names = "--packing", description = "Pack each batch's records into sequences of up to --max-length tokens, attention kept "
            + "inside each record: the same loss and gradients in fewer, longer passes (faster on short records).") boolean packing;
    @Option(names = {"--cp", "--context-parallel"}, paramLabel = "N", defaultValue = "1",
            description = "Share each sequence among N ranks (context parallelism); the ranks form groups of N, data parallelism runs"
                    + " across the groups (default 1). CPU ranks under MPI; GPU ranks (one per GPU, NCCL 2.18+) run but are not yet"
                    + " verified on a multi-GPU machine.")
    @Range(min = 1, max = 1024) int contextParallel = 1;
    @Option(names = "--cp-scheme", paramLabel = "SCHEME", defaultValue = "auto",
            description = "How --cp N ranks share attention: ulysses (all-to-all of heads; N must divide the key/value heads), allgather"
                    + " (all-gather of keys and values, zigzag chunks; any N) or auto (ulysses when N divides the key/value heads"
                    + " and the group is on one machine, else allgather; the default).")
    String cpScheme = "auto";
    @Option(names = "--seed", defaultValue = "42") long seed;
    @Option(names = "--weight-decay", description = "AdamW's weight decay (default 0).") @Range(min = 0) Float weightDecay;
    @Option(names = "--adam-beta1", description = "(default 0.9)") @Range(min = 0, max = 1, maxExclusive = true) Float beta1;
    @Option(names = "--adam-beta2", description = "(default 0.999)") @Range(min = 0, max = 1, maxExclusive = true) Float beta2;
    @Option(names = "--adam-eps", description = "(default 1e-8)") @Range(min = 0, minExclusive = true, max = 1) Float adamEps;
    @Option(names = "--max-grad-norm", description = "Clip the global gradient norm (0: off; default 1).")
    @Range(min = 0) Double maxGradNorm;
    @Option(names = "--group-by-length", negatable = true, defaultValue = "true", fallbackValue = "true") boolean groupByLength;
    @Option(names = "--init-adapter", paramLabel = "DIR", description = "Start from this PEFT adapter's weights.") Path initAdapter;
    @Option(names = "--resume", paramLabel = "DIR", description = "Continue the run whose output folder is DIR from its newest checkpoint.") Path resume;
    @Option(names = "--save-every", paramLabel = "N", description = "Checkpoint every N steps (0, the default: only the end).")
    @Range(min = 0, max = Integer.MAX_VALUE) Integer saveEvery;
    @Option(names = "--skip-bad-lines", description = "Skip malformed data lines (counted) instead of refusing to start.") boolean skipBadLines;
    @Option(names = "--offload-checkpoints", description = "Keep each layer's input in host memory (pinned, copied while the next layer"
            + " computes) until the backward: two [tokens, hidden] buffers on the device instead of one per layer; a little slower.")
    boolean offloadCheckpoints;
    @Option(names = "--activations", paramLabel = "bf16|f32", description = "How the step stores activations (default bf16 on cuda, f32 on cpu).")
    String activations;
    @Option(names = "--mlp-tile", paramLabel = "N", description = "Tokens per MLP tile (default 2048): smaller holds less, larger runs faster.")
    @Range(min = 1, max = Flags.MAX_TOKENS) Integer mlpTile;
    @Option(names = "--json", description = "Print one JSON summary object on standard output at the end.") boolean json;
    @Option(names = "--step-delay-ms", hidden = true, defaultValue = "0", description = "Test hook: pause after each step.")
    @Range(min = 0, max = 3_600_000) int stepDelayMs;

    /** What the flags leave unset: the recipe's, or without --recipe these (LoRA r 32 / alpha 16 on q,k,v,o, lr 2e-4). */
    static final Recipe DEFAULTS = new Recipe(LoadSpec.defaults(), LoraConfig.of(32, 16f), TrainingSettings.defaults(), 8192, 4);

    @Override
    public Integer call() throws Exception {
        Recipe r = recipe();
        if (microBatchSize != 1) throw new Flags.BadFlag("--micro-batch-size: tenfold processes one sequence at a time; use 1");
        boolean nf4;
        try {
            nf4 = (quantize == null ? r.load().quantization() : Quantization.parse(quantize)) == Quantization.NF4;
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--quantize " + quantize + ": choose nf4 or none");
        }
        if (full && nf4) throw new Flags.BadFlag("--full trains dense weights: use --quantize none");
        if (full && initAdapter != null) throw new Flags.BadFlag("--init-adapter is for LoRA training, not --full");
        if (resume != null) {
            if (output != null && !Outputs.sameFile(output, resume)) {
                throw new Flags.BadFlag("--resume DIR continues in DIR; leave --output out or make it the same");
            }
            output = resume;
        }
        if (output == null) throw new Flags.BadFlag("--output DIR is required");
        LoraConfig lora = lora(r.lora());
        TrainingSettings s = settings(r.training());
        int batch = batchSize != null ? batchSize : r.batchSize();
        int maxLen = maxLength != null ? maxLength : r.maxLength();
        if (packing) s = s.packing(maxLen);
        dataParallel.check(model.onHost());
        checkContextParallel(lora);
        java.util.Map<String, String> env = System.getenv();
        List<String> args = spec.commandLine().getParseResult().originalArgs();
        if (dataParallel.launches(env)) {
            checkOutput();
            return Launcher.run(dataParallel, args, output, model.onHost(), System.err);
        }
        RankEnvironment rankEnv = RankEnvironment.detect(env).orElse(null);
        int rank = rankEnv == null ? 0 : rankEnv.rank();
        if (rankEnv != null) model.device = DataParallelOptions.deviceOf(model.device, rankEnv, env);
        // everything that can be checked without the weights, before they load (rank 0 owns the output folder)
        if (rank == 0) checkOutput();
        Communicator comm = rankEnv == null ? Communicator.solo()
                : dataParallel.join(rankEnv, model.backend(), DataParallelOptions.configHash(args, model.model, data));
        try {
            if (comm.size() > 1 && rank != 0) logToFile(rank, comm.size());
            else if (comm.size() > 1) System.err.println("tenfold: rank 0 of " + comm.size() + " (pid " + ProcessHandle.current().pid() + "; "
                    + comm.describe() + "); the other ranks log to " + output.resolve("logs"));
            if (contextParallel > 1) {
                cpGroup = ContextParallelGroups.split(comm, contextParallel);
                System.err.println("tenfold: context parallelism: each sequence split over " + contextParallel + " ranks ("
                        + (cpSchemeResolved == ContextParallelScheme.ULYSSES ? "Ulysses attention" : "all-gather attention, zigzag chunks") + "), "
                        + comm.size() / contextParallel + " data-parallel group" + (comm.size() / contextParallel > 1 ? "s" : ""));
                if (!model.onHost() && comm.rank() == 0) {
                    System.err.println("tenfold: note: context parallelism on GPUs (NCCL) is tested on simulated devices only and has not yet"
                            + " been verified on a machine with several GPUs; compare its losses with a --device cpu run");
                }
            }
            return train(r, s, lora, batch, maxLen, nf4, comm);
        } finally {
            if (cpGroup != null) cpGroup.close();
            comm.close();
        }
    }

    private Communicator cpGroup; // --cp N: this rank's group of N
    private ContextParallelScheme cpSchemeResolved; // --cp N: the scheme its group runs

    /** --cp against the other flags, before anything starts. */
    private void checkContextParallel(LoraConfig lora) throws java.io.IOException {
        if (contextParallel == 1) {
            ContextParallelGroups.scheme(cpScheme, 1, 1); // a bad name is still a bad flag
            return;
        }
        // a rank started by mpirun, torchrun or srun knows its world from the launcher; else the flags say it
        RankEnvironment rankEnv = RankEnvironment.detect(System.getenv()).orElse(null);
        int world = rankEnv != null ? rankEnv.size() : dataParallel.nprocPerNode * dataParallel.nnodes;
        if (model.onHost()) {
            cpSchemeResolved = ContextParallelGroups.scheme(cpScheme, contextParallel, model.config().numKvHeads());
            if (world % contextParallel != 0) {
                throw new Flags.BadFlag("--cp " + contextParallel + " must divide the ranks (--nproc-per-node x --nnodes = " + world + ")");
            }
        } else {
            // a rank may see its own GPU only (CUDA_VISIBLE_DEVICES): the launcher, which sees them all, counts them
            ContextParallelGroups.checkGpuRanks(contextParallel, world, rankEnv == null ? dataParallel.nprocPerNode : 0, model.gpuCount());
            // the GPU is not opened here: this process may be the launcher, and a rank opens its own GPU (cuda:LOCAL_RANK)
            cpSchemeResolved = ContextParallelGroups.scheme(cpScheme, contextParallel, model.configWithoutDevice().numKvHeads());
        }
        if (packing) throw new Flags.BadFlag("--cp does not take --packing (attention inside each packed record is not sharded)");
        if (lora.dropout() > 0) {
            throw new Flags.BadFlag("--cp does not take --lora-dropout " + lora.dropout() + " (a shard would draw other masks than one rank); use 0");
        }
    }

    /** A rank other than 0 writes what it says to OUTPUT/logs/rank-R.log. */
    private void logToFile(int rank, int size) throws java.io.IOException {
        Path logs = output.resolve("logs");
        Files.createDirectories(logs);
        var log = new java.io.PrintStream(Files.newOutputStream(logs.resolve("rank-" + rank + ".log")), true, java.nio.charset.StandardCharsets.UTF_8);
        System.setErr(log);
        System.err.println("tenfold: rank " + rank + " of " + size + " (pid " + ProcessHandle.current().pid() + ")");
    }

    private int train(Recipe r, TrainingSettings s, LoraConfig lora, int batch, int maxLen, boolean nf4, Communicator comm) throws Exception {
        boolean writes = comm.rank() == 0;
        if (initAdapter != null && !Files.isDirectory(initAdapter)) throw new IllegalArgumentException("--init-adapter " + initAdapter + ": not a folder");
        LlamaConfig config = model.config();
        Tokenizer tok = null;
        if (Files.isRegularFile(model.model.resolve("tokenizer.json"))) {
            tok = model.tokenizer();
        } else {
            System.err.println("tenfold: no tokenizer.json in " + model.model + ": only pre-tokenized {\"input_ids\"} records can be used");
        }
        long t0 = System.nanoTime();
        JsonlDataset ds = JsonlDataset.load(tok, new JsonlDataset.Options().maxLength(maxLen).skipBadLines(skipBadLines)
                .vocabSize(config.vocabSize()), data);
        System.err.println("tenfold: data: " + ds.report().summary());
        List<Trainer.Example> examples = Trainer.examples(ds);
        int[] lengths = ds.lengths();
        if (examples.isEmpty()) throw new IllegalArgumentException("no usable training records in " + data);
        LengthGroupedBatches batches = groupByLength ? LengthGroupedBatches.grouped(lengths, batch, seed)
                : LengthGroupedBatches.shuffled(lengths, batch, seed);
        long steps = s.maxSteps() != null ? s.maxSteps() : (long) s.epochs() * batches.plan(0).size();
        if (steps > Integer.MAX_VALUE) {
            throw new Flags.BadFlag("--epochs " + s.epochs() + " x " + batches.plan(0).size() + " steps per epoch is " + steps
                    + " steps, more than " + Integer.MAX_VALUE + "; use fewer epochs or --max-steps");
        }
        // packed sequences reach --max-length
        checkMemory(config, nf4, lora, maxLen, packing ? maxLen : ds.report().maxLength(), batch > 1 || comm.size() > 1);
        DType act = activations == null ? null : switch (activations.toLowerCase(Locale.ROOT)) {
            case "bf16" -> DType.BF16;
            case "f32" -> DType.F32;
            default -> throw new Flags.BadFlag("--activations " + activations + ": choose bf16 or f32");
        };
        // The CPU kernels' JIT warm-up (the trainer's first step would run it) while the model loads: it is
        // then done when training starts, and a real checkpoint's load hides it.
        dev.tenfold.engine.Backend backend = model.backend();
        if (backend.device().isCpu() && (packing ? maxLen : ds.report().maxLength()) >= 1024) {
            Thread.ofPlatform().daemon().name("tenfold-warm-up").start(() -> {
                double seconds = backend.warmUp();
                if (seconds > 0) System.err.printf(Locale.ROOT, "tenfold: CPU kernels compiled while the model loads (JIT warm-up): %.1f s%n", seconds);
            });
        }
        try (LlamaModel m = model.load(nf4)) {
            TrainingMemory memory = m.trainingMemory(); // the backend's default: BF16 activations on a GPU, F32 on the CPU
            if (act != null) memory = new TrainingMemory(act, memory.offloadCheckpoints(), memory.mlpTileTokens());
            if (mlpTile != null) memory = memory.withMlpTile(mlpTile);
            m.setTrainingMemory(memory.withOffload(offloadCheckpoints));
            if (full) {
                FullTraining.makeTrainable(m);
            } else if (initAdapter != null) {
                PeftAdapter.load(initAdapter, m);
                System.err.println("tenfold: starting from adapter " + initAdapter);
            } else {
                Lora.attach(m, lora);
            }
            Path base = model.model;
            Trainer trainer = new Trainer(m, s, examples, batches::plan).dataParallel(comm);
            if (cpGroup != null) trainer.contextParallel(cpGroup, cpSchemeResolved);
            long trainable = m.parameters().stream().mapToLong(p -> p.value().numel()).sum();
            System.err.printf("tenfold: %,d trainable parameters, %d steps (%d per epoch), rope_theta %s%n", trainable,
                    trainer.totalSteps(), trainer.stepsPerEpoch(), m.config().ropeTheta());
            List<Double> losses = new ArrayList<>();
            if (writes) { // rank 0 alone writes the run's folder and shows the progress (of the whole run: every rank steps together)
                RunFolder folder = resume != null ? RunFolder.resume(output) : RunFolder.create(output);
                if (full) folder.output((dir, mm) -> FullTraining.save(dir, mm, base, DType.F32));
                trainer.addListener(folder).addListener(LossCurve.listener(output)).addListener(new ProgressBar(System.err));
            } else {
                trainer.addListener(step -> System.err.printf(Locale.ROOT, "tenfold: %s; this rank: %.3f s computing, %.3f s in the all-reduce%n",
                        step, step.rankSeconds()[comm.rank()], step.communicationSeconds()));
            }
            trainer.addListener(step -> {
                        losses.add(step.loss());
                        if (stepDelayMs > 0) {
                            try {
                                Thread.sleep(stepDelayMs);
                            } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                            }
                        }
                    });
            int from = trainer.fit();
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.err.printf("tenfold: %s written to %s (%s); metrics.jsonl and loss.png beside it; %.1f s%n",
                    full ? "model" : "adapter", output,
                    from > 0 ? "resumed at step " + from : "from scratch", seconds);
            if (json && writes) {
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
                RunFolder.check(output, true);
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
    private void checkMemory(LlamaConfig c, boolean nf4, LoraConfig lora, int maxLen, int longest, boolean sums) throws java.io.IOException {
        long trainable;
        if (full) {
            trainable = MemoryCheck.parameters(c);
        } else {
            Set<String> short_ = new java.util.HashSet<>();
            for (String t : lora.targetModules()) short_.add(t.replace("_proj", ""));
            trainable = MemoryCheck.loraParameters(c, lora.rank(), short_);
            if (lora.trainEmbeddings()) trainable = MemoryCheck.add(trainable, (long) c.vocabSize() * c.hiddenSize());
        }
        MemoryCheck check = new MemoryCheck("train on records of up to " + longest + " tokens (--max-length " + maxLen + ")", model.onHost())
                .tensors("weights", model.weightBytes(c, nf4))
                // F32 value, gradient and AdamW's two moments
                .tensors("trainable parameters and optimizer state", MemoryCheck.sat(16, trainable))
                .tensors("activations", MemoryCheck.trainingActivations(c, longest));
        // the CPU adds the sequences' gradients in F64 (the same bits for any number of ranks)
        if (sums && model.onHost()) check.tensors("gradient sums (F64)", MemoryCheck.sat(8, trainable));
        check.check();
    }

    /** The recipe that --recipe names (the RoPE base goes where --rope-theta would), or the defaults. */
    private Recipe recipe() {
        Recipe r;
        try {
            r = recipe == null ? DEFAULTS : Recipes.named(recipe);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--recipe: " + e.getMessage());
        }
        if (model.ropeTheta == null) model.ropeTheta = r.load().ropeTheta();
        return r;
    }

    /** The recipe's LoRA configuration with the --lora-* flags given; a value it refuses is named by its flag. */
    private LoraConfig lora(LoraConfig from) {
        try {
            LoraConfig c = from.seed(seed);
            if (loraR != null) c = c.rank(loraR);
            if (loraAlpha != null) c = c.alpha(loraAlpha);
            if (loraDropout != null) c = c.dropout(loraDropout);
            if (loraTargets != null) c = c.targets(loraTargets);
            if (rsLora) c = c.rsLora(true);
            if (trainEmbeddings != null) c = c.trainEmbeddings(trainEmbeddings);
            return c;
        } catch (InvalidSettingException e) {
            String flag = switch (e.setting()) {
                case "r" -> "--lora-r";
                case "lora_alpha" -> "--lora-alpha";
                case "lora_dropout" -> "--lora-dropout";
                default -> "--lora-targets";
            };
            String m = e.getMessage();
            throw new Flags.BadFlag(flag + ": " + (m.startsWith(e.setting() + ": ") ? m.substring(e.setting().length() + 2) : m));
        }
    }

    /** The recipe's training settings with the flags given; a value the trainer refuses is named by its flag. */
    private TrainingSettings settings(TrainingSettings from) {
        try {
            TrainingSettings s = from.seed(seed);
            if (lr != null) s = s.lr(lr);
            if (lrSchedule != null) {
                try {
                    s = s.schedule(LrSchedule.parse(lrSchedule));
                } catch (InvalidSettingException e) {
                    throw e;
                } catch (IllegalArgumentException e) {
                    throw new InvalidSettingException("schedule", e.getMessage());
                }
            }
            if (warmupSteps != null) s = s.warmupSteps(warmupSteps);
            if (epochs != null) s = s.epochs(epochs);
            if (maxSteps != null) s = s.maxSteps(maxSteps);
            if (beta1 != null) s = s.beta1(beta1);
            if (beta2 != null) s = s.beta2(beta2);
            if (adamEps != null) s = s.eps(adamEps);
            if (weightDecay != null) s = s.weightDecay(weightDecay);
            if (maxGradNorm != null) s = s.maxGradNorm(maxGradNorm);
            if (saveEvery != null) s = s.saveEvery(saveEvery);
            return s;
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
}
