package dev.tenfold.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.plan.PlanningBackend;
import dev.tenfold.llama.ContextParallelScheme;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.TrainingMemory;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.Recipe;
import dev.tenfold.qlora.Recipes;
import dev.tenfold.llama.Quantization;
import dev.tenfold.qlora.plan.MemoryPlan;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The exact device memory of a training step (or an evaluation pass) for a config.json, without weights: the
 * real step runs on a backend that records every allocation and computes nothing ({@link MemoryPlan}).
 */
@Command(name = "plan", mixinStandardHelpOptions = true, description = {
        "The exact peak device memory of a training step (or an evaluation pass) for a model's config.json, no weights",
        "needed: the real step runs on a backend that records every allocation and free and computes nothing. Prints",
        "what holds the memory at the peak; with --device-memory, the longest sequence that fits.",
        "  tenfold plan --config config.json --recipe llama3-80k --offload-checkpoints --device-memory 80GiB"})
final class PlanCommand implements Callable<Integer> {
    static final long GiB = 1L << 30;

    @Option(names = "--config", paramLabel = "FILE", description = "A model's config.json (or give --model).") Path config;
    @Option(names = "--model", paramLabel = "DIR", description = "A Hugging Face model folder: its config.json is read, nothing else.") Path model;
    @Option(names = "--tokens", paramLabel = "N", description = "Tokens of the sequence (a k suffix means x1024; default 8k, the recipe's 80k).")
    String tokens;
    @Option(names = "--recipe", paramLabel = "NAME", description = "llama3-80k: NF4 base, LoRA r 32 on q,k,v,o, trained embedding, 80k tokens.")
    String recipe;
    @Option(names = "--quantize", paramLabel = "nf4|none", description = "Base weights in NF4 (QLoRA) or as stored.") String quantize;
    @Option(names = "--lora-r", paramLabel = "R", description = "LoRA rank; 0: no adapters (default 32; for --eval 0 unless --recipe).") @Range(min = 0, max = 65536) Integer loraR;
    @Option(names = "--lora-targets", paramLabel = "LIST", description = "Among q,k,v,o,gate,up,down (default q,k,v,o).") String loraTargets;
    @Option(names = "--train-embeddings", description = "Train the input embedding as a whole.") Boolean trainEmbeddings;
    @Option(names = "--offload-checkpoints", description = "Keep the layer inputs in host memory (pinned) until the backward.")
    boolean offload;
    @Option(names = "--activations", paramLabel = "bf16|f32", description = "Activation storage (default bf16 on cuda, f32 on cpu).")
    String activations;
    @Option(names = "--mlp-tile", paramLabel = "N", description = "Tokens per MLP tile (default " + TrainingMemory.DEFAULT_MLP_TILE + ").")
    @Range(min = 1, max = Flags.MAX_TOKENS) Integer mlpTile;
    @Option(names = "--eval", description = "Plan an evaluation pass (perplexity of one window) instead of a training step.") boolean eval;
    @Option(names = "--device", defaultValue = "cuda", paramLabel = "cpu|cuda[:N]",
            description = "The backend planned for (default: ${DEFAULT-VALUE}); no device is opened.") String device;
    @Option(names = "--device-memory", paramLabel = "SIZE", description = "The device's memory, e.g. 80GiB or 141GB: says whether the"
            + " step fits and finds the longest sequence that does.") String deviceMemory;
    @Option(names = "--reserve", paramLabel = "SIZE", description = "Device memory outside tenfold's allocator (CUDA context, cuBLAS)"
            + " counted against --device-memory (default 1GiB on cuda, 0 on cpu).") String reserve;
    @Option(names = "--max-tokens", paramLabel = "N", description = "The longest sequence searched (default " + Flags.MAX_TOKENS + ").")
    @Range(min = 2, max = Flags.MAX_TOKENS) Integer maxTokens;
    @Option(names = {"--cp", "--context-parallel"}, paramLabel = "N", defaultValue = "1",
            description = "Plan one rank of N sharing each sequence (context parallelism; default 1).")
    @Range(min = 1, max = 1024) int contextParallel = 1;
    @Option(names = "--cp-scheme", paramLabel = "SCHEME", defaultValue = "auto",
            description = "The scheme of --cp N: ulysses (N must divide the key/value heads), allgather (the whole sequence's keys and"
                    + " values on every rank, counted in the plan) or auto (ulysses when N divides the key/value heads; the default).")
    String cpScheme = "auto";
    @Option(names = "--json", description = "Print one JSON object on standard output instead of the table.") boolean json;

    @Override
    public Integer call() throws IOException {
        Recipe recipeValues; // what the flags leave unset: the recipe's values, as train takes them
        try {
            recipeValues = recipe == null ? TrainCommand.DEFAULTS : Recipes.named(recipe);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--recipe: " + e.getMessage());
        }
        if ((config == null) == (model == null)) throw new Flags.BadFlag("give one of --config FILE and --model DIR");
        LlamaConfig c = readConfig();
        Device d;
        try {
            d = Device.parse(device);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--device: " + e.getMessage());
        }
        int n = Flags.parseLengths("--tokens", java.util.List.of(tokens != null ? tokens : Integer.toString(recipeValues.maxLength())))[0];
        if (n < 2) throw new Flags.BadFlag("--tokens: a step needs at least 2 tokens, got " + n);
        boolean preQuantized = c.quantizationConfig() != null;
        String q = quantize != null ? quantize.toLowerCase(Locale.ROOT)
                : recipeValues.load().quantization() == Quantization.NF4 || preQuantized ? "nf4" : "none";
        MemoryPlan.Base base = switch (q) {
            case "nf4" -> MemoryPlan.Base.NF4;
            case "none" -> MemoryPlan.Base.DENSE;
            default -> throw new Flags.BadFlag("--quantize " + quantize + ": choose nf4 or none");
        };
        if (preQuantized && base == MemoryPlan.Base.DENSE) throw new Flags.BadFlag("--quantize none: this config is of an NF4 checkpoint");
        // an evaluation has adapters when asked (the recipe's, or --lora-r)
        int rank = loraR != null ? loraR : eval && recipe == null ? 0 : recipeValues.lora().rank();
        Set<String> targets;
        try {
            targets = loraTargets != null ? Lora.parseTargets(loraTargets) : recipeValues.lora().targetModules();
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--lora-targets: " + e.getMessage());
        }
        boolean embed = trainEmbeddings != null ? trainEmbeddings : recipeValues.lora().trainEmbeddings();
        if (!eval && rank == 0 && !embed) throw new Flags.BadFlag("--lora-r 0: nothing to train (add --train-embeddings)");
        DType act = switch (activations != null ? activations.toLowerCase(Locale.ROOT) : d.isCpu() ? "f32" : "bf16") {
            case "bf16" -> DType.BF16;
            case "f32" -> DType.F32;
            default -> throw new Flags.BadFlag("--activations " + activations + ": choose bf16 or f32");
        };
        TrainingMemory memory = new TrainingMemory(act, offload, mlpTile != null ? mlpTile : TrainingMemory.DEFAULT_MLP_TILE);
        long budget = deviceMemory != null ? size("--device-memory", deviceMemory) : -1;
        long reserved = reserve != null ? size("--reserve", reserve) : d.isCpu() ? 0 : GiB;
        PlanningBackend.Target target = d.isCpu() ? PlanningBackend.Target.CPU : PlanningBackend.Target.CUDA;
        if (contextParallel > 1 && eval) throw new Flags.BadFlag("--cp plans a training step; leave out --eval");
        ContextParallelScheme scheme = ContextParallelGroups.scheme(cpScheme, contextParallel, c.numKvHeads());
        MemoryPlan.Spec spec = (eval ? MemoryPlan.Spec.evaluation(c, n) : MemoryPlan.Spec.training(c, n)).withBase(base).withLora(rank, targets)
                .withTrainEmbedding(embed).withMemory(memory).on(target, d.isCpu() ? Device.cuda(0) : d).withContextParallel(contextParallel, scheme);

        long t0 = System.nanoTime();
        MemoryPlan.Result r = MemoryPlan.plan(spec);
        Integer longest = null, longestOther = null;
        if (budget >= 0) {
            int limit = maxTokens != null ? maxTokens : Flags.MAX_TOKENS;
            System.err.println("tenfold: searching the longest sequence that fits " + MemoryCheck.bytes(budget) + "...");
            // with and without offload at once: the searches are independent
            java.util.concurrent.CompletableFuture<Integer> other = eval ? null : java.util.concurrent.CompletableFuture.supplyAsync(
                    () -> MemoryPlan.longest(spec.withMemory(memory.withOffload(!offload)), budget, reserved, limit));
            longest = MemoryPlan.longest(spec, budget, reserved, limit);
            if (other != null) longestOther = other.join();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (json) {
            System.out.println(json(r, budget, reserved, longest, longestOther));
        } else {
            print(System.out, r, budget, reserved, longest, longestOther);
            System.err.printf(Locale.ROOT, "tenfold: planned in %.1f s%n", seconds);
        }
        return 0;
    }

    private LlamaConfig readConfig() throws IOException {
        if (model != null) {
            if (!Files.isDirectory(model)) throw new IllegalArgumentException("--model " + model + ": not a folder");
            return LlamaConfig.load(model);
        }
        if (Files.isDirectory(config)) throw new IllegalArgumentException("--config " + config + " is a folder: give its config.json, or --model");
        if (!Files.exists(config)) throw new IllegalArgumentException("--config " + config + ": no such file");
        return LlamaConfig.loadFile(config);
    }

    private static final Pattern SIZE = Pattern.compile("\\s*([0-9]+(?:\\.[0-9]+)?)\\s*([kmgt]i?b?|b)?\\s*", Pattern.CASE_INSENSITIVE);

    /** "80GiB", "141GB", "79.6 GiB", "1048576": binary units with i (GiB), decimal without (GB); a bare number is bytes. */
    static long size(String flag, String text) {
        Matcher m = SIZE.matcher(text);
        if (!m.matches()) throw new Flags.BadFlag(flag + ": \"" + text + "\" is not a size (e.g. 80GiB, 141GB, 512MiB)");
        String unit = m.group(2) == null ? "b" : m.group(2).toLowerCase(Locale.ROOT);
        int power = switch (unit.charAt(0)) {
            case 'k' -> 1;
            case 'm' -> 2;
            case 'g' -> 3;
            case 't' -> 4;
            default -> 0;
        };
        double base = unit.contains("i") ? 1024 : 1000;
        double bytes = Double.parseDouble(m.group(1)) * Math.pow(base, power);
        if (!(bytes >= 1 && bytes < 1L << 60)) throw new Flags.BadFlag(flag + ": " + text + " is outside [1 byte, 1 EiB)");
        return (long) bytes;
    }

    // ------------------------------------------------------------------ the report

    private static String gib(long bytes) { return String.format(Locale.ROOT, "%.2f", bytes / (double) GiB); }

    static String describe(MemoryPlan.Spec s) {
        LlamaConfig c = s.config();
        String step = s.evaluation() ? "evaluation (perplexity of one window)" : "training step";
        StringBuilder what = new StringBuilder();
        what.append(s.base() == MemoryPlan.Base.NF4 ? "NF4 base" : s.stored() + " base");
        if (s.evaluation() && s.loraRank() > 0) what.append("; LoRA r=").append(s.loraRank());
        if (!s.evaluation()) {
            if (s.loraRank() > 0) {
                what.append("; LoRA r=").append(s.loraRank()).append(" on ")
                        .append(String.join(",", s.loraTargets().stream().map(t -> t.replace("_proj", "")).sorted(
                                java.util.Comparator.comparingInt(Lora.TARGETS::indexOf)).toList()));
            }
            if (s.trainEmbedding()) what.append("; trained embedding");
            what.append("; AdamW");
        }
        TrainingMemory m = s.memory();
        String memory = s.evaluation() ? "F32 activations and KV cache, chunks of 256 tokens"
                : m.activations() + " activations, " + (m.offloadCheckpoints() ? "checkpoints offloaded to host memory" : "checkpoints on the device")
                + ", MLP tiles of " + m.mlpTileTokens() + " tokens";
        String tokens = String.format(Locale.ROOT, "%,d tokens", s.tokens())
                + (s.contextParallel() > 1 ? " shared by " + s.contextParallel() + " ranks ("
                        + (s.contextParallelScheme() == ContextParallelScheme.ULYSSES ? "Ulysses" : "all-gather of keys and values") + "), this rank's memory" : "");
        return String.format(Locale.ROOT, "Llama (hidden %d, %d layers, %d/%d heads of %d, MLP %d, vocab %d)%n  %s, %s; %s%n  %s",
                c.hiddenSize(), c.numLayers(), c.numHeads(), c.numKvHeads(), c.headDim(), c.intermediateSize(), c.vocabSize(),
                step, tokens, what, memory);
    }

    static void print(PrintStream out, MemoryPlan.Result r, long budget, long reserved, Integer longest, Integer longestOther) {
        MemoryPlan.Spec s = r.spec();
        boolean cuda = s.target() == PlanningBackend.Target.CUDA;
        out.println("Memory plan for " + (cuda ? s.device() : "the cpu") + ": " + describe(s));
        out.println();
        String where = r.peak().site() == null ? "" : " (in " + r.peak().site() + ")";
        out.printf(Locale.ROOT, "  %-58s %9s%n", "at the peak" + where, "GiB");
        Map<String, Long> asked = r.peak().requestedByCategory();
        for (String row : MemoryPlan.ROWS) {
            Long b = asked.get(row);
            if (b == null || b == 0) continue;
            out.printf(Locale.ROOT, "  %-58s %9s%n", row, gib(b));
        }
        out.printf(Locale.ROOT, "  %-58s %9s%n", cuda ? "allocator slack (the caching allocator's size classes)" : "allocator slack",
                gib(r.peak().slack()));
        out.printf(Locale.ROOT, "  %s%n", "-".repeat(68));
        out.printf(Locale.ROOT, "  %-58s %9s%n", cuda ? "peak of tenfold's allocator" : "peak of the step's host tensors", gib(r.peakBytes()));
        if (reserved > 0) {
            out.printf(Locale.ROOT, "  %-58s %9s%n", "+ CUDA context and libraries (--reserve)", gib(reserved));
            out.printf(Locale.ROOT, "  %-58s %9s%n", "= device memory needed", gib(r.peakBytes() + reserved));
        }
        if (s.memory().offloadCheckpoints() && cuda) {
            out.printf(Locale.ROOT, "  %-58s %9s%n", "host memory for the offloaded checkpoints (pinned)", gib(r.peakHost()));
        }
        if (budget >= 0) {
            out.println();
            boolean fits = r.peakBytes() + reserved <= budget;
            String offloadFlag = s.memory().offloadCheckpoints() ? "with --offload-checkpoints" : "without --offload-checkpoints";
            String otherFlag = s.memory().offloadCheckpoints() ? "without it" : "with --offload-checkpoints";
            out.printf(Locale.ROOT, "  %s of device memory: %,d tokens %s%s.%n", MemoryCheck.bytes(budget), s.tokens(),
                    fits ? "fit" : "do NOT fit", fits ? "" : (longestOther != null && longestOther >= s.tokens() ? " (they fit " + otherFlag + ")" : ""));
            out.printf(Locale.ROOT, "  The longest trainable sequence: %,d tokens %s", longest, offloadFlag);
            if (longestOther != null) out.printf(Locale.ROOT, "; %,d %s", longestOther, otherFlag);
            out.println(".");
        }
    }

    static String json(MemoryPlan.Result r, long budget, long reserved, Integer longest, Integer longestOther) {
        ObjectMapper om = new ObjectMapper();
        MemoryPlan.Spec s = r.spec();
        ObjectNode o = om.createObjectNode();
        o.put("device", s.target() == PlanningBackend.Target.CUDA ? s.device().toString() : "cpu");
        o.put("step", s.evaluation() ? "evaluation" : "training");
        o.put("tokens", s.tokens());
        if (s.contextParallel() > 1) {
            o.put("context_parallel", s.contextParallel());
            o.put("context_parallel_scheme", s.contextParallelScheme().flag());
        }
        o.put("base", s.base() == MemoryPlan.Base.NF4 ? "nf4" : s.stored().lower());
        o.put("lora_r", s.loraRank());
        o.putPOJO("lora_targets", s.loraTargets().stream().sorted().toList());
        o.put("train_embeddings", s.trainEmbedding());
        o.put("activations", s.memory().activations().lower());
        o.put("offload_checkpoints", s.memory().offloadCheckpoints());
        o.put("mlp_tile", s.memory().mlpTileTokens());
        o.put("peak_bytes", r.peakBytes());
        o.put("requested_bytes", r.peak().requested());
        o.put("allocator_slack_bytes", r.peak().slack());
        o.put("peak_site", r.peak().site());
        ObjectNode rows = o.putObject("at_peak_bytes");
        r.peak().requestedByCategory().forEach(rows::put);
        o.put("reserve_bytes", reserved);
        o.put("device_bytes_needed", r.peakBytes() + reserved);
        o.put("host_bytes", r.peakHost());
        o.put("model_bytes_before_step", r.beforeStep());
        if (!s.evaluation()) o.put("second_step_device_allocations", r.secondStepDeviceAllocations());
        if (budget >= 0) {
            o.put("device_memory_bytes", budget);
            o.put("fits", r.peakBytes() + reserved <= budget);
            o.put("longest_tokens", longest);
            if (longestOther != null) o.put(s.memory().offloadCheckpoints() ? "longest_tokens_without_offload" : "longest_tokens_with_offload", longestOther);
        }
        return o.toString();
    }
}
