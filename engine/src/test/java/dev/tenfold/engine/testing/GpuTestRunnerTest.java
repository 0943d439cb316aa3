package dev.tenfold.engine.testing;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The GPU test runner of .gpu/run.sh, on fixture tests: counts, the summary line, skips as failures, the per-test limit. */
class GpuTestRunnerTest {
    private static final String FIXTURES = ".*GpuTestRunnerFixtures.*";

    private static String root() throws Exception {
        return Path.of(GpuTestRunner.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    private record Run(int code, String out) {}

    private static Run run(String... args) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int code = GpuTestRunner.run(args, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        return new Run(code, bytes.toString(StandardCharsets.UTF_8));
    }

    @Test
    void eachTestIsOneLineAndTheSummaryNamesTheFirstFailure() throws Exception {
        Run r = run("--tag", "runner-fixture", "--include", FIXTURES, root());
        assertEquals(1, r.code(), r.out());
        assertTrue(r.out().contains("  ok       GpuTestRunnerFixtures$Passing > passes() ("), r.out());
        assertTrue(r.out().contains("  SKIPPED  GpuTestRunnerFixtures$Skipping > skips() (") && r.out().contains("TestAbortedException: no GPU in this fixture"), r.out());
        assertTrue(r.out().endsWith("gpu-tests: 3 run, 1 passed, 1 failed, 1 skipped; first failure: GpuTestRunnerFixtures$Failing > fails():"
                + " AssertionFailedError: the fixture fails\n"), r.out());
    }

    @Test
    void skipsFailTheRunOnlyWhenAskedAndSoDoesFindingNothing() throws Exception {
        String onlyPassAndSkip = ".*GpuTestRunnerFixtures\\$(Passing|Skipping)";
        assertEquals(0, run("--tag", "runner-fixture", "--include", onlyPassAndSkip, root()).code());
        Run strict = run("--tag", "runner-fixture", "--include", onlyPassAndSkip, "--skips-fail", root());
        assertEquals(1, strict.code(), strict.out());
        assertTrue(strict.out().contains("first failure: GpuTestRunnerFixtures$Skipping > skips(): TestAbortedException: no GPU in this fixture (skipped: a skip"
                + " counts as a failure here)"), strict.out());
        Run none = run("--tag", "no-such-tag", "--skips-fail", root());
        assertEquals(1, none.code(), none.out());
        assertTrue(none.out().contains("gpu-tests: 0 run, 0 passed, 0 failed, 0 skipped; first failure: no test tagged no-such-tag found"),
                none.out());
        assertEquals(2, run("--timeout").code());
    }

    @Test
    void aTestPastTheLimitIsNamedAndEndsTheRun() throws Exception {
        String java = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), GpuTestRunner.class.getName(),
                "--tag", "runner-fixture-hang", "--include", FIXTURES, "--timeout", "1", root()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), out);
        assertEquals(GpuTestRunner.TIMED_OUT, p.exitValue(), out);
        assertTrue(out.contains("  TIMED OUT GpuTestRunnerFixtures$Hanging > hangs() after 1 s: still running"), out);
        assertTrue(out.contains("gpu-tests: 1 run, 0 passed, 1 failed, 0 skipped, 1 timed out; first failure: GpuTestRunnerFixtures$Hanging > hangs(): timed out"
                + " after 1 s"), out);
    }
}
