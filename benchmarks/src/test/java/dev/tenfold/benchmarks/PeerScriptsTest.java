package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Python peer scripts, where python3 exists: they compile, they count the same shapes, bytes and FLOPs
 * as GpuReport for every row id (so "tenfold / peer" compares like with like), and without torch each
 * prints one "skipped" JSON line and exits 0.
 */
class PeerScriptsTest {
    static final List<String> SCRIPTS = List.of("kernel_peers.py", "attention_peer.py", "qlora_step_peer.py");
    static final ObjectMapper JSON = new ObjectMapper();

    static Path scripts() {
        for (Path p : new Path[] {Path.of("scripts"), Path.of("benchmarks", "scripts")}) {
            if (Files.isRegularFile(p.resolve("kernel_peers.py"))) return p;
        }
        throw new IllegalStateException("benchmarks/scripts not found from " + Path.of("").toAbsolutePath());
    }

    static String python() {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(d, "python3"))) return Path.of(d, "python3").toString();
        }
        return null;
    }

    record Result(int exit, String out, String err) {}

    static Result run(List<String> command) throws IOException, InterruptedException {
        Path errFile = Files.createTempFile("peer", ".err");
        try {
            Process p = new ProcessBuilder(command).redirectError(errFile.toFile()).start();
            byte[] out = p.getInputStream().readAllBytes();
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "timed out: " + command);
            return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8), Files.readString(errFile));
        } finally {
            Files.deleteIfExists(errFile);
        }
    }

    @Test
    void theScriptsCompile(@TempDir Path dir) throws Exception {
        String py = python();
        Assumptions.assumeTrue(py != null, "no python3 on PATH");
        for (String s : SCRIPTS) {
            String code = "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)";
            Result r = run(List.of(py, "-c", code, scripts().resolve(s).toString(), dir.resolve(s + "c").toString()));
            assertEquals(0, r.exit(), s + ": " + r.err());
        }
    }

    @Test
    void thePeersCountWhatGpuReportCounts() throws Exception {
        String py = python();
        Assumptions.assumeTrue(py != null, "no python3 on PATH");
        Map<String, GpuReport.Planned> plan = GpuReport.plan(GpuReport.Sizes.full());
        List<String> compared = new ArrayList<>();
        for (String s : List.of("kernel_peers.py", "attention_peer.py")) {
            Result r = run(List.of(py, scripts().resolve(s).toString(), "--accounting"));
            assertEquals(0, r.exit(), s + ": " + r.err());
            JsonNode acc = JSON.readTree(r.out());
            for (Iterator<Map.Entry<String, JsonNode>> it = acc.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                GpuReport.Planned p = plan.get(e.getKey());
                assertNotNull(p, s + " has a row " + e.getKey() + " that GpuReport does not measure");
                assertEquals(p.shape(), e.getValue().path("shape").asText(), s + " " + e.getKey() + " shape");
                assertTrue(e.getValue().has(p.workKind()), s + " " + e.getKey() + " counts " + p.workKind());
                assertEquals(p.work(), e.getValue().path(p.workKind()).asDouble(), 0.0, s + " " + e.getKey() + " " + p.workKind());
                compared.add(e.getKey());
            }
        }
        // every kernel, copy, GEMM and flash row GpuReport measures has its peer (the backend-path, atomic and ascending-order
        // rows are tenfold's own)
        for (String id : plan.keySet()) {
            if (id.startsWith("attn_backend_") || id.startsWith("attn_bwd_") || id.startsWith("attn_fwd_bwd_atomic_")
                    || id.startsWith("attn_fwd_bwd_asc_")) continue;
            assertTrue(compared.contains(id), "no peer counts " + id);
        }
        Result q = run(List.of(py, scripts().resolve("qlora_step_peer.py").toString(), "--accounting"));
        assertEquals(0, q.exit(), q.err());
        String shape = GpuReport.trainShape(16384, GpuTrainStep.LLAMA3_8B_DESCRIPTION);
        assertEquals(shape, JSON.readTree(q.out()).path("qlora_step").path("shape").asText());
        assertEquals(shape, JSON.readTree(q.out()).path("qlora_step_peak_mem").path("shape").asText());
    }

    @Test
    void withoutTorchEachScriptSaysSkippedAndExitsZero() throws Exception {
        String py = python();
        Assumptions.assumeTrue(py != null, "no python3 on PATH");
        Assumptions.assumeTrue(run(List.of(py, "-c", "import torch")).exit() != 0, "torch is installed here");
        for (String s : SCRIPTS) {
            Result r = run(List.of(py, scripts().resolve(s).toString()));
            assertEquals(0, r.exit(), s + ": " + r.err());
            List<String> lines = r.out().lines().toList();
            assertEquals(1, lines.size(), s + ": " + r.out());
            JsonNode line = JSON.readTree(lines.get(0));
            assertTrue(line.path("skipped").asText().startsWith("torch"), s + ": " + line);
            assertEquals(s.replace(".py", ""), line.path("bench").asText(), s + ": " + line);
            assertTrue(GpuComparison.readPeers(lines).reasons().containsKey("*" + s.replace(".py", "")));
        }
    }
}
