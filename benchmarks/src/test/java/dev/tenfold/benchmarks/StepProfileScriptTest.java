package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CPU step's profiling scripts: both compile (cpu_step_peer.py's profile needs torch, run by hand), and
 * jfr_step_ops.py on a small `jfr print` text gives the main thread's samples by backend op, after the warm-up.
 */
class StepProfileScriptTest {
    @Test
    void theScriptsCompile(@TempDir Path dir) throws Exception {
        String py = PeerScriptsTest.python();
        Assumptions.assumeTrue(py != null, "no python3 on PATH");
        for (String s : List.of("cpu_step_peer.py", "jfr_step_ops.py")) {
            String code = "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)";
            PeerScriptsTest.Result r = PeerScriptsTest.run(List.of(py, "-c", code, PeerScriptsTest.scripts().resolve(s).toString(),
                    dir.resolve(s + "c").toString()));
            assertEquals(0, r.exit(), s + ": " + r.err());
        }
    }

    static String sample(String time, String thread, String... frames) {
        StringBuilder s = new StringBuilder("jdk.ExecutionSample {\n  startTime = " + time + " (2026-12-04)\n  sampledThread = \""
                + thread + "\" (javaThreadId = 3)\n  state = \"STATE_RUNNABLE\"\n  stackTrace = [\n");
        for (String f : frames) s.append("    ").append(f).append(" line: 1\n");
        return s.append("  ]\n}\n\n").toString();
    }

    @Test
    void theMainThreadsSamplesAfterTheWarmUpByOp(@TempDir Path dir) throws Exception {
        String py = PeerScriptsTest.python();
        Assumptions.assumeTrue(py != null, "no python3 on PATH");
        String warm = "dev.tenfold.engine.cpu.CpuBackend.warmUp()", matmul = "dev.tenfold.engine.cpu.CpuBackend.matmul(Tensor)";
        String attention = "dev.tenfold.engine.cpu.CpuBackend.attention(Tensor)", kernel = "dev.tenfold.engine.cpu.Matmul.kernel12(float[])";
        StringBuilder text = new StringBuilder();
        text.append(sample("10:00:00.000", "main", kernel, matmul, warm));            // in the warm-up: left out
        text.append(sample("10:00:01.000", "main", kernel, matmul, warm));            // the warm-up's end
        text.append(sample("10:00:02.000", "main", matmul));                          // within --skip-seconds: left out
        for (int i = 0; i < 3; i++) text.append(sample("10:00:05.00" + i, "main", kernel, matmul));
        text.append(sample("10:00:05.100", "main", "dev.tenfold.engine.cpu.Attention.forward()", attention));
        text.append(sample("10:00:05.200", "tenfold-cpu-1", kernel));                // a worker: left out
        Path file = dir.resolve("step.txt");
        Files.writeString(file, text);
        PeerScriptsTest.Result r = PeerScriptsTest.run(List.of(py, PeerScriptsTest.scripts().resolve("jfr_step_ops.py").toString(),
                file.toString(), "--skip-seconds", "2", "--step-seconds", "0.4"));
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith("4 samples of thread main after the warm-up and 2.0 s"), r.out());
        assertTrue(r.out().contains("| matmul | 75.0 % | 300.0 |"), r.out());
        assertTrue(r.out().contains("| attention | 25.0 % | 100.0 |"), r.out());

        PeerScriptsTest.Result none = PeerScriptsTest.run(List.of(py, PeerScriptsTest.scripts().resolve("jfr_step_ops.py").toString(),
                file.toString(), "--thread", "nobody"));
        assertEquals(1, none.exit());
        assertTrue(none.err().contains("no samples of thread 'nobody'"), none.err());

        String script = PeerScriptsTest.scripts().resolve("jfr_step_ops.py").toString();
        PeerScriptsTest.Result missing = PeerScriptsTest.run(List.of(py, script, dir.resolve("absent.txt").toString()));
        assertEquals(1, missing.exit());
        assertTrue(missing.err().contains("cannot read") && missing.err().contains("absent.txt"), missing.err());
        for (String bad : List.of("nan", "0", "-1", "inf")) {
            PeerScriptsTest.Result r2 = PeerScriptsTest.run(List.of(py, script, file.toString(), "--step-seconds", bad));
            assertEquals(2, r2.exit(), bad);
            assertTrue(r2.err().contains("--step-seconds must be a positive number"), r2.err());
        }
    }

    @Test
    void thePeersProfileRefusesNoSteps() throws Exception {
        String py = PeerScriptsTest.python();
        Assumptions.assumeTrue(py != null, "no python3 on PATH");
        PeerScriptsTest.Result r = PeerScriptsTest.run(List.of(py, PeerScriptsTest.scripts().resolve("cpu_step_peer.py").toString(),
                "profile", "target/step-peer/h512", "--steps", "0"));
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--steps must be at least 1, got 0"), r.err());
    }
}
