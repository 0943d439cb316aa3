package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.io.SafeTensorsFile;
import dev.tenfold.engine.testing.MpiTests;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `tenfold train --nproc-per-node 2 --cp 2 --device cpu`: each sequence split over the two ranks
 * (mpirun underneath) trains the adapter of one process, to f32 rounding of the shards' sums; with
 * Ulysses, with the all-gather (--cp-scheme allgather), and with two data-parallel groups of two
 * (--nproc-per-node 4 --cp 2).
 */
class TrainContextParallelCliTest {
    @TempDir static Path dir;
    static Path straight;

    /** The data-parallel test's run without LoRA dropout (context parallelism refuses it). */
    static String[] args(Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of(TrainCliTest.trainArgs(out)));
        a.set(a.indexOf("--lora-dropout") + 1, "0");
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    @BeforeAll
    static void oneProcess() throws Exception {
        TrainCliTest.prepare(dir);
        straight = dir.resolve("one-process");
        CliTest.Result r = CliTest.run("", args(straight));
        assertEquals(0, r.code(), r.err());
    }

    @Test
    void twoRanksSharingEachSequenceTrainTheAdapterOfOneProcess() throws Exception {
        MpiTests.mpirunOrSkip();
        Path out = dir.resolve("cp2");
        String text = trainAndCompare(out, "--nproc-per-node", "2", "--cp", "2");
        assertTrue(text.contains("context parallelism: each sequence split over 2 ranks (Ulysses attention), 1 data-parallel group"), text);
        assertTrue(Files.readString(out.resolve("logs/rank-1.log")).contains("step 12/12"));
    }

    @Test
    void twoRanksWithTheAllGatherTrainTheAdapterOfOneProcess() throws Exception {
        MpiTests.mpirunOrSkip();
        Path out = dir.resolve("cp2-allgather");
        String text = trainAndCompare(out, "--nproc-per-node", "2", "--cp", "2", "--cp-scheme", "allgather");
        assertTrue(text.contains("context parallelism: each sequence split over 2 ranks (all-gather attention, zigzag chunks), 1 data-parallel group"), text);
        assertTrue(Files.readString(out.resolve("logs/rank-1.log")).contains("step 12/12"));
    }

    /** DP x CP = 2 x 2 through mpirun: world ranks 0, 1 share one group's sequences, ranks 2, 3 the other's. */
    @Test
    void twoGroupsOfTwoRanksTrainTheAdapterOfOneProcess() throws Exception {
        MpiTests.mpirunOrSkip();
        Path out = dir.resolve("dp2-cp2");
        String text = trainAndCompare(out, "--nproc-per-node", "4", "--cp", "2");
        assertTrue(text.contains("context parallelism: each sequence split over 2 ranks (Ulysses attention), 2 data-parallel groups"), text);
        for (int r = 1; r < 4; r++) assertTrue(Files.readString(out.resolve("logs/rank-" + r + ".log")).contains("step 12/12"), "rank " + r);
    }

    /** Trains with {@code extra} under mpirun; checks the adapter against one process's; returns rank 0's log. */
    static String trainAndCompare(Path out, String... extra) throws Exception {
        Path log = out.resolveSibling(out.getFileName() + ".log");
        Process p = TrainDataParallelCliTest.start(log, args(out, extra));
        String text = TrainDataParallelCliTest.finish(p, log);
        assertEquals(0, p.exitValue(), text);
        try (SafeTensorsFile a = SafeTensorsFile.open(straight.resolve("adapter_model.safetensors"));
             SafeTensorsFile b = SafeTensorsFile.open(out.resolve("adapter_model.safetensors"))) {
            assertEquals(a.names(), b.names());
            for (String name : a.names()) {
                float[] x = a.tensor(name).toFloatArray(), y = b.tensor(name).toFloatArray();
                double diff = 0, max = 0;
                for (int i = 0; i < x.length; i++) {
                    diff = Math.max(diff, Math.abs(x[i] - y[i]));
                    max = Math.max(max, Math.abs(x[i]));
                }
                assertTrue(diff <= 1e-4 * max, name + ": max |diff| " + diff + ", max |w| " + max + "\n" + text);
            }
        }
        return text;
    }

    @Test
    void aGroupThatDoesNotDivideTheRanksIsABadFlag() {
        CliTest.Result r = CliTest.run("", args(dir.resolve("bad"), "--nproc-per-node", "2", "--cp", "3"));
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--cp 3 must divide the ranks (--nproc-per-node x --nnodes = 2)"), r.err());
        CliTest.Result d = CliTest.run("", TrainCliTest.trainArgs(dir.resolve("bad2"), "--nproc-per-node", "2", "--cp", "2"));
        assertEquals(2, d.code(), d.err());
        assertTrue(d.err().contains("--cp does not take --lora-dropout 0.1"), d.err());
        // the tiny model has 2 key/value heads: Ulysses cannot run over 4 ranks
        CliTest.Result u = CliTest.run("", args(dir.resolve("bad3"), "--nproc-per-node", "4", "--cp", "4", "--cp-scheme", "ulysses"));
        assertEquals(2, u.code(), u.err());
        assertTrue(u.err().contains("--cp 4 --cp-scheme ulysses: context parallelism: Ulysses needs the 4 ranks to divide the model's 2"
                + " key/value heads; use --cp-scheme allgather (or auto) for 4 ranks"), u.err());
        CliTest.Result s = CliTest.run("", args(dir.resolve("bad4"), "--nproc-per-node", "2", "--cp", "2", "--cp-scheme", "ring"));
        assertEquals(2, s.code(), s.err());
        assertTrue(s.err().contains("--cp-scheme ring: choose auto, ulysses or allgather"), s.err());
        // on GPUs: NCCL ranks, one per GPU; without a GPU that is --device's usual error, before any rank starts
        CliTest.Result g = CliTest.run("", args(dir.resolve("bad5"), "--nproc-per-node", "2", "--cp", "2", "--device", "cuda"));
        assertEquals(1, g.code(), g.err());
        assertTrue(g.err().startsWith("tenfold train: --device cuda"), g.err());
        assertTrue(g.err().contains("(--device cpu runs everything on the CPU"), g.err());
        assertFalse(g.err().contains("runs on CPU ranks only"), g.err());
        assertFalse(g.err().contains("starting 2 ranks"), g.err());
    }
}
