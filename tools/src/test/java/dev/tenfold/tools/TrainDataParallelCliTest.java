package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.testing.MpiTests;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `tenfold train --nproc-per-node 2 --device cpu` as a user runs it (mpirun underneath): the adapter
 * bytes of one process; a rank killed (SIGKILL) mid-run ends every process with a failure, and the
 * run resumes (on another number of ranks, or by --max-restarts) to the uninterrupted run's adapter.
 * Skipped without Open MPI, required where TENFOLD_REQUIRE_MPI=1.
 */
class TrainDataParallelCliTest {
    @TempDir static Path dir;
    static Path straight;

    @BeforeAll
    static void oneProcess() throws Exception {
        TrainCliTest.prepare(dir);
        straight = dir.resolve("one-process");
        CliTest.Result r = CliTest.run("", TrainCliTest.trainArgs(straight));
        assertEquals(0, r.code(), r.err());
    }

    /** The CLI in its own JVM (as the launcher it is), its output in a log; not waited for. */
    static Process start(Path log, String... args) throws Exception {
        List<String> cmd = MpiTests.java(Main.class, args);
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    static String finish(Process p, Path log) throws Exception {
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            fail("the run did not end:\n" + Files.readString(log));
        }
        return Files.readString(log);
    }

    static String[] args(Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of(TrainCliTest.trainArgs(out)));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    @Test
    void twoCpuRanksWriteTheAdapterBytesOfOneProcess() throws Exception {
        MpiTests.mpirunOrSkip();
        Path out = dir.resolve("two-ranks"), log = dir.resolve("two-ranks.log");
        Process p = start(log, args(out, "--nproc-per-node", "2"));
        String text = finish(p, log);
        assertEquals(0, p.exitValue(), text);
        assertArrayEquals(Files.readAllBytes(straight.resolve("adapter_model.safetensors")), Files.readAllBytes(out.resolve("adapter_model.safetensors")),
                "2 ranks give the bytes of 1\n" + text);
        List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(12, metrics.size());
        assertTrue(metrics.get(0).contains("\"ranks\":2") && metrics.get(0).contains("\"rank_seconds\":["), metrics.get(0));
        String rank1 = Files.readString(out.resolve("logs/rank-1.log"));
        assertTrue(rank1.contains("rank 1 of 2") && rank1.contains("step 12/12"), rank1);
        assertTrue(text.contains("step 12/12") && !text.contains("rank 1 of 2 (pid"), "one progress bar, rank 0's:\n" + text);
    }

    @Test
    void aKilledRankEndsTheRunAndItResumesOnOneRankToTheSameAdapter() throws Exception {
        MpiTests.mpirunOrSkip();
        Path out = dir.resolve("killed"), log = dir.resolve("killed.log");
        Process p = start(log, args(out, "--nproc-per-node", "2", "--step-delay-ms", "300"));
        long rank1 = killRank1After(out, 4, p, log);
        String text = finish(p, log);
        assertNotEquals(0, p.exitValue(), text);
        assertFalse(ProcessHandle.of(rank1).map(ProcessHandle::isAlive).orElse(false));
        long rank0 = pidOf(text, "rank 0 of 2 \\(pid (\\d+)");
        assertFalse(ProcessHandle.of(rank0).map(ProcessHandle::isAlive).orElse(false), "rank 0 ended too:\n" + text);
        assertFalse(Files.exists(out.resolve("adapter_model.safetensors")));
        for (Path f : Outputs.checkpoints(out).stream().map(out::resolve).toList()) {
            assertTrue(Files.exists(f.resolve("trainer_state.json")), "a whole checkpoint: " + f);
        }
        // resumed by one process: a checkpoint is the same for any number of ranks
        CliTest.Result resumed = CliTest.run("", args(out, "--resume", out.toString()));
        assertEquals(0, resumed.code(), resumed.err());
        assertArrayEquals(Files.readAllBytes(straight.resolve("adapter_model.safetensors")), Files.readAllBytes(out.resolve("adapter_model.safetensors")));
    }

    @Test
    void maxRestartsRestartsTheRanksFromTheLastCheckpoint() throws Exception {
        MpiTests.mpirunOrSkip();
        Path out = dir.resolve("restarted"), log = dir.resolve("restarted.log");
        Process p = start(log, args(out, "--nproc-per-node", "2", "--step-delay-ms", "300", "--max-restarts", "1"));
        killRank1After(out, 4, p, log);
        String text = finish(p, log);
        assertEquals(0, p.exitValue(), text);
        assertTrue(text.contains("restart 1 of 1") && text.contains("resumed at step"), text);
        assertArrayEquals(Files.readAllBytes(straight.resolve("adapter_model.safetensors")), Files.readAllBytes(out.resolve("adapter_model.safetensors")));
    }

    /** Waits for checkpoint-{@code step}, then SIGKILLs rank 1 (its pid from its log); returns that pid. */
    private static long killRank1After(Path out, int step, Process launcher, Path log) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (!Files.isDirectory(out.resolve("checkpoint-" + step)) && launcher.isAlive() && System.nanoTime() < deadline) Thread.sleep(20);
        assertTrue(launcher.isAlive(), "the run ended before it could be killed:\n" + Files.readString(log));
        long pid = pidOf(Files.readString(out.resolve("logs/rank-1.log")), "rank 1 of 2 \\(pid (\\d+)");
        new ProcessBuilder("kill", "-9", String.valueOf(pid)).start().waitFor();
        return pid;
    }

    private static long pidOf(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertTrue(m.find(), "no " + regex + " in:\n" + text);
        return Long.parseLong(m.group(1));
    }
}
