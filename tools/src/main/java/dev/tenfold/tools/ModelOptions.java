package dev.tenfold.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Backends;
import dev.tenfold.engine.Device;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Quantization;
import dev.tenfold.llama.RopeScaling;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.PeftAdapter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The options every model command shares: the folder, RoPE overrides and the device. */
final class ModelOptions {
    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "A Hugging Face Llama folder (config.json, *.safetensors, tokenizer.json).")
    Path model;

    @Option(names = "--rope-theta", paramLabel = "BASE", description = "Override rope_theta (the recipe uses 200e6).")
    @Range(min = 1, minExclusive = true) Double ropeTheta;

    @Option(names = "--rope-scaling", paramLabel = "JSON",
            description = "Override rope_scaling with a JSON object, e.g. '{\"rope_type\":\"linear\",\"factor\":4}', or 'none'.")
    String ropeScaling;

    @Option(names = "--adapter", paramLabel = "DIR",
            description = "A PEFT LoRA adapter folder to apply (its training rope_theta is used unless --rope-theta is given).")
    Path adapter;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where to run: cpu, or a CUDA GPU (cuda = cuda:0) (default: ${DEFAULT-VALUE}).")
    String device = "cpu";

    private Backend backend;

    /** The backend for --device; a bad spelling or an unusable device is one line that starts with --device. */
    Backend backend() {
        if (backend != null) return backend;
        Device d;
        try {
            d = Device.parse(device);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--device: " + e.getMessage());
        }
        Backend b;
        try {
            b = Backends.forDevice(d);
        } catch (RuntimeException | LinkageError e) {
            throw unusable(d, e);
        }
        if (!d.isCpu()) System.err.println("tenfold: running on " + d + " (" + b.name() + ")");
        backend = b;
        return b;
    }

    /**
     * The GPUs this process sees (CUDA_VISIBLE_DEVICES applies), asked of the driver without opening one:
     * the launcher of GPU ranks checks there are enough before it starts them. No CUDA is {@link #backend}'s error.
     */
    int gpuCount() {
        Device d = Device.parse(device);
        try {
            var driver = dev.tenfold.engine.cuda.CudaDriver.get();
            int count = driver.deviceCount();
            if (count == 0) throw new dev.tenfold.engine.cuda.CudaUnavailableException("the CUDA driver (" + driver.loaded() + ") sees no GPU");
            return count;
        } catch (RuntimeException | LinkageError e) {
            throw unusable(d, e);
        }
    }

    /** The library says "cuda:N: what is missing"; the flag and the ways out are the command line's. */
    private static IllegalArgumentException unusable(Device d, Throwable e) {
        String m = Main.messageOf(e);
        if (m.startsWith(d + ": ")) m = m.substring((d + ": ").length());
        return new IllegalArgumentException("--device " + d + ": " + m
                + (e instanceof dev.tenfold.engine.cuda.CudaUnavailableException
                        ? " (--device cpu runs everything on the CPU; `tenfold doctor` shows what CUDA this machine has)" : ""), e);
    }

    /** The model's config.json, read without opening the device: for checks made where no rank runs (the launcher). */
    LlamaConfig configWithoutDevice() throws IOException {
        checkFolder();
        if (adapter != null && !Files.isDirectory(adapter)) throw new IllegalArgumentException("--adapter " + adapter + ": not a folder");
        return LlamaConfig.load(model);
    }

    /** How the flags say to load the model: --rope-theta (else the adapter's), --rope-scaling, --device, and NF4 when asked. */
    LoadSpec loadSpec(boolean quantizeToNf4) throws IOException {
        RopeScaling scaling = null;
        if (ropeScaling != null) {
            if (ropeScaling.equalsIgnoreCase("none") || ropeScaling.equalsIgnoreCase("null")) {
                scaling = RopeScaling.none();
            } else {
                LlamaConfig base = LlamaConfig.load(model);
                com.fasterxml.jackson.databind.JsonNode json;
                try {
                    json = new ObjectMapper().readTree(ropeScaling);
                } catch (com.fasterxml.jackson.core.JacksonException e) {
                    throw new Flags.BadFlag("--rope-scaling is not valid JSON: " + e.getOriginalMessage());
                }
                if (json != null && json.has("rope_theta")) {
                    throw new Flags.BadFlag("--rope-scaling: give the RoPE base with --rope-theta, not as rope_theta inside the scaling");
                }
                try {
                    scaling = RopeScaling.parse(ropeScaling, base.maxPositionEmbeddings(), null);
                } catch (IllegalArgumentException e) {
                    throw new Flags.BadFlag("--rope-scaling: " + e.getMessage());
                }
            }
        }
        Double theta = ropeTheta;
        if (theta == null && adapter != null) theta = PeftAdapter.readConfig(adapter).ropeTheta();
        return LoadSpec.defaults().ropeTheta(theta).ropeScaling(scaling).backend(backend())
                .quantization(quantizeToNf4 ? Quantization.NF4 : Quantization.NONE);
    }

    LlamaModel load() throws IOException {
        return load(false);
    }

    /**
     * Loads the model; a bitsandbytes NF4 checkpoint is read as NF4, and {@code quantizeToNf4}
     * quantizes a dense one on load (QLoRA).
     */
    LlamaModel load(boolean quantizeToNf4) throws IOException {
        checkFolder();
        boolean preQuantized = LlamaConfig.load(model).quantizationConfig() != null;
        if (quantizeToNf4 && !preQuantized) System.err.println("tenfold: quantizing the base weights to NF4 on load");
        LlamaLoader.Loaded loaded = LlamaLoader.loadReporting(model, loadSpec(quantizeToNf4));
        if (!loaded.unexpected().isEmpty()) {
            System.err.println("tenfold: note: " + loaded.unexpected().size() + " checkpoint tensor(s) not used by the model, e.g. "
                    + loaded.unexpected().get(0));
        }
        LlamaModel m = loaded.model();
        if (adapter != null) {
            try {
                PeftAdapter.Config cfg = PeftAdapter.load(adapter, m);
                System.err.println("tenfold: adapter " + adapter + " (LoRA r=" + cfg.lora().rank() + " on "
                        + String.join(",", cfg.lora().targetModules()) + (cfg.lora().trainEmbeddings() ? ", trained embedding" : "") + ")");
            } catch (RuntimeException | IOException e) {
                m.close();
                throw e;
            }
        }
        return m;
    }

    Tokenizer tokenizer() throws IOException {
        return tokenizerOf(model);
    }

    /**
     * The model's config.json, read without loading any weight, for the checks made before loading;
     * the folder, --adapter and --device are checked first.
     */
    LlamaConfig config() throws IOException {
        checkFolder();
        backend();
        if (adapter != null && !Files.isDirectory(adapter)) throw new IllegalArgumentException("--adapter " + adapter + ": not a folder");
        return LlamaConfig.load(model);
    }

    /** Whether the model's tensors will live in host memory (--device cpu). */
    boolean onHost() {
        try {
            return Device.parse(device).isCpu();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--device: " + e.getMessage());
        }
    }

    /**
     * The model's weights as they will sit in memory: the safetensors files, memory-mapped and
     * used in place; with NF4 (quantized on load) the projections at half a byte per weight and the
     * rest as stored.
     */
    long weightBytes(LlamaConfig c, boolean quantizeToNf4) throws IOException {
        long files = MemoryCheck.weightFiles(model);
        if (!quantizeToNf4) return files;
        long projections = MemoryCheck.projectionParameters(c);
        long others = Math.max(0, MemoryCheck.parameters(c) - projections) * 4; // F32 at most
        return Math.min(files, MemoryCheck.add(MemoryCheck.nf4Bytes(projections), others));
    }

    /** The tokenizer.json of a model folder; a missing folder or file is one line naming it. */
    static Tokenizer tokenizerOf(Path model) throws IOException {
        checkFolder(model);
        Path file = model.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("no tokenizer.json in " + model + " (tenfold reads the Hugging Face tokenizer.json)");
        }
        return Tokenizer.load(file);
    }

    private void checkFolder() {
        checkFolder(model);
    }

    private static void checkFolder(Path model) {
        if (!Files.isDirectory(model)) throw new IllegalArgumentException("--model " + model + ": not a folder");
    }
}
