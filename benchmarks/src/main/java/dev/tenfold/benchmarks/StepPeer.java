package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.TrainingSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
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
 * that the shared machine's load cannot tilt.
 *
 * <pre>
 * ./tenfold bench step-peer [--shapes h256,h512,hd128] [--tokens 1024,4096,16384] [--steps 3] [--rounds 2]
 *                           [--python PATH] [--dir target/step-peer] [--other-build CLASSPATH]
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

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("tenfold")) {
            tenfoldSteps(Path.of(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]));
            return;
        }
        List<String> shapeNames = List.of("h256", "h512", "hd128");
        int[] tokens = {1024, 4096, 16384};
        int steps = 3, rounds = 2;
        String python = System.getenv("TENFOLD_PEER_PYTHON");
        if (python == null) python = System.getProperty("user.home") + "/.cache/tenfold-hf-venv/bin/python";
        Path dir = Path.of("target/step-peer");
        String otherBuild = null; // the class path of another tenfold build, measured alternately with this one
        for (int i = 0; i < args.length; i++) {
            String flag = args[i];
            if (flag.equals("--help")) {
                System.out.println("usage: ./tenfold bench step-peer [--shapes h256,h512,hd128] [--tokens 1024,4096,16384] [--steps N] [--rounds R] "
                        + "[--python PATH] [--dir DIR] [--other-build CLASSPATH]");
                return;
            }
            if (i + 1 >= args.length) usage(flag + " needs a value");
            String v = args[++i];
            switch (flag) {
                case "--shapes" -> shapeNames = Arrays.asList(v.split(","));
                case "--tokens" -> tokens = Arrays.stream(v.split(",")).mapToInt(x -> integer(flag, x)).toArray();
                case "--steps" -> steps = integer(flag, v);
                case "--rounds" -> rounds = integer(flag, v);
                case "--python" -> python = v;
                case "--dir" -> dir = Path.of(v);
                case "--other-build" -> otherBuild = v;
                default -> usage("unknown flag " + flag);
            }
        }
        if (steps < 1 || steps > 100) usage("--steps must be in [1, 100], got " + steps);
        if (rounds < 1 || rounds > 20) usage("--rounds must be in [1, 20], got " + rounds);
        for (int t : tokens) if (t < 2 || t > 1 << 20) usage("--tokens must each be in [2, 1048576], got " + t);
        if (!Files.isExecutable(Path.of(python))) usage("no peer python at " + python + " (build it with ../shared/tools/hf-venv.sh, or give --python)");
        int maxTokens = Arrays.stream(tokens).max().orElseThrow();

        System.out.printf(Locale.ROOT, "tenfold step-peer: %d-bit f32 vectors, %d cores, java %s; LoRA r=8 on q,k,v,o, f32, AdamW; "
                + "%d timed steps after 1 untimed; peer, tenfold, peer in fresh processes%n", FloatVector.SPECIES_PREFERRED.vectorBitSize(),
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"), steps);
        List<String> rows = new ArrayList<>();
        String versions = null;
        for (String name : shapeNames) {
            Shape shape = SHAPES.stream().filter(s -> s.name.equals(name)).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("--shapes: unknown shape " + name + " (h256, h512, hd128)"));
            Path folder = dir.resolve(name);
            if (!Files.exists(folder.resolve("data.json")) || dataLength(folder) < maxTokens + 1) {
                List<String> cmd = new ArrayList<>(List.of(python, SCRIPT, "make", folder.toString(), "--tokens", "" + maxTokens));
                cmd.addAll(shape.flags());
                run(cmd);
            }
            for (int t : tokens) {
                List<String> peerCmd = List.of(python, SCRIPT, "step", folder.toString(), "--tokens", "" + t, "--steps", "" + steps,
                        "--threads", "2");
                // peer, tenfold, peer, ..., peer: each side's figure is the median over its runs of each run's median step
                List<JsonNode> peerRuns = new ArrayList<>(), ourRuns = new ArrayList<>(), otherRuns = new ArrayList<>();
                peerRuns.add(json(run(peerCmd)));
                for (int r = 0; r < rounds; r++) {
                    ourRuns.add(json(run(tenfoldCommand(System.getProperty("java.class.path"), folder, t, steps))));
                    if (otherBuild != null) otherRuns.add(json(run(tenfoldCommand(otherBuild, folder, t, steps))));
                    peerRuns.add(json(run(peerCmd)));
                }
                JsonNode p0 = peerRuns.get(0);
                versions = "torch " + p0.get("torch").asText() + ", transformers " + p0.get("transformers").asText() + ", peft "
                        + p0.get("peft").asText() + " (" + p0.get("threads").asInt() + " threads)";
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
            }
        }
        System.out.println();
        System.out.println("peer: " + versions);
        System.out.println("| shape | tokens | peer tok/s (each run) | tenfold tok/s (each run) | tenfold warm-up | tenfold first step / steady | tenfold / peer |" + (otherBuild != null ? " other build tok/s (each run) | other build / peer |" : ""));
        System.out.println("|---|---|---|---|---|---|---|" + (otherBuild != null ? "---|---|" : ""));
        rows.forEach(System.out::println);
    }

    private static int integer(String flag, String v) {
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            usage(flag + " must be a whole number, got '" + v + "'");
            return 0;
        }
    }

    private static void usage(String message) {
        System.err.println("step-peer: " + message);
        System.exit(2);
    }

    /** tenfold's side, in its own process: the same JVM flags and class path as this one. */
    private static List<String> tenfoldCommand(String classPath, Path folder, int t, int steps) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.addAll(List.of("-cp", classPath, StepPeer.class.getName(), "tenfold", folder.toString(), "" + t,
                "" + steps));
        return cmd;
    }

    /** Loads the folder, attaches LoRA and runs 1 + steps trainer steps; prints the peer's JSON shape. */
    static void tenfoldSteps(Path folder, int t, int steps) throws IOException {
        JsonNode data = new ObjectMapper().readTree(folder.resolve("data.json").toFile());
        int[] tokens = new int[t + 1];
        for (int i = 0; i <= t; i++) tokens[i] = data.get(i).asInt();
        try (LlamaModel model = LlamaLoader.load(folder)) {
            Lora.attach(model, LoraConfig.of(8, 16f).targets("q,k,v,o").seed(3));
            Trainer trainer = new Trainer(model, TrainingSettings.defaults().lr(2e-4).maxSteps(steps + 1));
            List<Trainer.Example> batch = List.of(Trainer.Example.nextTokens(tokens, null));
            Trainer.StepMetrics first = trainer.step(batch);
            StringBuilder times = new StringBuilder(), cpu = new StringBuilder();
            double loss = first.loss();
            // the process's CPU seconds per step too: on a shared machine they move less than the wall time
            var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            for (int i = 0; i < steps; i++) {
                long c0 = os.getProcessCpuTime();
                Trainer.StepMetrics m = trainer.step(batch);
                times.append(i == 0 ? "" : ", ").append(m.seconds());
                cpu.append(i == 0 ? "" : ", ").append((os.getProcessCpuTime() - c0) / 1e9);
                loss = m.loss();
            }
            System.out.printf(Locale.ROOT, "{\"tokens\": %d, \"seconds\": [%s], \"cpu_seconds\": [%s], \"first_seconds\": %s, "
                    + "\"warm_up_seconds\": %s, \"loss\": %s}%n", t, times, cpu, first.seconds(), first.warmUpSeconds(), loss);
        }
    }

    private static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
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
