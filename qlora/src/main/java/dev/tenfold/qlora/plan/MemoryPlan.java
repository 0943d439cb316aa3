package dev.tenfold.qlora.plan;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.plan.PlanningBackend;
import dev.tenfold.llama.ContextParallelScheme;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Perplexity;
import dev.tenfold.llama.TrainingMemory;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.TrainingSettings;
import dev.tenfold.qlora.LrSchedule;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.nf4.Nf4;
import dev.tenfold.qlora.nf4.Nf4Linear;
import dev.tenfold.qlora.nf4.Nf4Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The exact memory of a training step (or an evaluation pass) for any Llama config, without weights and
 * without the memory: the model is built from placeholder weights of the dtypes and shapes the loaders
 * give (NF4 parts included), LoRA attached and the embedding made trainable as a run does, and then the
 * real {@link Trainer} runs two steps (or {@link Perplexity} one pass) on a {@link PlanningBackend}, which
 * computes nothing and records every allocation. The figures are therefore the code's own behaviour: what
 * the model, the trainer and the backend allocate, in the backend's allocator's sizes.
 */
public final class MemoryPlan {
    private MemoryPlan() {}

    /** How the frozen base is stored. */
    public enum Base {
        /** NF4 with double quantization, as QLoRA loads a dense checkpoint (or reads a bitsandbytes one). */
        NF4,
        /** As the checkpoint stores it (config.json's dtype: BF16 stays BF16, F16 becomes F32, F32 stays F32). */
        DENSE
    }

    /**
     * What to plan, built fluently from {@link #training} or {@link #evaluation}; each wither returns a new value.
     * Accessors: {@code config, tokens, base, stored} (the dtype the loader keeps the checkpoint's dense tensors in:
     * BF16, or F32 for F32 and F16 checkpoints; see {@link #storedDtype}), {@code loraRank} (0: no adapters),
     * {@code loraTargets} (PEFT module names), {@code trainEmbedding, memory}, {@code evaluation} (a forward pass
     * scoring every token, as one window of sliding-window perplexity, instead of a training step),
     * {@code target, device}.
     */
    public static final class Spec {
        private final LlamaConfig config;
        private final int tokens;
        private final Base base;
        private final DType stored;
        private final int loraRank;
        private final Set<String> loraTargets;
        private final boolean trainEmbedding;
        private final TrainingMemory memory;
        private final boolean evaluation;
        private final PlanningBackend.Target target;
        private final Device device;
        private final int contextParallel;
        private final ContextParallelScheme scheme; // resolved: Ulysses or the all-gather (Ulysses for no context parallelism)

        private Spec(LlamaConfig config, int tokens, Base base, DType stored, int loraRank, Set<String> loraTargets, boolean trainEmbedding,
                     TrainingMemory memory, boolean evaluation, PlanningBackend.Target target, Device device, int contextParallel) {
            this(config, tokens, base, stored, loraRank, loraTargets, trainEmbedding, memory, evaluation, target, device, contextParallel,
                    ContextParallelScheme.AUTO);
        }

        private Spec(LlamaConfig config, int tokens, Base base, DType stored, int loraRank, Set<String> loraTargets, boolean trainEmbedding,
                     TrainingMemory memory, boolean evaluation, PlanningBackend.Target target, Device device, int contextParallel,
                     ContextParallelScheme scheme) {
            if (contextParallel < 1) throw new IllegalArgumentException("context parallelism: the group needs >= 1 rank, got " + contextParallel);
            this.scheme = scheme.resolve(contextParallel, config.numKvHeads());
            if (stored != DType.BF16 && stored != DType.F32) throw new IllegalArgumentException("stored dtype must be BF16 or F32, got " + stored);
            if (tokens < 2) throw new IllegalArgumentException("tokens must be >= 2, got " + tokens);
            if (loraRank < 0) throw new IllegalArgumentException("LoRA rank must be >= 0, got " + loraRank);
            this.config = config;
            this.tokens = tokens;
            this.base = base;
            this.stored = stored;
            this.loraRank = loraRank;
            this.loraTargets = Set.copyOf(loraTargets);
            this.trainEmbedding = trainEmbedding;
            this.memory = memory;
            this.evaluation = evaluation;
            this.target = target;
            this.device = device;
            this.contextParallel = contextParallel;
        }

        /**
         * A training step of {@code tokens} as the paper's recipe runs it on a GPU: NF4 base, LoRA r=32 on q,k,v,o, the
         * embedding trained, BF16 activations with checkpoints on the device, on cuda:0.
         */
        public static Spec training(LlamaConfig config, int tokens) {
            return new Spec(config, tokens, Base.NF4, storedDtype(config), 32, Set.of("q_proj", "k_proj", "v_proj", "o_proj"), true,
                    TrainingMemory.lean(false), false, PlanningBackend.Target.CUDA, Device.cuda(0), 1);
        }

        /** A forward pass of {@code tokens} scoring every token (one perplexity window), no adapters, on cuda:0. */
        public static Spec evaluation(LlamaConfig config, int tokens) {
            return new Spec(config, tokens, Base.NF4, storedDtype(config), 0, Set.of(), false, TrainingMemory.lean(false), true,
                    PlanningBackend.Target.CUDA, Device.cuda(0), 1);
        }

        public Spec withTokens(int n) {
            return new Spec(config, n, base, stored, loraRank, loraTargets, trainEmbedding, memory, evaluation, target, device, contextParallel, scheme);
        }

        public Spec withBase(Base b) {
            return new Spec(config, tokens, b, stored, loraRank, loraTargets, trainEmbedding, memory, evaluation, target, device, contextParallel, scheme);
        }

        public Spec withStored(DType d) {
            return new Spec(config, tokens, base, d, loraRank, loraTargets, trainEmbedding, memory, evaluation, target, device, contextParallel, scheme);
        }

        /** LoRA of {@code rank} (0: none) on the PEFT modules {@code targets} (q_proj, ...; see {@link Lora#parseTargets}). */
        public Spec withLora(int rank, Set<String> targets) {
            return new Spec(config, tokens, base, stored, rank, targets, trainEmbedding, memory, evaluation, target, device, contextParallel, scheme);
        }

        public Spec withTrainEmbedding(boolean train) {
            return new Spec(config, tokens, base, stored, loraRank, loraTargets, train, memory, evaluation, target, device, contextParallel, scheme);
        }

        public Spec withMemory(TrainingMemory m) {
            return new Spec(config, tokens, base, stored, loraRank, loraTargets, trainEmbedding, m, evaluation, target, device, contextParallel, scheme);
        }

        /** The backend planned for: its allocator's rules ({@code target}) and the device its tensors name. */
        public Spec on(PlanningBackend.Target t, Device d) {
            return new Spec(config, tokens, base, stored, loraRank, loraTargets, trainEmbedding, memory, evaluation, t, d, contextParallel, scheme);
        }

        public LlamaConfig config() { return config; }
        public int tokens() { return tokens; }
        public Base base() { return base; }
        public DType stored() { return stored; }
        public int loraRank() { return loraRank; }
        public Set<String> loraTargets() { return loraTargets; }
        public boolean trainEmbedding() { return trainEmbedding; }
        public TrainingMemory memory() { return memory; }
        public boolean evaluation() { return evaluation; }
        public PlanningBackend.Target target() { return target; }
        public Device device() { return device; }
        /** Ranks sharing the sequence (context parallelism; 1: none): the plan is one rank's. */
        public int contextParallel() { return contextParallel; }

        /** The context-parallel scheme planned (resolved: Ulysses or the all-gather). */
        public ContextParallelScheme contextParallelScheme() { return scheme; }

        /**
         * The step of one rank of {@code n} sharing each sequence (context parallelism): its share of the tokens, attention over
         * all, with the scheme {@link ContextParallelScheme#AUTO} picks.
         */
        public Spec withContextParallel(int n) {
            return withContextParallel(n, ContextParallelScheme.AUTO);
        }

        /** As {@link #withContextParallel(int)} with the scheme given (the all-gather's gathered keys and values are planned too). */
        public Spec withContextParallel(int n, ContextParallelScheme scheme) {
            return new Spec(config, tokens, base, stored, loraRank, loraTargets, trainEmbedding, memory, evaluation, target, device, n, scheme);
        }

        /** A training step must train something. */
        void check() {
            if (evaluation && contextParallel > 1) throw new IllegalArgumentException("context parallelism plans a training step, not --eval");
            if (!evaluation && loraRank == 0 && !trainEmbedding) {
                throw new IllegalArgumentException("nothing to train: give a LoRA rank or train the embedding");
            }
        }
    }

    /**
     * What a plan found.
     *
     * @param peak                    memory in use at its highest (the allocator's blocks), with what held it
     * @param beforeStep              memory held once the model was made and prepared (weights, adapters, trained
     *                                parameters and their gradients), before the trainer starts
     * @param peakHost                host memory for offloaded checkpoints (pinned on a GPU)
     * @param secondStepDeviceAllocations blocks the second training step took from the device (0: the first step's
     *                                memory served it); -1 for an evaluation
     */
    public record Result(Spec spec, PlanningBackend.Usage peak, long beforeStep, long peakHost, long secondStepDeviceAllocations) {
        public long peakBytes() { return peak.inUse(); }
    }

    /** The category of each allocation, by the nearest frame of the code that made it. */
    static final Map<String, String> CATEGORIES = categories();

    /** Row names of the plan's table, in the order the table shows them. */
    public static final List<String> ROWS = List.of("weights", "trained parameters and gradients", "optimizer state", "checkpoints",
            "layer working set", "residual gradients and loss", "attention scratch", "loss scratch", "dequantized NF4 weight",
            "adapter scratch", "op scratch", "KV cache", "evaluation scratch", "context-parallel attention", "other");

    private static Map<String, String> categories() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("LoraLinear.<init>", "trained parameters and gradients");
        m.put("Parameter", "trained parameters and gradients");
        m.put("LlamaModel.trainEmbedding", "trained parameters and gradients");
        m.put("LlamaModel.ownParameter", "trained parameters and gradients");
        m.put("LoraLinear", "adapter scratch");
        m.put("Nf4Linear.dequantizeOnDevice", "dequantized NF4 weight");
        m.put("Nf4Linear", "weights");
        m.put("DenseLinear", "weights");
        m.put("LlamaModel.forward", "evaluation scratch");
        m.put("LlamaModel.forwardChunk", "evaluation scratch");
        m.put("LlamaModel.logitsOfLastRow", "evaluation scratch");
        m.put("LlamaModel", "weights");
        m.put("Trainer.<init>", "optimizer state");
        m.put("Checkpoints", "checkpoints");
        m.put("DecoderLayer", "layer working set");
        m.put("TrainingStep", "residual gradients and loss");
        m.put("UlyssesAttention", "context-parallel attention");
        m.put("ZigzagAllGatherAttention", "context-parallel attention");
        m.put("KvCache", "KV cache");
        m.put("Perplexity", "evaluation scratch");
        return m;
    }

    /** Plans one spec: two training steps (the second shows what the first left for it), or one evaluation pass. */
    public static Result plan(Spec spec) { return plan(spec, 2); }

    /** As {@link #plan(Spec)} with {@code steps} training steps (1: quicker, for a search; the second's count is then -1). */
    static Result plan(Spec spec, int steps) {
        spec.check();
        PlanningBackend b = new PlanningBackend(spec.target(), spec.device(), CATEGORIES);
        try (LlamaModel model = build(spec.config(), spec.base(), spec.stored(), b)) {
            prepare(model, spec);
            long before = b.now().inUse();
            long[] afterFirst = {-1};
            run(model, spec.tokens(), spec.evaluation(), steps, spec.contextParallel(), spec.contextParallelScheme(), () -> afterFirst[0] = b.deviceAllocations());
            long second = spec.evaluation() || steps < 2 ? -1 : b.deviceAllocations() - afterFirst[0];
            return new Result(spec, b.peak(), before, b.peakHost(), second);
        }
    }

    /** Makes a loaded model what the spec trains: LoRA on its targets, the embedding trainable, its training memory. */
    public static void prepare(LlamaModel model, Spec spec) {
        if (spec.loraRank() > 0) Lora.attach(model, LoraConfig.of(spec.loraRank(), 16f).targetModules(spec.loraTargets()).seed(0));
        if (spec.trainEmbedding()) model.trainEmbedding();
        model.setTrainingMemory(spec.memory());
    }

    /**
     * What a plan runs, on any model and backend (a plan's placeholders, or a real device to measure it): two
     * optimizer steps of the real {@link Trainer} on one sequence of {@code tokens} (in a temporary folder, deleted
     * after; {@code afterFirstStep} runs between them), or for an evaluation the sliding-window perplexity of one
     * window of {@code tokens}.
     */
    public static void run(LlamaModel model, int tokens, boolean evaluation, Runnable afterFirstStep) {
        run(model, tokens, evaluation, 2, 1, ContextParallelScheme.AUTO, afterFirstStep);
    }

    private static void run(LlamaModel model, int tokens, boolean evaluation, int steps, int contextParallel, ContextParallelScheme scheme,
                            Runnable afterFirstStep) {
        if (evaluation) {
            Perplexity.evaluate(model, List.of(new int[tokens]), tokens, tokens);
            return;
        }
        int[] ids = new int[tokens], targets = new int[tokens];
        List<Trainer.Example> batch = List.of(new Trainer.Example(ids, targets, TrainingStep.consecutive(tokens)));
        Trainer trainer = new Trainer(model, TrainingSettings.defaults().lr(5e-5).schedule(LrSchedule.Kind.LINEAR).maxSteps(steps).seed(0));
        if (contextParallel > 1) { // rank 0 of the group: its share of the tokens; the group's moves are nothing where nothing is computed
            PlanningGroup group = new PlanningGroup(contextParallel);
            trainer.dataParallel(group).contextParallel(group, scheme);
        }
        for (int step = 1; step <= steps; step++) {
            trainer.step(batch);
            if (step == 1 && afterFirstStep != null) afterFirstStep.run();
        }
    }

    /**
     * The longest sequence whose step's peak, plus {@code reserve}, fits {@code budget} bytes (0 when not even 2
     * tokens fit), to the token, up to {@code maxTokens}. Memory grows with the length, nearly in a line: two short
     * plans give the line, a few plans where it crosses the budget narrow the bracket (each moves the guess by what
     * it missed over the line's slope), and a bisection finishes. The search plans one training step; the answer is
     * checked with the two steps of {@link #plan(Spec)} (which can need a little more: the allocator's cache).
     */
    public static int longest(Spec spec, long budget, long reserve, int maxTokens) {
        int steps = spec.evaluation() ? 1 : 2;
        java.util.function.IntPredicate quick = n -> plan(spec.withTokens(n), 1).peakBytes() + reserve <= budget;
        java.util.function.IntPredicate full = n -> plan(spec.withTokens(n), steps).peakBytes() + reserve <= budget;
        if (!full.test(2)) return 0;
        int lo = 2, hi = maxTokens + 1; // quick(lo), not quick(hi)
        int a = Math.max(2, Math.min(2048, maxTokens / 4)), c = Math.max(a + 1, Math.min(4 * a, maxTokens));
        long pa = plan(spec.withTokens(a), 1).peakBytes(), pc = plan(spec.withTokens(c), 1).peakBytes();
        double slope = Math.max(1, (double) (pc - pa) / (c - a));
        double guess = a + (budget - reserve - pa) / slope;
        for (int i = 0; i < 4 && hi - lo > 1; i++) {
            int probe = (int) Math.max(lo + 1, Math.min(hi - 1, Math.round(guess)));
            long p = plan(spec.withTokens(probe), 1).peakBytes();
            if (p + reserve <= budget) lo = probe;
            else hi = probe;
            guess = probe + (budget - reserve - p) / slope;
            if (Math.abs(guess - probe) < 1) guess = p + reserve <= budget ? probe + 1 : probe - 1;
        }
        while (hi - lo > 1) {
            int mid = lo + (hi - lo) / 2;
            if (quick.test(mid)) lo = mid;
            else hi = mid;
        }
        if (!full.test(lo)) { // the second step can need more than the first (the allocator's cache): search again with both
            int l2 = 2, h2 = lo;
            while (h2 - l2 > 1) {
                int mid = l2 + (h2 - l2) / 2;
                if (full.test(mid)) l2 = mid;
                else h2 = mid;
            }
            lo = l2;
        }
        return lo;
    }

    // ------------------------------------------------------------------ the model, from placeholders

    /**
     * The dtype the loader keeps a checkpoint's dense tensors in, from config.json's dtype: BF16 for bfloat16 (and
     * when the config does not say), F32 for float32 and float16 (converted on load).
     */
    public static DType storedDtype(LlamaConfig c) {
        return c.torchDtype() == null || c.torchDtype().equals("bfloat16") ? DType.BF16 : DType.F32;
    }

    /**
     * A model as the loaders leave it on the backend's device, from placeholder host weights (no memory): the
     * embedding and lm_head in the checkpoint's dtype (tied when the config says so), F32 norms, and each
     * projection NF4 (double-quantized, F32 compute, as {@code Nf4Checkpoint.FACTORY}) or dense.
     */
    static LlamaModel build(LlamaConfig c, Base base, DType stored, PlanningBackend b) {
        long h = c.hiddenSize(), qOut = (long) c.numHeads() * c.headDim(), kvOut = (long) c.numKvHeads() * c.headDim();
        long inter = c.intermediateSize(), vocab = c.vocabSize();
        Tensor embedding = PlanningBackend.hostPlaceholder(stored, vocab, h);
        LlamaModel.Layer[] layers = new LlamaModel.Layer[c.numLayers()];
        List<AutoCloseable> owned = new ArrayList<>();
        for (int i = 0; i < layers.length; i++) {
            layers[i] = new LlamaModel.Layer(norm(h), norm(h), linear(base, stored, qOut, h, owned), linear(base, stored, kvOut, h, owned),
                    linear(base, stored, kvOut, h, owned), linear(base, stored, h, qOut, owned),
                    linear(base, stored, inter, h, owned), linear(base, stored, inter, h, owned), linear(base, stored, h, inter, owned));
        }
        Tensor output = c.tieWordEmbeddings() ? embedding : PlanningBackend.hostPlaceholder(stored, vocab, h);
        return new LlamaModel(c, b, embedding, layers, norm(h), output, owned);
    }

    private static Tensor norm(long h) { return PlanningBackend.hostPlaceholder(DType.F32, h); }

    private static Linear linear(Base base, DType stored, long out, long in, List<AutoCloseable> owned) {
        if (base == Base.DENSE) return new DenseLinear(PlanningBackend.hostPlaceholder(stored, out, in));
        long n = out * in, blocks = n / Nf4.BLOCK;
        if (n % Nf4.BLOCK != 0) throw new IllegalArgumentException("nf4: a [" + out + ", " + in + "] projection is not a whole number of 64-element blocks");
        Tensor nested = Tensor.allocate(DType.F32, Math.ceilDiv(blocks, Nf4.NESTED_BLOCK));
        owned.add(nested);
        Nf4Tensor w = Nf4Tensor.of(out, in, PlanningBackend.hostPlaceholder(DType.U8, n / 2), PlanningBackend.hostPlaceholder(DType.U8, blocks),
                nested, Nf4.DYNAMIC_MAP, 0f, stored);
        return new Nf4Linear(w);
    }
}
