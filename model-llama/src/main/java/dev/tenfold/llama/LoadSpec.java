package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Backends;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.cpu.CpuBackend;
import java.util.Objects;

/**
 * How to load a model: what to change from config.json (the RoPE base, as the ten-fold recipe
 * raises it to 200M, or the rope_scaling), how to store the frozen projections
 * ({@link Quantization}) and where the model computes (a {@link Backend}; the CPU by default).
 * Immutable; each wither returns a changed copy and checks its value.
 *
 * <pre>{@code LlamaLoader.load(dir, LoadSpec.defaults().ropeTheta(200e6).quantization(Quantization.NF4).device(Device.parse("cuda")))}</pre>
 */
public final class LoadSpec {
    private Double ropeTheta;
    private RopeScaling ropeScaling;
    private Quantization quantization = Quantization.NONE;
    private Backend backend;

    private LoadSpec() {}

    /** config.json as it is, the projections as stored, on the CPU. */
    public static LoadSpec defaults() { return new LoadSpec(); }

    /** The RoPE base instead of config.json's rope_theta (a number above 1). */
    public LoadSpec ropeTheta(double theta) {
        LlamaConfig.ROPE_THETA.check("rope_theta", theta);
        return with(s -> s.ropeTheta = theta);
    }

    /** The RoPE base of {@code theta}, or config.json's when null. */
    public LoadSpec ropeTheta(Double theta) {
        return theta == null ? with(s -> s.ropeTheta = null) : ropeTheta((double) theta);
    }

    /** The rope_scaling instead of config.json's ({@link RopeScaling#none()} removes it; null keeps config.json's). */
    public LoadSpec ropeScaling(RopeScaling scaling) { return with(s -> s.ropeScaling = scaling); }

    /** How the frozen projections are stored; {@link Quantization#NF4} needs tenfold-qlora on the class or module path. */
    public LoadSpec quantization(Quantization q) {
        Objects.requireNonNull(q, "quantization");
        return with(s -> s.quantization = q);
    }

    /** The backend the model computes with (and where its tensors live). */
    public LoadSpec backend(Backend b) {
        Objects.requireNonNull(b, "backend");
        return with(s -> s.backend = b);
    }

    /** The backend of a device: cpu, or cuda:N (see {@link Backends#forDevice}). */
    public LoadSpec device(Device d) { return backend(Backends.forDevice(d)); }

    /** The RoPE base that replaces config.json's, or null. */
    public Double ropeTheta() { return ropeTheta; }

    /** The rope_scaling that replaces config.json's, or null. */
    public RopeScaling ropeScaling() { return ropeScaling; }

    public Quantization quantization() { return quantization; }

    /** The backend: the one given, else the fast CPU backend. */
    public Backend backend() { return backend != null ? backend : CpuBackend.fast(); }

    /** config.json's values with this spec's changes. */
    public LlamaConfig apply(LlamaConfig config) {
        LlamaConfig c = config;
        if (ropeTheta != null) c = c.withRopeTheta(ropeTheta);
        if (ropeScaling != null) c = c.withRopeScaling(ropeScaling);
        return c;
    }

    private LoadSpec with(java.util.function.Consumer<LoadSpec> change) {
        LoadSpec s = new LoadSpec();
        s.ropeTheta = ropeTheta;
        s.ropeScaling = ropeScaling;
        s.quantization = quantization;
        s.backend = backend;
        change.accept(s);
        return s;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LoadSpec s && Objects.equals(ropeTheta, s.ropeTheta) && Objects.equals(ropeScaling, s.ropeScaling)
                && quantization == s.quantization && Objects.equals(backend, s.backend);
    }

    @Override
    public int hashCode() { return Objects.hash(ropeTheta, ropeScaling, quantization, backend); }

    @Override
    public String toString() {
        return "LoadSpec[rope_theta " + (ropeTheta == null ? "from config.json" : ropeTheta) + ", rope_scaling "
                + (ropeScaling == null ? "from config.json" : ropeScaling) + ", " + quantization + ", "
                + (backend == null ? "cpu" : backend.name()) + "]";
    }
}
