package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * The CPU benchmark report: runs the JMH kernel benchmarks and numpy's OpenBLAS sgemm (the peer)
 * in the same run (numpy before and after tenfold, since these machines are shared and noisy),
 * converts times to GFLOP/s with each benchmark's own FLOP formula, prints a table and writes it,
 * with the machine and the date, to benchmarks/results/.
 *
 * <p>Usage: {@code ./tenfold bench report [--quick] [--out DIR] [JMH include regex ...]}.
 * Each benchmark class provides {@code public static double workPerOp(String method, Function<String,String> param)}
 * (FLOPs, characters, tokens or bytes per call) and {@code public static String rateUnit(String method)}
 * ("GFLOP/s", "Mchar/s", "tok/s", "GB/s": the prefix sets the scale).
 */
public final class CpuReport {
    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        boolean quick = false;
        Path outDir = Path.of("benchmarks/results");
        List<String> includes = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--quick" -> quick = true;
                case "--out" -> outDir = Path.of(args[++i]);
                default -> includes.add(args[i]);
            }
        }
        if (includes.isEmpty()) includes = List.of("MatmulBench", "AttentionBench", "InferenceBench", "TokenizerBench");

        JsonNode peerBefore = numpy();
        List<Row> rows = new ArrayList<>();
        for (String include : includes) rows.addAll(runJmh(include, quick));
        JsonNode peerAfter = numpy();
        JsonNode train = trainStep(quick);

        String report = render(rows, peerBefore, peerAfter, quick) + renderTrain(train);
        System.out.println(report);
        Files.createDirectories(outDir);
        Path file = outDir.resolve(LocalDate.now() + "-cpu.md");
        Path tmp = Files.createTempFile(outDir, ".report", ".tmp");
        Files.writeString(tmp, report, StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        System.err.println("written: " + file);
    }

    /** One measured benchmark: name, parameters, mean milliseconds per op, its error, its rate and unit. */
    record Row(String benchmark, String params, double ms, double msError, double rate, String unit) {}

    static List<Row> runJmh(String include, boolean quick) throws Exception {
        ChainedOptionsBuilder b = new OptionsBuilder().include(include).forks(1)
                .jvmArgsAppend("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx8g")
                .timeUnit(TimeUnit.MILLISECONDS);
        if (quick) {
            b.warmupIterations(1).measurementIterations(2).warmupTime(TimeValue.seconds(1)).measurementTime(TimeValue.seconds(1));
        }
        Collection<RunResult> results = new Runner(b.build()).run();
        List<Row> rows = new ArrayList<>();
        for (RunResult r : results) {
            BenchmarkParams p = r.getParams();
            String full = p.getBenchmark();
            String cls = full.substring(0, full.lastIndexOf('.'));
            String method = full.substring(full.lastIndexOf('.') + 1);
            double ms = r.getPrimaryResult().getScore();
            double err = r.getPrimaryResult().getScoreError();
            Map<String, String> params = new LinkedHashMap<>();
            for (String k : p.getParamsKeys()) params.put(k, p.getParam(k));
            Class<?> c = Class.forName(cls);
            Method work = c.getMethod("workPerOp", String.class, java.util.function.Function.class);
            double perOp = (double) work.invoke(null, method, (java.util.function.Function<String, String>) params::get);
            String unit = (String) c.getMethod("rateUnit", String.class).invoke(null, method);
            double scale = unit.startsWith("G") ? 1e9 : unit.startsWith("M") ? 1e6 : 1;
            rows.add(new Row(cls.substring(cls.lastIndexOf('.') + 1) + "." + method, params.isEmpty() ? "" : params.toString(),
                    ms, err, perOp / (ms * 1e-3) / scale, unit));
        }
        return rows;
    }

    /** Runs the numpy peer with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (they slow a current numpy). */
    static JsonNode numpy() throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder("python3", "benchmarks/scripts/numpy_sgemm.py", "--json");
        pb.environment().remove("OPENBLAS_CORETYPE");
        pb.environment().remove("OPENBLAS_L2_SIZE");
        pb.redirectError(ProcessBuilder.Redirect.INHERIT);
        Process proc = pb.start();
        String out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (proc.waitFor() != 0) throw new IOException("numpy peer failed (exit " + proc.exitValue() + ")");
        return JSON.readTree(out);
    }

    /** TrainStepReport in a fresh JVM whose heap is committed up front, so resident-set growth is native memory. */
    static JsonNode trainStep(boolean quick) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-XX:+UseParallelGC",
                "-Xms3g", "-Xmx3g", "-XX:+AlwaysPreTouch", "-cp", System.getProperty("java.class.path"),
                TrainStepReport.class.getName()));
        if (quick) cmd.addAll(List.of("512", "1024", "2048"));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) throw new IOException("TrainStepReport failed (exit " + p.exitValue() + ")");
        return JSON.readTree(out);
    }

    static String renderTrain(JsonNode t) {
        StringBuilder sb = new StringBuilder("\n## One LoRA training step on the CPU\n\n");
        sb.append(t.path("config").asText()).append("; forward with per-layer checkpointing, chunked loss, backward. ")
                .append("Memory: peak resident set above the loaded model (heap pre-committed, so this is native memory).\n\n");
        sb.append("| seq | s/step | tokens/s | peak RSS MB | above model MB | per token KB |\n|---:|---:|---:|---:|---:|---:|\n");
        for (JsonNode r : t.path("steps")) {
            sb.append(String.format("| %d | %.2f | %.0f | %.0f | %.0f | %.1f |%n", r.path("seq").asInt(), r.path("seconds").asDouble(),
                    r.path("tokens_per_s").asDouble(), r.path("peak_rss_mb").asDouble(), r.path("above_baseline_mb").asDouble(),
                    r.path("above_baseline_mb").asDouble() * 1000 / r.path("seq").asInt()));
        }
        return sb.toString();
    }

    static String render(List<Row> rows, JsonNode before, JsonNode after, boolean quick) throws IOException {
        StringBuilder sb = new StringBuilder();
        sb.append("# CPU kernels: tenfold vs numpy/OpenBLAS, ").append(LocalDate.now()).append("\n\n");
        sb.append("Machine: ").append(dev.tenfold.engine.Machine.cpuModel()).append(", ").append(Runtime.getRuntime().availableProcessors())
                .append(" cores; Java ").append(Runtime.version()).append("; numpy ").append(before.path("numpy").asText())
                .append(" (").append(before.path("blas").asText()).append(")\n");
        sb.append("Command: `./tenfold bench report").append(quick ? " --quick" : "").append("` (JMH, 1 fork")
                .append(quick ? ", short iterations" : "").append("; numpy measured before and after tenfold)\n\n");
        sb.append("| benchmark | params | ms/op | rate |\n|---|---|---:|---:|\n");
        for (Row r : rows) {
            sb.append(String.format("| %s | %s | %.3f ± %.3f | %.1f %s |%n", r.benchmark(), r.params(), r.ms(), r.msError(),
                    r.rate(), r.unit()));
        }
        sb.append("\n| numpy sgemm n | GFLOP/s before | GFLOP/s after |\n|---:|---:|---:|\n");
        for (JsonNode e : before.path("sgemm")) {
            String n = e.path("n").asText();
            double a = 0;
            for (JsonNode f : after.path("sgemm")) if (f.path("n").asText().equals(n)) a = f.path("gflops").asDouble();
            sb.append(String.format("| %s | %.1f | %.1f |%n", n, e.path("gflops").asDouble(), a));
        }
        return sb.toString();
    }
}
