package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.cuda.CudaAllocator;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.cuda.CudaDriver;
import dev.tenfold.engine.cuda.CudaUnavailableException;
import dev.tenfold.engine.plan.PlanningBackend;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.TrainingMemory;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LrSchedule;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.TrainingSettings;
import dev.tenfold.qlora.plan.MemoryPlan;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The memory plan checked on a GPU: for the recipe's step (NF4 base with random weights, LoRA r=32 on q,k,v,o, trained
 * embedding, AdamW, BF16 activations) of a Llama-3-8B-shaped model at each length, without and with offloaded
 * checkpoints, the peak that the caching allocator measures (from what it held before the model was built: the
 * flash kernels' cu_seqlens of the lengths run before, which the backend keeps) beside the peak {@code tenfold plan}
 * gives for the same step, which should be the same to the byte; the device memory the driver reports in use
 * beyond the allocator's (CUDA context, cuBLAS: what {@code --reserve} stands for); and the time of a step with and
 * without offload.
 *
 * <p>Prints a table on stdout, progress on stderr, and writes memory-check.json to {@code --out}. Exit 0 when every
 * case agrees within the allocator's rounding (2 MiB), 1 otherwise; without a GPU it says why and exits 0 (1 where
 * TENFOLD_REQUIRE_GPU=1). {@code --smoke} runs a toy model at toy lengths (the fake CUDA stack's test).
 */
public final class GpuMemoryCheck {
    static final String USAGE = """
            usage: memory-check [--out DIR] [--tokens LIST] [--smoke]
              --out DIR        where memory-check.json goes (default target/memory-check)
              --tokens LIST    sequence lengths, comma-separated (default 16384,65536)
              --smoke          a toy model (hidden 256, 2 layers) at 64 and 96 tokens: the code path only
            """;
    static final String JSON = "memory-check.json";
    /** The allocator's rounding: its large size classes. */
    static final long TOLERANCE = 2L << 20;

    /** One case: a length, offload or not, the two peaks, the driver's view, the step's time. */
    record Case(int tokens, boolean offload, long planned, long measured, long driverUsed, long reserved, double stepSeconds) {
        long difference() { return planned - measured; }
    }

    public static void main(String[] args) throws IOException {
        Path out = Path.of("target", "memory-check");
        String tokens = null;
        boolean smoke = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--out" -> out = Path.of(value(args, ++i));
                case "--tokens" -> tokens = value(args, ++i);
                case "--smoke" -> smoke = true;
                case "--help", "-h" -> {
                    System.out.print(USAGE);
                    return;
                }
                default -> usage("unknown argument " + args[i]);
            }
        }
        int[] lengths;
        try {
            lengths = java.util.Arrays.stream((tokens != null ? tokens : smoke ? "64,96" : "16384,65536").split(","))
                    .mapToInt(s -> Integer.parseInt(s.trim())).toArray();
        } catch (NumberFormatException e) {
            usage("--tokens: " + e.getMessage());
            return;
        }
        CudaBackend gpu;
        try {
            gpu = CudaBackend.open(0);
        } catch (CudaUnavailableException e) {
            System.err.println("memory-check: no CUDA backend: " + e.getMessage());
            System.exit(CudaBackend.gpuRequired() ? 1 : 0);
            return;
        }
        String config = smoke ? GpuTrainStep.TINY : GpuTrainStep.LLAMA3_8B;
        List<Case> cases = run(gpu, LlamaConfig.parse(config), lengths, System.err);
        print(System.out, gpu, smoke ? GpuTrainStep.TINY_DESCRIPTION : GpuTrainStep.LLAMA3_8B_DESCRIPTION, cases);
        Files.createDirectories(out);
        Files.writeString(out.resolve(JSON), json(gpu, cases));
        boolean ok = cases.stream().allMatch(c -> Math.abs(c.difference()) <= TOLERANCE);
        System.exit(ok ? 0 : 1);
    }

    private static String value(String[] args, int i) {
        if (i >= args.length) usage(args[i - 1] + " needs a value");
        return args[i];
    }

    private static void usage(String problem) {
        System.err.println("memory-check: " + problem);
        System.err.print(USAGE);
        System.exit(2);
    }

    /** The recipe's step as a plan spec. */
    static MemoryPlan.Spec spec(LlamaConfig c, int tokens, boolean offload) {
        return MemoryPlan.Spec.training(c, tokens).withStored(DType.BF16).withLora(GpuTrainStep.LORA_RANK, Lora.parseTargets("q,k,v,o"))
                .withMemory(TrainingMemory.lean(offload));
    }

    /** Every length: one model, then the step without and with offload, each planned and measured. */
    static List<Case> run(CudaBackend gpu, LlamaConfig c, int[] lengths, PrintStream log) {
        List<Case> cases = new ArrayList<>();
        CudaAllocator allocator = gpu.allocator();
        for (int t : lengths) {
            allocator.emptyCache();
            long kept = allocator.stats().inUseBytes(); // what the backend keeps for good: cu_seqlens of earlier lengths
            log.printf(Locale.ROOT, "memory-check: %,d tokens: building the random model%n", t);
            try (LlamaModel model = GpuTrainStep.build(gpu, c, 7)) {
                MemoryPlan.prepare(model, spec(c, t, false));
                // one trainer for both cases: its AdamW moments live as long as the model, so a second trainer would count twice
                Trainer trainer = new Trainer(model, TrainingSettings.defaults().lr(5e-5).schedule(LrSchedule.Kind.LINEAR).maxSteps(4).seed(0));
                for (boolean offload : new boolean[] {false, true}) {
                    MemoryPlan.Spec spec = spec(c, t, offload);
                    long planned = MemoryPlan.plan(spec).peakBytes();
                    model.setTrainingMemory(spec.memory()); // frees the last case's buffers and the allocator's cache
                    allocator.resetPeaks();
                    double seconds = steps(gpu, trainer, t);
                    CudaAllocator.Stats s = allocator.stats();
                    CudaDriver.MemoryInfo mi = gpu.memoryInfo();
                    long used = mi.total() - mi.free();
                    Case k = new Case(t, offload, planned, s.peakInUseBytes() - kept, used, s.reservedBytes(), seconds);
                    cases.add(k);
                    log.printf(Locale.ROOT, "memory-check: %,d tokens, offload %s: planned %,d bytes, measured %,d (difference %,d), step %.2f s%n",
                            t, offload ? "on" : "off", planned, k.measured(), k.difference(), seconds);
                }
            }
        }
        return cases;
    }

    /**
     * Two optimizer steps of the trainer (as the plan runs them: its AdamW moments allocated when it was made, then
     * each step's gradients, norm and update); returns the second's seconds (the first allocates the step's buffers).
     */
    static double steps(CudaBackend gpu, Trainer trainer, int t) {
        LlamaModel model = trainer.model();
        int[] ids = DeviceFill.randomInts(t, model.config().vocabSize(), 1), targets = DeviceFill.randomInts(t, model.config().vocabSize(), 2);
        Trainer.Example example = new Trainer.Example(ids, targets, TrainingStep.consecutive(t));
        GpuTrainStep.step(gpu, trainer, example);
        long t0 = System.nanoTime();
        GpuTrainStep.step(gpu, trainer, example);
        return (System.nanoTime() - t0) / 1e9;
    }

    static String gib(long bytes) { return String.format(Locale.ROOT, "%.3f", bytes / (double) (1L << 30)); }

    static void print(PrintStream out, CudaBackend gpu, String model, List<Case> cases) {
        out.println("Memory plan against the GPU: " + gpu.gpuName() + ", " + model);
        out.println("recipe step: NF4 base, LoRA r=32 on q,k,v,o, trained embedding, AdamW, BF16 activations");
        out.println();
        out.println("| tokens | offload | planned GiB | measured GiB | planned - measured (bytes) | driver's in use GiB | beyond the allocator GiB | step s |");
        out.println("|---:|---|---:|---:|---:|---:|---:|---:|");
        for (Case c : cases) {
            out.printf(Locale.ROOT, "| %,d | %s | %s | %s | %,d | %s | %s | %.2f |%n", c.tokens(), c.offload() ? "on" : "off", gib(c.planned()),
                    gib(c.measured()), c.difference(), gib(c.driverUsed()), gib(c.driverUsed() - c.reserved()), c.stepSeconds());
        }
    }

    static String json(CudaBackend gpu, List<Case> cases) {
        ObjectMapper om = new ObjectMapper();
        ObjectNode o = om.createObjectNode().put("gpu", gpu.gpuName());
        ArrayNode rows = o.putArray("cases");
        for (Case c : cases) {
            rows.addObject().put("tokens", c.tokens()).put("offload", c.offload()).put("planned_bytes", c.planned())
                    .put("measured_bytes", c.measured()).put("difference_bytes", c.difference()).put("driver_used_bytes", c.driverUsed())
                    .put("allocator_reserved_bytes", c.reserved()).put("step_seconds", c.stepSeconds());
        }
        return o.toPrettyString();
    }
}
