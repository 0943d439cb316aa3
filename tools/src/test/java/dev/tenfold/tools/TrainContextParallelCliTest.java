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
 * (mpirun underneath) trains the adapter of one process, to f32 rounding of the shards' sums.
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
        Path out = dir.resolve("cp2"), log = dir.resolve("cp2.log");
        Process p = TrainDataParallelCliTest.start(log, args(out, "--nproc-per-node", "2", "--cp", "2"));
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
            assertTrue(text.contains("context parallelism: each sequence split over 2 ranks (Ulysses attention), 1 data-parallel group"), text);
        }
        assertTrue(Files.readString(out.resolve("logs/rank-1.log")).contains("step 12/12"));
    }

    @Test
    void aGroupThatDoesNotDivideTheRanksIsABadFlag() {
        CliTest.Result r = CliTest.run("", args(dir.resolve("bad"), "--nproc-per-node", "2", "--cp", "3"));
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--cp 3 must divide the ranks (--nproc-per-node x --nnodes = 2)"), r.err());
        CliTest.Result d = CliTest.run("", TrainCliTest.trainArgs(dir.resolve("bad2"), "--nproc-per-node", "2", "--cp", "2"));
        assertEquals(2, d.code(), d.err());
        assertTrue(d.err().contains("--cp does not take --lora-dropout 0.1"), d.err());
    }
}
