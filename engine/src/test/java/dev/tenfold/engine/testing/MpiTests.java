package dev.tenfold.engine.testing;

import dev.tenfold.engine.collective.MpiCommunicator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/**
 * Runs a test's main class as the ranks of an MPI world: {@code mpirun -n N java -cp <the test class
 * path> Main args}. Without mpirun or Open MPI's library the calling test is skipped with the
 * reason; where {@value #REQUIRE_MPI_ENV}=1 (CI) it fails instead.
 */
public final class MpiTests {
    public static final String REQUIRE_MPI_ENV = "TENFOLD_REQUIRE_MPI";

    private MpiTests() {}

    /** What a world of processes printed and how it ended. */
    public record Result(int exitCode, String output) {}

    /** mpirun's path, or the test is skipped (failed where MPI is required) saying what is missing. */
    public static String mpirunOrSkip() {
        String mpirun = MpiCommunicator.mpirun();
        String missing = mpirun == null ? "mpirun is not on the PATH" : MpiCommunicator.unavailableReason();
        if (missing != null) {
            String reason = "no MPI for this test (" + missing + "); install openmpi-bin";
            if ("1".equals(System.getenv(REQUIRE_MPI_ENV))) Assertions.fail(reason + " (" + REQUIRE_MPI_ENV + "=1)");
            Assumptions.abort(reason);
        }
        return mpirun;
    }

    /** The mpirun command that starts {@code ranks} processes here: oversubscribed, and allowed as root. */
    public static List<String> mpirun(int ranks) {
        List<String> cmd = new ArrayList<>(List.of(mpirunOrSkip(), "-n", String.valueOf(ranks), "--oversubscribe")); // more ranks than cores
        if ("root".equals(System.getProperty("user.name"))) cmd.add("--allow-run-as-root");
        return cmd;
    }

    /** This JVM's java with its flags and class path, running {@code main}. */
    public static List<String> java(Class<?> main, String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xss8m", "-Xmx1g",
                "-cp", System.getProperty("java.class.path"), main.getName()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Runs {@code main} on {@code ranks} MPI ranks; fails the test if the world outlives {@code timeout}. */
    public static Result run(int ranks, Duration timeout, Class<?> main, String... args) throws IOException, InterruptedException {
        List<String> cmd = mpirun(ranks);
        cmd.addAll(java(main, args));
        return runCommand(cmd, timeout);
    }

    /** Runs a command, its output (stdout and stderr) collected; fails the test if it outlives {@code timeout}. */
    public static Result runCommand(List<String> cmd, Duration timeout) throws IOException, InterruptedException {
        Path log = Files.createTempFile("tenfold-mpi", ".log");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                Assertions.fail("still running after " + timeout + ": " + String.join(" ", cmd) + "\n" + Files.readString(log));
            }
            return new Result(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(log);
        }
    }
}
