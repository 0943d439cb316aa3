package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Scratch;
import dev.tenfold.engine.StepArena;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

/**
 * A Llama-3 decoder: token embedding, decoder layers (RMSNorm, grouped-query attention with RoPE,
 * RMSNorm, SwiGLU MLP, each with a residual), the final norm and the output matrix (lm_head, or
 * the tied embedding).
 *
 * <p>One code path serves training-style prefill and incremental decoding: {@link #forward}
 * processes a chunk of tokens at the cache's next positions, appending their keys and values to
 * the {@link KvCache}, and attends to everything cached. Long inputs are processed in chunks so
 * that activations stay of size chunk x hidden.
 *
 * <p>The model computes with the {@link Backend} it is made with, and its tensors live on that
 * backend's device: weights given on the host are uploaded once, here, when the backend's device is
 * not the host (weights already there, and every weight of a host backend, are used in place).
 * Parameters, optimizer state, KV caches and the scratch of every pass are made on that device too.
 */
public final class LlamaModel implements AutoCloseable {

    /** The weights of one decoder layer; the projections can be swapped (NF4, LoRA) by name. */
    public static final class Layer {
        public Tensor attnNorm;
        public Tensor mlpNorm;
        public Linear q, k, v, o, gate, up, down;
        /** The norms' parameters when they are trained (full fine-tuning), else null. */
        public Parameter attnNormParameter, mlpNormParameter;

        private Layer(Tensor attnNorm, Linear q, Linear k, Linear v, Linear o, Tensor mlpNorm, Linear gate, Linear up, Linear down) {
            this.attnNorm = attnNorm;
            this.q = q;
            this.k = k;
            this.v = v;
            this.o = o;
            this.mlpNorm = mlpNorm;
            this.gate = gate;
            this.up = up;
            this.down = down;
        }

        /** The projections in checkpoint order (q, k, v, o, gate, up, down), with the norms. */
        public Layer(Tensor attnNorm, Tensor mlpNorm, Linear... projections) {
            this(attnNorm, projections[0], projections[1], projections[2], projections[3], mlpNorm, projections[4], projections[5],
                    projections[6]);
            if (projections.length != HfSchema.Projection.values().length) {
                throw new IllegalArgumentException("a layer has 7 projections, got " + projections.length);
            }
        }

        /** The projection {@code p}. */
        public Linear get(HfSchema.Projection p) {
            return switch (p) {
                case Q -> q;
                case K -> k;
                case V -> v;
                case O -> o;
                case GATE -> gate;
                case UP -> up;
                case DOWN -> down;
            };
        }

        void set(HfSchema.Projection p, Linear l) {
            switch (p) {
                case Q -> q = l;
                case K -> k = l;
                case V -> v = l;
                case O -> o = l;
                case GATE -> gate = l;
                case UP -> up = l;
                case DOWN -> down = l;
            }
        }
    }

    private final LlamaConfig config;
    private final Backend backend;
    private Tensor embedding;          // [V, H], F32 or BF16
    private final Layer[] layers;
    private Tensor finalNorm;          // [H] F32
    private Tensor output;             // [V, H], F32 or BF16 (the embedding when tied)
    private final List<AutoCloseable> owned = new ArrayList<>();
    private int chunkTokens = 256;
    private Parameter embeddingParameter; // non-null once the embedding is trained
    private Parameter finalNormParameter; // non-null once the norms are trained
    private Parameter outputParameter;    // non-null once an untied output matrix is trained
    private Path source;                  // the folder it was loaded from, if any
    private TrainingMemory trainingMemory;
    private StepArena stepArena;          // the training step's buffers, kept from step to step

    public LlamaModel(LlamaConfig config, Backend backend, Tensor embedding, Layer[] layers, Tensor finalNorm,
                      Tensor output, List<? extends AutoCloseable> owned) {
        if (layers.length != config.numLayers()) {
            throw new IllegalArgumentException("config has " + config.numLayers() + " layers, got " + layers.length);
        }
        this.config = config;
        this.backend = backend;
        this.layers = layers;
        this.owned.addAll(owned);
        // the weights, where the backend computes (uploaded once; in place on the host)
        this.embedding = place(embedding);
        this.output = output == embedding ? this.embedding : place(output);
        this.finalNorm = place(finalNorm);
        for (Layer l : layers) {
            l.attnNorm = place(l.attnNorm);
            l.mlpNorm = place(l.mlpNorm);
        }
        if (!backend.device().isCpu()) mapLinears((name, linear) -> linear.to(backend, this.owned));
        this.trainingMemory = backend.activationDtype() == DType.BF16 ? TrainingMemory.lean(false) : TrainingMemory.f32();
    }

    private Tensor place(Tensor t) {
        if (!Transfers.needsUpload(backend, t)) return t;
        Tensor d = Transfers.upload(backend, t);
        owned.add(d);
        return d;
    }

    public LlamaConfig config() { return config; }

    /** The Hugging Face folder the model was loaded from, or null for a model made from tensors. */
    public Path source() { return source; }

    void setSource(Path folder) { source = folder; }

    public Backend backend() { return backend; }

    public Tensor embedding() { return embedding; }

    public Tensor output() { return output; }

    public Layer layer(int i) { return layers[i]; }

    public int numLayers() { return layers.length; }

    public Tensor finalNorm() { return finalNorm; }

    /** Replaces the embedding (a trainable copy); a tied output matrix follows it. */
    public void setEmbedding(Tensor newEmbedding) {
        boolean tied = output == embedding;
        embedding = newEmbedding;
        if (tied) output = newEmbedding;
    }

    /**
     * Makes the input embedding trainable (the recipe trains embed_tokens as a whole): an F32 copy
     * with a gradient replaces it (a tied output matrix follows). The copy the model made of the
     * embedding when it was uploaded to the device is freed (a file's own memory on the host stays).
     * Returns the parameter.
     */
    public Parameter trainEmbedding() {
        if (embeddingParameter == null) {
            Tensor old = embedding;
            Tensor f32 = backend.allocate(DType.F32, embedding.shape());
            backend.cast(embedding, f32);
            embeddingParameter = Parameter.of(backend, HfSchema.EMBEDDING, f32);
            owned.add(embeddingParameter);
            setEmbedding(f32);
            if (owned.remove(old)) old.close(); // an upload of ours, used by nothing else now
        }
        return embeddingParameter;
    }

    /**
     * Makes every RMSNorm weight trainable (full fine-tuning): F32 copies with gradients, named as
     * Hugging Face names them.
     */
    public void trainNorms() {
        for (int i = 0; i < layers.length; i++) {
            Layer l = layers[i];
            if (l.attnNormParameter != null) continue;
            l.attnNormParameter = ownParameter(HfSchema.attnNorm(i), l.attnNorm);
            l.attnNorm = l.attnNormParameter.value();
            l.mlpNormParameter = ownParameter(HfSchema.mlpNorm(i), l.mlpNorm);
            l.mlpNorm = l.mlpNormParameter.value();
        }
        if (finalNormParameter == null) {
            finalNormParameter = ownParameter(HfSchema.FINAL_NORM, finalNorm);
            finalNorm = finalNormParameter.value();
        }
    }

    /** Makes an untied output matrix (lm_head) trainable; a tied one trains with the embedding. */
    public void trainOutput() {
        if (outputIsEmbedding()) {
            trainEmbedding();
        } else if (outputParameter == null) {
            outputParameter = ownParameter(HfSchema.LM_HEAD, output);
            output = outputParameter.value();
        }
    }

    private Parameter ownParameter(String name, Tensor source) {
        Tensor f32 = backend.allocate(DType.F32, source.shape());
        backend.cast(source, f32);
        Parameter p = Parameter.of(backend, name, f32);
        owned.add(p);
        return p;
    }

    public Parameter finalNormParameter() { return finalNormParameter; }

    public Parameter outputParameter() { return outputParameter; }

    /** The embedding's parameter when it is trained, else null. */
    public Parameter embeddingParameter() { return embeddingParameter; }

    /** Whether the output matrix is the (tied) input embedding. */
    public boolean outputIsEmbedding() { return output == embedding; }

    /** Every trainable parameter, in checkpoint order: embedding, each layer's norms and projections, final norm, lm_head. */
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>();
        if (embeddingParameter != null) out.add(embeddingParameter);
        for (Layer l : layers) {
            if (l.attnNormParameter != null) out.add(l.attnNormParameter);
            for (Linear p : new Linear[] {l.q, l.k, l.v, l.o}) p.parameters(out);
            if (l.mlpNormParameter != null) out.add(l.mlpNormParameter);
            for (Linear p : new Linear[] {l.gate, l.up, l.down}) p.parameters(out);
        }
        if (finalNormParameter != null) out.add(finalNormParameter);
        if (outputParameter != null) out.add(outputParameter);
        return out;
    }

    /** How a training step stores what it keeps (BF16 activations by default on a CUDA GPU, F32 elsewhere). */
    public TrainingMemory trainingMemory() { return trainingMemory; }

    /** Sets how a training step stores what it keeps; the buffers of earlier steps are freed. */
    public void setTrainingMemory(TrainingMemory memory) {
        if (memory == null) throw new IllegalArgumentException("training memory is null");
        trainingMemory = memory;
        releaseStepMemory();
    }

    /**
     * The buffers of the training step, kept from one step to the next so that a step at fixed shapes (or a
     * shorter one) allocates nothing after the first ({@link TrainingStep}); freed by {@link #releaseStepMemory}
     * and with the model.
     */
    StepArena stepArena() {
        if (stepArena == null) stepArena = new StepArena(backend);
        return stepArena;
    }

    /**
     * Frees the training step's buffers (for generation or evaluation after training: they are the step's activations),
     * and gives what the backend keeps cached back to the device, so the next step's buffers start afresh.
     */
    public void releaseStepMemory() {
        if (stepArena != null) stepArena.close();
        stepArena = null;
        backend.releaseCachedMemory();
    }

    /** Tokens processed per chunk in {@link #forward} (bounds activation memory). */
    public void setChunkTokens(int n) {
        if (n <= 0) throw new IllegalArgumentException("chunk must be positive");
        chunkTokens = n;
    }

    /** Keeps {@code resource} open as long as the model (closed with it). */
    public void own(AutoCloseable resource) { owned.add(resource); }

    /**
     * Replaces every projection for which {@code mapper} returns a new Linear. The name is the
     * Hugging Face module name, e.g. {@code model.layers.3.self_attn.q_proj}.
     */
    public void mapLinears(BiFunction<String, Linear, Linear> mapper) {
        for (int i = 0; i < layers.length; i++) {
            Layer l = layers[i];
            for (HfSchema.Projection p : HfSchema.Projection.values()) l.set(p, mapper.apply(p.module(i), l.get(p)));
        }
    }

    // ------------------------------------------------------------------ inference

    /**
     * Runs {@code ids} at positions cache.length() ... and appends their keys and values to the
     * cache. When {@code hiddenOut} ([ids.length, H] F32, on the backend's device) is not null it
     * receives the final-norm hidden state of every token; the method returns the logits of the
     * last token (F32 [V]: the one row read back to the host).
     */
    public float[] forward(int[] ids, KvCache cache, Tensor hiddenOut) {
        if (ids.length == 0) throw new IllegalArgumentException("forward: no tokens");
        if (cache.length() + ids.length > cache.capacity()) {
            throw new IllegalArgumentException("forward: " + ids.length + " tokens after " + cache.length()
                    + " do not fit a KV cache of " + cache.capacity());
        }
        int h = config.hiddenSize();
        if (hiddenOut != null && (hiddenOut.dim(0) != ids.length || hiddenOut.dim(1) != h)) {
            throw new IllegalArgumentException("forward: hiddenOut must be [" + ids.length + ", " + h + "], got " + hiddenOut.describe());
        }
        if (!cache.device().equals(backend.device())) {
            throw new IllegalArgumentException("forward: the KV cache is on " + cache.device() + " but the model computes on "
                    + backend.device() + " (make it with new KvCache(model, capacity))");
        }
        float[] logits = null;
        try (Scratch scratch = new Scratch(backend)) {
            Tensor inv = scratch.floats(config.ropeInverseFrequencies(cache.capacity()));
            for (int start = 0; start < ids.length; start += chunkTokens) {
                int n = Math.min(chunkTokens, ids.length - start);
                int[] chunk = java.util.Arrays.copyOfRange(ids, start, start + n);
                try (Scratch perChunk = new Scratch(backend)) { // freed chunk by chunk: a long prompt holds one chunk's
                    Tensor hidden = forwardChunk(perChunk, chunk, cache, inv);
                    if (hiddenOut != null) backend.copy(hidden, hiddenOut.slice(start, start + n));
                    if (start + n == ids.length) logits = logitsOfLastRow(perChunk, hidden);
                }
            }
        }
        return logits;
    }

    private Tensor forwardChunk(Scratch scratch, int[] ids, KvCache cache, Tensor invFreq) {
        int n = ids.length, h = config.hiddenSize();
        int[] positions = new int[n];
        for (int i = 0; i < n; i++) positions[i] = cache.length() + i;
        Tensor idsT = scratch.ints(ids), posT = scratch.ints(positions);
        Tensor x = scratch.tensor(DType.F32, n, h), next = scratch.tensor(DType.F32, n, h);
        DecoderLayer layer = new DecoderLayer(this, scratch::tensor, n, invFreq, posT);
        backend.embedding(embedding, idsT, x);
        for (int l = 0; l < layers.length; l++) {
            layer.forward(l, x, next, cache);
            Tensor swap = x;
            x = next;
            next = swap;
        }
        Tensor rstd = scratch.tensor(DType.F32, n);
        backend.rmsnorm(x, finalNorm, (float) config.rmsNormEps(), next, rstd);
        cache.advance(n);
        return next;
    }

    private float[] logitsOfLastRow(Scratch scratch, Tensor hidden) {
        long n = hidden.dim(0);
        Tensor logits = scratch.tensor(DType.F32, 1, config.vocabSize());
        backend.matmul(hidden.slice(n - 1, n), false, output, true, logits, false);
        return Transfers.toFloatArray(backend, logits);
    }

    @Override
    public void close() {
        if (stepArena != null) stepArena.close();
        stepArena = null;
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                // closing weights cannot fail in a way the caller could act on
            }
        }
        owned.clear();
    }
}
