package dev.tenfold.tools;

import dev.tenfold.engine.Machine;
import dev.tenfold.llama.HfSchema;
import dev.tenfold.llama.LlamaConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * What a command will allocate, estimated from config.json and its flags before anything is
 * allocated, and refused in one line when this machine does not have it: a run that cannot fit
 * stops at once instead of growing until the kernel's out-of-memory killer ends it (or the
 * machine). The estimates follow how the model allocates (see LlamaModel, DecoderLayer, KvCache,
 * TrainingStep): F32 tensors off the Java heap, on the host for --device cpu; token arrays and
 * prompt text on the Java heap. They are meant to be right to within tens of percent, not exact.
 */
final class MemoryCheck {
    /** Tokens that LlamaModel processes per chunk in inference (its activations scale with this, not the prompt). */
    private static final int CHUNK_TOKENS = 256;
    /**
     * Java heap per token of a prompt built from text: the text itself, the tokenizer's pieces while it
     * encodes, the ids and their copies. Measured: a 1M-token pass-key prompt needs a heap of 96 to
     * 128 MiB, a 4M-token one 256 to 384 MiB (the tests' tiny byte-level tokenizer).
     */
    static final long HEAP_PER_PROMPT_TOKEN = 128;

    private final String what;
    private final boolean tensorsOnHost;
    private final Map<String, Long> tensors = new LinkedHashMap<>();
    private final Map<String, Long> heap = new LinkedHashMap<>();

    /**
     * @param what          the flags that make it big, for the message (e.g. "--lengths 1000000")
     * @param tensorsOnHost whether the model's tensors live in host memory (--device cpu); on a GPU
     *                      they are the device allocator's to refuse, and only the heap is checked here
     */
    MemoryCheck(String what, boolean tensorsOnHost) {
        this.what = what;
        this.tensorsOnHost = tensorsOnHost;
    }

    /** Memory outside the Java heap: weights, KV cache, activations, optimizer state. */
    MemoryCheck tensors(String part, long bytes) {
        tensors.merge(part, bytes, MemoryCheck::add);
        return this;
    }

    /** Memory on the Java heap: token ids, prompt text, datasets. */
    MemoryCheck heap(String part, long bytes) {
        heap.merge(part, bytes, MemoryCheck::add);
        return this;
    }

    long tensorBytes() { return tensors.values().stream().reduce(0L, MemoryCheck::add); }

    long heapBytes() { return heap.values().stream().reduce(0L, MemoryCheck::add); }

    /** Refuses when this machine cannot hold the estimate. */
    void check() {
        check(Machine.availableMemory(), Machine.physicalMemory(), Runtime.getRuntime().maxMemory());
    }

    /** As {@link #check()} against the given machine (-1: unknown, not checked). */
    void check(long availableBytes, long physicalBytes, long heapMaxBytes) {
        long heapNeed = heapBytes();
        if (heapMaxBytes > 0 && heapNeed > heapMaxBytes) {
            throw new IllegalArgumentException(what + " needs about " + bytes(heapNeed) + " of Java heap (" + parts(heap)
                    + "), and the heap may grow to " + bytes(heapMaxBytes) + " (raise it with TENFOLD_JAVA_OPTS=-Xmx...)");
        }
        long need = add(tensorsOnHost ? tensorBytes() : 0, heapNeed);
        if (availableBytes > 0 && need > availableBytes) {
            Map<String, Long> all = new LinkedHashMap<>();
            if (tensorsOnHost) all.putAll(tensors);
            heap.forEach((k, v) -> all.merge(k, v, MemoryCheck::add));
            throw new IllegalArgumentException(what + " needs about " + bytes(need) + " of memory (" + parts(all)
                    + "), and this machine has " + bytes(availableBytes) + " available"
                    + (physicalBytes > 0 ? " (" + bytes(physicalBytes) + " in all)" : ""));
        }
    }

    /** "KV cache 2.0 GiB, weights 1.2 MiB", largest first. */
    private static String parts(Map<String, Long> m) {
        return m.entrySet().stream().filter(e -> e.getValue() > 0).sorted(Map.Entry.<String, Long>comparingByValue().reversed())
                .map(e -> e.getKey() + " " + bytes(e.getValue())).reduce((a, b) -> a + ", " + b).orElse("nothing");
    }

    static String bytes(long b) {
        String[] units = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = b;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? b + " bytes" : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    // ------------------------------------------------------------------ estimates, from the config

    /** Keys and values of every layer for {@code positions} tokens, F32 (KvCache). */
    static long kvCache(LlamaConfig c, long positions) {
        return sat((long) c.numLayers() * 2 * c.numKvHeads() * c.headDim() * 4, positions);
    }

    /** One inference pass's scratch: the decoder layer's activations for a chunk, the hidden states, one row of logits. */
    static long inferenceScratch(LlamaConfig c, long tokens) {
        long t = Math.min(tokens, CHUNK_TOKENS);
        return 4 * (t * layerActivations(c) + 2 * t * c.hiddenSize() + c.vocabSize());
    }

    /** F32 values per token that one decoder layer's forward keeps (DecoderLayer): a, x2, m; q, att; k, v; g, u, s. */
    private static long layerActivations(LlamaConfig c) {
        long h = c.hiddenSize(), qw = (long) c.numHeads() * c.headDim(), kvw = (long) c.numKvHeads() * c.headDim();
        return 3 * h + 2 * qw + 2 * kvw + 3L * c.intermediateSize() + 2 + c.numHeads();
    }

    /** F32 values per token of one decoder layer's backward scratch (DecoderLayer.allocateGradients). */
    private static long layerGradients(LlamaConfig c) {
        long h = c.hiddenSize(), qw = (long) c.numHeads() * c.headDim(), kvw = (long) c.numKvHeads() * c.headDim();
        return 2 * qw + 2 * kvw + 5 * h + 3L * c.intermediateSize();
    }

    /**
     * One training sequence of {@code tokens} (TrainingStep): every layer's input kept (gradient
     * checkpointing), one layer's activations and gradients, the final norm and its gradients.
     */
    static long trainingActivations(LlamaConfig c, long tokens) {
        long perToken = (c.numLayers() + 1L) * c.hiddenSize() + layerActivations(c) + layerGradients(c) + 4L * c.hiddenSize() + 4;
        return sat(sat(4, perToken), tokens);
    }

    /** Each projection's {in, out} by its short name (q, ..., down), from the checkpoint schema. */
    private static Map<String, long[]> projections(LlamaConfig c) {
        Map<String, long[]> p = new LinkedHashMap<>();
        for (HfSchema.Projection x : HfSchema.Projection.values()) p.put(x.shortName(), new long[] {x.in(c), x.out(c)});
        return p;
    }

    /** Every weight of the model (embedding, projections, norms, an untied output matrix). */
    static long parameters(LlamaConfig c) {
        long perLayer = 2L * c.hiddenSize();
        for (long[] io : projections(c).values()) perLayer = add(perLayer, io[0] * io[1]);
        long embedding = (long) c.vocabSize() * c.hiddenSize();
        return add(sat(perLayer, c.numLayers()), embedding * (c.tieWordEmbeddings() ? 1 : 2) + c.hiddenSize());
    }

    /** Weights of the projections alone (what NF4 quantizes). */
    static long projectionParameters(LlamaConfig c) {
        long perLayer = 0;
        for (long[] io : projections(c).values()) perLayer = add(perLayer, io[0] * io[1]);
        return sat(perLayer, c.numLayers());
    }

    /** LoRA A and B of rank r on the given targets (q, k, v, o, gate, up, down) of every layer. */
    static long loraParameters(LlamaConfig c, int rank, Set<String> targets) {
        long perLayer = 0;
        for (var e : projections(c).entrySet()) {
            if (targets.contains(e.getKey())) perLayer = add(perLayer, sat(rank, e.getValue()[0] + e.getValue()[1]));
        }
        return sat(perLayer, c.numLayers());
    }

    /** The bytes of the model folder's *.safetensors files: the weights, which are memory-mapped and used in place. */
    static long weightFiles(Path modelDir) throws IOException {
        if (!Files.isDirectory(modelDir)) return 0;
        try (Stream<Path> s = Files.list(modelDir)) {
            long sum = 0;
            for (Path p : s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).toList()) sum += Files.size(p);
            return sum;
        }
    }

    /** NF4 with double quantization: half a byte per weight plus about 1/64 of a byte of scales (bitsandbytes' layout). */
    static long nf4Bytes(long weights) {
        return weights / 2 + weights / 64 + 1;
    }

    /** a + b of two sizes, saturating at Long.MAX_VALUE. */
    static long add(long a, long b) {
        long r = a + b;
        return r < 0 ? Long.MAX_VALUE : r;
    }

    /** a * b, saturating at Long.MAX_VALUE (a config with a million layers must give a huge number, not a negative one). */
    static long sat(long a, long b) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }
}
