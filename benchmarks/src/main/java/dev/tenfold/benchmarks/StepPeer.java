package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.TrainingSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jdk.incubator.vector.FloatVector;

/**
 * One LoRA training step side by side with transformers + peft on the CPU ({@code ./tenfold bench
 * step-peer}): the same model folder (written by the peer's script, F32 weights) and the same token
 * ids, LoRA r=8, alpha 16 on q, k, v, o, AdamW at lr 2e-4 with the gradient norm clipped at 1. Per
 * shape and length: the peer, then {@code --rounds} times tenfold and the peer again (the peer
 * before and after every tenfold run), each in a fresh process, with one untimed first step then
 * {@code --steps} timed ones. Each run's figure is its median step; each side's is the median of
 * its runs (a run slowed by the shared machine's load does not decide it), and the ratio tenfold /
 * peer is printed last. {@code --other-build} names the class path of another tenfold build (e.g.
 * a copy of the jars before a change) run after this one in every round: a before/after comparison
 * that the shared machine's load cannot tilt. {@code --isa avx2} runs both sides with 256-bit AVX2 only
 * ({@link Isa}). {@code --ops} adds, per shape and length, one more run of each side that times the step op by op
 * (the peer under torch.profiler, tenfold through {@link OpTimer}) and prints where each spends it ({@link OpGroups}).
 *
 * <pre>
 * ./tenfold bench step-peer [--shapes h256,h512,hd128] [--tokens 1024,4096,16384] [--steps 3] [--rounds 2]
 *                           [--isa native|avx2] [--ops] [--python PATH] [--dir target/step-peer] [--other-build CLASSPATH]
 * </pre>
 *
 * The peer's python is {@code --python}, else {@code $TENFOLD_PEER_PYTHON}, else the venv that
 * {@code ../shared/tools/hf-venv.sh} builds ({@code ~/.cache/tenfold-hf-venv/bin/python}).
 */
public final class StepPeer {
    private StepPeer() {}

    /** A tiny Llama shape: the peer's script's flags for it, and its words. */
    record Shape(String name, int hidden, int heads, int kvHeads, int mlp, int layers, int vocab) {
        String describe() {
            return String.format(Locale.ROOT, "hidden %d, %d/%d heads of %d, MLP %d, %d layers, vocab %d", hidden, heads, kvHeads,
                    hidden / heads, mlp, layers, vocab);
        }

        List<String> flags() {
            return List.of("--hidden", "" + hidden, "--heads", "" + heads, "--kv-heads", "" + kvHeads, "--mlp", "" + mlp,
                    "--layers", "" + layers, "--vocab", "" + vocab);
        }
    }

    static final List<Shape> SHAPES = List.of(
            new Shape("h256", 256, 8, 2, 688, 4, 2048),
            new Shape("h512", 512, 8, 2, 1536, 4, 8192),
            new Shape("hd128", 512, 4, 1, 1536, 4, 8192));

    static final String SCRIPT = "benchmarks/scripts/cpu_step_peer.py";

    /**
     * The vector instructions both sides may use. {@code native}: what the machine has. {@code avx2}: 256-bit AVX2
     * on both sides, as on most laptops and servers (the JVM with -XX:UseAVX=2, 16 vector registers; the peer's
     * ATen kernels, MKL and oneDNN limited to AVX2 by their environment variables), so that a machine with AVX-512
     * measures what an AVX2 machine would see. Each run reports what it ran with, and a run that did not get it
     * fails the benchmark.
     */
    enum Isa {
        NATIVE(List.of(), Map.of(), 0, null),
        AVX2(List.of("-XX:UseAVX=2"), Map.of("ATEN_CPU_CAPABILITY", "avx2", "MKL_ENABLE_INSTRUCTIONS", "AVX2",
                "ONEDNN_MAX_CPU_ISA", "AVX2"), 256, "AVX2");

        final List<String> jvmFlags;
        final Map<String, String> peerEnv;
        /** tenfold's f32 vector width under this setting (0: whatever the machine has). */
        final int vectorBits;
        /** torch.backends.cpu.get_cpu_capability() under this setting (null: whatever the machine has). */
        final String peerCapability;

        Isa(List<String> jvmFlags, Map<String, String> peerEnv, int vectorBits, String peerCapability) {
            this.jvmFlags = jvmFlags;
            this.peerEnv = peerEnv;
            this.vectorBits = vectorBits;
            this.peerCapability = peerCapability;
        }
    }

    /** The command line, checked. */
    record Options(List<String> shapes, int[] tokens, int steps, int rounds, String python, Path dir, String otherBuild, Isa isa,
                   boolean ops) {
        static final String USAGE = "usage: ./tenfold bench step-peer [--shapes h256,h512,hd128] [--tokens 1024,4096,16384] [--steps N] "
                + "[--rounds R] [--isa native|avx2] [--ops] [--python PATH] [--dir DIR] [--other-build CLASSPATH]";

        /** Parses the flags; a bad one is an IllegalArgumentException naming it. {@code --help} gives null. */
        static Options parse(String[] args, String defaultPython) {
            List<String> shapeNames = List.of("h256", "h512", "hd128");
            int[] tokens = {1024, 4096, 16384};
            int steps = 3, rounds = 2;
            String python = defaultPython;
            Path dir = Path.of("target/step-peer");
            String otherBuild = null; // the class path of another tenfold build, measured alternately with this one
            Isa isa = Isa.NATIVE;
            boolean ops = false;
            for (int i = 0; i < args.length; i++) {
                String flag = args[i];
                if (flag.equals("--help")) return null;
                if (flag.equals("--ops")) {
                    ops = true;
                    continue;
                }
                if (i + 1 >= args.length) throw new IllegalArgumentException(flag + " needs a value");
                String v = args[++i];
                switch (flag) {
                    case "--shapes" -> shapeNames = Arrays.asList(v.split(","));
                    case "--tokens" -> tokens = Arrays.stream(v.split(",")).mapToInt(x -> integer(flag, x)).toArray();
                    case "--steps" -> steps = integer(flag, v);
                    case "--rounds" -> rounds = integer(flag, v);
                    case "--python" -> python = v;
                    case "--dir" -> dir = Path.of(v);
                    case "--other-build" -> otherBuild = v;
                    case "--isa" -> isa = switch (v) {
                        case "native" -> Isa.NATIVE;
                        case "avx2" -> Isa.AVX2;
                        default -> throw new IllegalArgumentException("--isa must be native or avx2, got '" + v + "'");
                    };
                    default -> throw new IllegalArgumentException("unknown flag " + flag);
                }
            }
            if (steps < 1 || steps > 100) throw new IllegalArgumentException("--steps must be in [1, 100], got " + steps);
            if (rounds < 1 || rounds > 20) throw new IllegalArgumentException("--rounds must be in [1, 20], got " + rounds);
            for (int t : tokens) {
                if (t < 2 || t > 1 << 20) throw new IllegalArgumentException("--tokens must each be in [2, 1048576], got " + t);
            }
            for (String name : shapeNames) shape(name);
            return new Options(shapeNames, tokens, steps, rounds, python, dir, otherBuild, isa, ops);
        }

        private static int integer(String flag, String v) {
            try {
                return Integer.parseInt(v.strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(flag + " must be a whole number, got '" + v + "'");
            }
        }
    }

    static Shape shape(String name) {
        return SHAPES.stream().filter(s -> s.name.equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("--shapes: unknown shape " + name + " (h256, h512, hd128)"));
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("tenfold")) {
            tenfoldSteps(Path.of(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]), args.length > 4 && args[4].equals("ops"));
            return;
        }
        String defaultPython = System.getenv("TENFOLD_PEER_PYTHON");
        if (defaultPython == null) defaultPython = System.getProperty("user.home") + "/.cache/tenfold-hf-venv/bin/python";
        Options o;
        try {
            o = Options.parse(args, defaultPython);
        } catch (IllegalArgumentException e) {
            usage(e.getMessage());
            return;
        }
        if (o == null) {
            System.out.println(Options.USAGE);
            return;
        }
        List<String> shapeNames = o.shapes();
        int[] tokens = o.tokens();
        int steps = o.steps(), rounds = o.rounds();
        String python = o.python(), otherBuild = o.otherBuild();
        Path dir = o.dir();
        Isa isa = o.isa();
        String arch = System.getProperty("os.arch", "");
        if (isa == Isa.AVX2 && !arch.equals("amd64") && !arch.equals("x86_64")) usage("--isa avx2 needs an x86-64 CPU; this is " + arch);
        if (!Files.isExecutable(Path.of(python))) usage("no peer python at " + python + " (build it with ../shared/tools/hf-venv.sh, or give --python)");
        int maxTokens = Arrays.stream(tokens).max().orElseThrow();

        System.out.printf(Locale.ROOT, "tenfold step-peer: --isa %s, %d cores, java %s; LoRA r=8 on q,k,v,o, f32, AdamW; "
                + "%d timed steps after 1 untimed; peer, tenfold, peer in fresh processes%n", isa.name().toLowerCase(Locale.ROOT),
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"), steps);
        List<String> rows = new ArrayList<>(), opTables = new ArrayList<>();
        String versions = null;
        for (String name : shapeNames) {
            Shape shape = shape(name);
            Path folder = dir.resolve(name);
            if (!Files.exists(folder.resolve("data.json")) || dataLength(folder) < maxTokens + 1) {
                List<String> cmd = new ArrayList<>(List.of(python, SCRIPT, "make", folder.toString(), "--tokens", "" + maxTokens));
                cmd.addAll(shape.flags());
                run(cmd, Map.of());
            }
            for (int t : tokens) {
                List<String> peerCmd = List.of(python, SCRIPT, "step", folder.toString(), "--tokens", "" + t, "--steps", "" + steps,
                        "--threads", "2");
                // peer, tenfold, peer, ..., peer: each side's figure is the median over its runs of each run's median step
                List<JsonNode> peerRuns = new ArrayList<>(), ourRuns = new ArrayList<>(), otherRuns = new ArrayList<>();
                peerRuns.add(peerRun(peerCmd, isa));
                for (int r = 0; r < rounds; r++) {
                    ourRuns.add(tenfoldRun(System.getProperty("java.class.path"), folder, t, steps, isa));
                    if (otherBuild != null) otherRuns.add(tenfoldRun(otherBuild, folder, t, steps, isa));
                    peerRuns.add(peerRun(peerCmd, isa));
                }
                JsonNode p0 = peerRuns.get(0);
                versions = "torch " + p0.get("torch").asText() + ", transformers " + p0.get("transformers").asText() + ", peft "
                        + p0.get("peft").asText() + " (" + p0.get("threads").asInt() + " threads, ATen capability "
                        + p0.path("cpu_capability").asText("?") + "); tenfold: " + ourRuns.get(0).path("vector_bits").asInt() + "-bit f32 vectors";
                double[] peerRates = peerRuns.stream().mapToDouble(n -> t / GpuWork.median(seconds(n))).toArray();
                double[] ourRates = ourRuns.stream().mapToDouble(n -> t / GpuWork.median(seconds(n))).toArray();
                double[] firstRatio = ourRuns.stream().mapToDouble(n -> n.get("first_seconds").asDouble() / GpuWork.median(seconds(n))).toArray();
                double[] warmUps = ourRuns.stream().mapToDouble(n -> n.path("warm_up_seconds").asDouble(0)).toArray();
                double peer = GpuWork.median(peerRates), tf = GpuWork.median(ourRates);
                String row = String.format(Locale.ROOT, "| %s | %,d | %,.0f (%s) | %,.0f (%s) | %.1f s | %.1fx | %.2fx |", shape.describe(), t,
                        peer, rates(peerRates), tf, rates(ourRates), GpuWork.median(warmUps), GpuWork.median(firstRatio), tf / peer);
                if (otherBuild != null) {
                    double[] otherRates = otherRuns.stream().mapToDouble(n -> t / GpuWork.median(seconds(n))).toArray();
                    double other = GpuWork.median(otherRates);
                    row += String.format(Locale.ROOT, " %,.0f (%s) | %.2fx |", other, rates(otherRates), other / peer);
                }
                System.out.println(row + String.format(Locale.ROOT, "   loss peer %.4f, tenfold %.4f", p0.get("loss").asDouble(),
                        ourRuns.get(0).get("loss").asDouble()));
                rows.add(row);
                if (o.ops()) {
                    List<String> profileCmd = new ArrayList<>(peerCmd);
                    profileCmd.set(2, "profile");
                    JsonNode peerOps = peerRun(profileCmd, isa);
                    JsonNode ourOps = json(run(tenfoldCommand(System.getProperty("java.class.path"), folder, t, steps, isa, true), Map.of()));
                    if (ourOps.path("keeps_activations").asBoolean() != ourRuns.get(0).path("keeps_activations").asBoolean()) {
                        throw new IOException("the timed tenfold run chose another step (keeps_activations " + ourOps.path("keeps_activations")
                                + ", untimed " + ourRuns.get(0).path("keeps_activations") + "): its op times would not be this step's");
                    }
                    String table = OpGroups.table(shape.describe() + ", " + String.format(Locale.ROOT, "%,d", t) + " tokens",
                            OpGroups.ofPeer(peerOps), OpGroups.ofTenfold(ourOps)) + "\n" + OpGroups.topOps(peerOps, ourOps, 8)
                            + "\n\n" + OpGroups.productsTable(peerOps, ourOps, 16);
                    System.out.println(table);
                    System.out.println(peerOps);
                    System.out.println(ourOps);
                    opTables.add(table);
                }
            }
        }
        System.out.println();
        System.out.println("peer: " + versions);
        System.out.println("| shape | tokens | peer tok/s (each run) | tenfold tok/s (each run) | tenfold warm-up | tenfold first step / steady | tenfold / peer |" + (otherBuild != null ? " other build tok/s (each run) | other build / peer |" : ""));
        System.out.println("|---|---|---|---|---|---|---|" + (otherBuild != null ? "---|---|" : ""));
        rows.forEach(System.out::println);
        for (String table : opTables) {
            System.out.println();
            System.out.println(table);
        }
    }

    private static void usage(String message) {
        System.err.println("step-peer: " + message);
        System.exit(2);
    }

    /** One tenfold run, checked to have run with the vectors --isa asks for. */
    private static JsonNode tenfoldRun(String classPath, Path folder, int t, int steps, Isa isa) throws IOException, InterruptedException {
        JsonNode n = json(run(tenfoldCommand(classPath, folder, t, steps, isa, false), Map.of()));
        int bits = n.path("vector_bits").asInt();
        // (a build from before this check prints no width: --other-build may name one)
        if (isa.vectorBits != 0 && n.has("vector_bits") && bits != isa.vectorBits) {
            throw new IOException("--isa " + isa.name().toLowerCase(Locale.ROOT) + ": tenfold ran with " + bits + "-bit vectors, not "
                    + isa.vectorBits + " (does this CPU have them?)");
        }
        return n;
    }

    /** One peer run, checked to have run with the instructions --isa asks for. */
    private static JsonNode peerRun(List<String> cmd, Isa isa) throws IOException, InterruptedException {
        JsonNode n = json(run(cmd, isa.peerEnv));
        String capability = n.path("cpu_capability").asText("?");
        if (isa.peerCapability != null && !capability.equals(isa.peerCapability)) {
            throw new IOException("--isa " + isa.name().toLowerCase(Locale.ROOT) + ": the peer's ATen ran with " + capability + ", not "
                    + isa.peerCapability + " (does this CPU have it?)");
        }
        return n;
    }

    /** tenfold's side, in its own process: the same JVM flags (plus --isa's) and class path as this one. */
    private static List<String> tenfoldCommand(String classPath, Path folder, int t, int steps, Isa isa, boolean ops) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.addAll(isa.jvmFlags);
        cmd.addAll(List.of("-cp", classPath, StepPeer.class.getName(), "tenfold", folder.toString(), "" + t,
                "" + steps));
        if (ops) cmd.add("ops");
        return cmd;
    }

    /**
     * Loads the folder, attaches LoRA and runs 1 + steps trainer steps; prints the peer's JSON shape. With ops, the
     * backend is timed ({@link OpTimer}) step by step, and the JSON has the ops of the median step ("ops", each op's ms,
     * calls and MB of Java heap allocated, and that step's "ops_step_seconds"; "products", the same step's products by
     * shape with their ms, calls and flops): on a shared machine one slow step (this VM faults fresh memory in
     * slowly while the heap grows) would otherwise tilt every op's mean.
     */
    static void tenfoldSteps(Path folder, int t, int steps, boolean ops) throws IOException {
        JsonNode data = new ObjectMapper().readTree(folder.resolve("data.json").toFile());
        int[] tokens = new int[t + 1];
        for (int i = 0; i <= t; i++) tokens[i] = data.get(i).asInt();
        OpTimer timer = ops ? new OpTimer(CpuBackend.fast()) : null;
        try (LlamaModel model = ops ? LlamaLoader.load(folder, timer.backend()) : LlamaLoader.load(folder)) {
            Lora.attach(model, LoraConfig.of(8, 16f).targets("q,k,v,o").seed(3));
            Trainer trainer = new Trainer(model, TrainingSettings.defaults().lr(2e-4).maxSteps(steps + 1));
            List<Trainer.Example> batch = List.of(Trainer.Example.nextTokens(tokens, null));
            Trainer.StepMetrics first = trainer.step(batch);
            StringBuilder times = new StringBuilder(), cpu = new StringBuilder();
            double loss = first.loss();
            // the process's CPU seconds per step too: on a shared machine they move less than the wall time
            var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            List<Map<String, long[]>> stepOps = new ArrayList<>(), stepProducts = new ArrayList<>();
            double[] stepSeconds = new double[steps];
            for (int i = 0; i < steps; i++) {
                long c0 = os.getProcessCpuTime();
                if (timer != null) timer.start();
                Trainer.StepMetrics m = trainer.step(batch);
                if (timer != null) {
                    timer.stop();
                    stepOps.add(timer.totals());
                    stepProducts.add(timer.products());
                }
                stepSeconds[i] = m.seconds();
                times.append(i == 0 ? "" : ", ").append(m.seconds());
                cpu.append(i == 0 ? "" : ", ").append((os.getProcessCpuTime() - c0) / 1e9);
                loss = m.loss();
            }
            StringBuilder opTimes = new StringBuilder(), productTimes = new StringBuilder();
            int median = -1;
            if (timer != null) {
                Integer[] order = new Integer[steps];
                for (int i = 0; i < steps; i++) order[i] = i;
                Arrays.sort(order, Comparator.comparingDouble(i -> stepSeconds[i]));
                median = order[(steps - 1) / 2];
                // the median step's ms and calls, the longest first
                stepOps.get(median).entrySet().stream().sorted(Comparator.comparingLong(e -> -e.getValue()[0])).forEach(e -> opTimes.append(
                        String.format(Locale.ROOT, "%s{\"op\": \"%s\", \"ms\": %.3f, \"calls\": %d, \"allocated_mb\": %.2f}",
                                opTimes.isEmpty() ? "" : ", ", e.getKey(), e.getValue()[0] / 1e6, e.getValue()[1], e.getValue()[2] / 1e6)));
                stepProducts.get(median).entrySet().stream().sorted(Comparator.comparingLong(e -> -e.getValue()[0])).forEach(e -> productTimes.append(
                        String.format(Locale.ROOT, "%s{\"shape\": \"%s\", \"ms\": %.3f, \"calls\": %d, \"flops\": %d}",
                                productTimes.isEmpty() ? "" : ", ", e.getKey(), e.getValue()[0] / 1e6, e.getValue()[1], e.getValue()[2])));
            }
            System.out.printf(Locale.ROOT, "{\"tokens\": %d, \"seconds\": [%s], \"cpu_seconds\": [%s], \"first_seconds\": %s, "
                    + "\"warm_up_seconds\": %s, \"loss\": %s, \"vector_bits\": %d, \"keeps_activations\": %s%s}%n", t, times, cpu,
                    first.seconds(), first.warmUpSeconds(), loss, FloatVector.SPECIES_PREFERRED.vectorBitSize(),
                    TrainingStep.keepsLayerActivations(model, t),
                    timer == null ? "" : ", \"ops_step_seconds\": " + stepSeconds[median] + ", \"ops\": [" + opTimes + "]"
                            + ", \"products\": [" + productTimes + "]");
        }
    }

    private static String run(List<String> cmd, Map<String, String> env) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT);
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        int rc = p.waitFor();
        if (rc != 0) throw new IOException("exit " + rc + ": " + String.join(" ", cmd) + "\n" + out);
        return out;
    }

    private static JsonNode json(String out) throws IOException {
        String[] lines = out.strip().split("\n");
        return new ObjectMapper().readTree(lines[lines.length - 1]);
    }

    private static int dataLength(Path folder) throws IOException {
        return new ObjectMapper().readTree(folder.resolve("data.json").toFile()).size();
    }

    private static double[] seconds(JsonNode n) {
        double[] s = new double[n.get("seconds").size()];
        for (int i = 0; i < s.length; i++) s[i] = n.get("seconds").get(i).asDouble();
        return s;
    }

    private static String rates(double[] r) {
        StringBuilder s = new StringBuilder();
        for (double x : r) s.append(s.isEmpty() ? "" : ", ").append(String.format(Locale.ROOT, "%,.0f", x));
        return s.toString();
    }

}
