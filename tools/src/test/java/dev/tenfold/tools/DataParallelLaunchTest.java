package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where a rank learns who it is, how ranks meet (TCP and files), and the data-parallel flags' refusals. */
class DataParallelLaunchTest {
    @TempDir static Path dir;

    @BeforeAll
    static void data() throws Exception {
        TrainCliTest.prepare(dir);
    }

    @Test
    void aRankReadsMpirunsTorchrunsAndSlurmsVariables() {
        assertTrue(RankEnvironment.detect(Map.of("PATH", "/bin")).isEmpty());
        assertEquals(new RankEnvironment("mpirun", 3, 4, 1, 2, null, null), RankEnvironment.detect(Map.of("OMPI_COMM_WORLD_RANK", "3",
                "OMPI_COMM_WORLD_SIZE", "4", "OMPI_COMM_WORLD_LOCAL_RANK", "1", "OMPI_COMM_WORLD_LOCAL_SIZE", "2")).orElseThrow());
        assertEquals(new RankEnvironment("torchrun", 5, 16, 5, 8, "node0", 29400), RankEnvironment.detect(Map.of("RANK", "5", "WORLD_SIZE", "16",
                "LOCAL_RANK", "5", "LOCAL_WORLD_SIZE", "8", "MASTER_ADDR", "node0", "MASTER_PORT", "29400")).orElseThrow());
        assertEquals(new RankEnvironment("srun", 9, 16, 1, 8, null, null), RankEnvironment.detect(Map.of("SLURM_PROCID", "9", "SLURM_NTASKS", "16",
                "SLURM_LOCALID", "1", "SLURM_NTASKS_PER_NODE", "8(x2)")).orElseThrow());
        // mpirun's variables win over a torchrun-like environment around it
        assertEquals("mpirun", RankEnvironment.detect(Map.of("OMPI_COMM_WORLD_RANK", "0", "OMPI_COMM_WORLD_SIZE", "2", "RANK", "1",
                "WORLD_SIZE", "2")).orElseThrow().launcher());
        assertEquals("environment variable RANK=4 is not in [0, 4)", assertThrows(IllegalArgumentException.class,
                () -> RankEnvironment.detect(Map.of("RANK", "4", "WORLD_SIZE", "4"))).getMessage());
        assertEquals("environment variable WORLD_SIZE=two is not a whole number", assertThrows(IllegalArgumentException.class,
                () -> RankEnvironment.detect(Map.of("RANK", "0", "WORLD_SIZE", "two"))).getMessage());
        RankEnvironment local3 = new RankEnvironment("torchrun", 3, 4, 3, 4, null, null);
        assertEquals("cuda:3", DataParallelOptions.deviceOf("cuda", local3, Map.of()));
        assertEquals("cuda:0", DataParallelOptions.deviceOf("cuda", local3, Map.of("CUDA_VISIBLE_DEVICES", "3")));
        assertEquals("cuda:1", DataParallelOptions.deviceOf("cuda:1", local3, Map.of()));
    }

    /** Runs rank r's rendezvous on its own thread; returns each rank's bytes or exception message. */
    private static List<Object> meet(int size, List<String> hashes, java.util.function.IntFunction<byte[]> rank) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(size);
        try {
            List<Future<byte[]>> f = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                int rr = r;
                f.add(pool.submit(() -> rank.apply(rr)));
            }
            List<Object> out = new ArrayList<>();
            for (Future<byte[]> x : f) {
                try {
                    out.add(x.get());
                } catch (java.util.concurrent.ExecutionException e) {
                    out.add(e.getCause().getMessage());
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    private static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static byte[] tcp(int port, int rank, int size, String hash, Duration timeout) {
        try {
            return Rendezvous.tcp("127.0.0.1", port, rank, size, hash, () -> new byte[] {1, 2, 3, (byte) 200}, timeout);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static final String HASH = "0123456789abcdef0123456789abcdef", OTHER = "fedcba9876543210fedcba9876543210";

    @Test
    void overTcpEveryRankGetsRankZerosBytes() throws Exception {
        int port = freePort();
        List<Object> got = meet(4, null, r -> tcp(port, r, 4, HASH, Duration.ofSeconds(30)));
        for (Object o : got) assertArrayEquals(new byte[] {1, 2, 3, (byte) 200}, (byte[]) o, String.valueOf(o));
    }

    @Test
    void overTcpAConfigurationThatDiffersIsRefusedAndAMissingRankIsNamed() throws Exception {
        int port = freePort();
        List<Object> got = meet(2, null, r -> tcp(port, r, 2, r == 1 ? OTHER : HASH, Duration.ofSeconds(30)));
        assertEquals("rank 1's configuration differs from rank 0's (hash fedcba987654 vs 0123456789ab): every rank must run the same"
                + " train command on the same model and data", got.get(0));
        assertTrue(((String) got.get(1)).startsWith("rank 1: rank 0 refused the run: rank 1's configuration differs"), (String) got.get(1));

        int port2 = freePort();
        long t0 = System.nanoTime();
        // ranks 0 and 2 of 4 come; 1 and 3 never do
        got = meet(2, null, r -> tcp(port2, r * 2, 4, HASH, Duration.ofSeconds(2)));
        assertEquals("ranks 1, 3 of 4 did not arrive within --rdzv-timeout 2 s (rank 0 waited on port " + port2 + ")", got.get(0));
        assertEquals("rank 2: rank 0 refused the run: ranks 1, 3 of 4 did not arrive within --rdzv-timeout 2 s (rank 0 waited on port "
                + port2 + ")", got.get(1));
        assertTrue(System.nanoTime() - t0 < 60e9);

        // rank 0 never comes
        assertEquals("rank 1: rank 0 at 127.0.0.1:" + port2 + " did not answer within --rdzv-timeout 1 s",
                meet(1, null, r -> tcp(port2, 1, 2, HASH, Duration.ofSeconds(1))).get(0));
    }

    @Test
    void throughFilesTheSame(@TempDir Path rdzv) throws Exception {
        java.util.function.IntFunction<byte[]> rank = r -> {
            try {
                return Rendezvous.file(rdzv, r, 3, HASH, () -> new byte[] {7, 8}, Duration.ofSeconds(30));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        };
        for (Object o : meet(3, null, rank)) assertArrayEquals(new byte[] {7, 8}, (byte[]) o, String.valueOf(o));
        // a second run in the same folder does not take the first one's result
        for (Object o : meet(3, null, rank)) assertArrayEquals(new byte[] {7, 8}, (byte[]) o, String.valueOf(o));
        List<Object> got = meet(2, null, r -> {
            try {
                return Rendezvous.file(rdzv.resolve("b"), r, 2, r == 0 ? HASH : OTHER, () -> new byte[] {7}, Duration.ofSeconds(30));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        assertTrue(((String) got.get(0)).startsWith("rank 1's configuration differs from rank 0's"), (String) got.get(0));
        assertTrue(((String) got.get(1)).startsWith("rank 1: rank 0 refused the run"), (String) got.get(1));
    }

    @Test
    void badDataParallelFlagsAreOneLineAndExitTwo() {
        String[][] cases = {
                {"--nproc-per-node", "0", "tenfold train: --nproc-per-node must be"},
                {"--nnodes", "2", "--node-rank", "2", "tenfold train: --node-rank 2 is not in [0, 2) (--nnodes 2)"},
                {"--rdzv", "udp", "tenfold train: --rdzv udp: choose tcp or file:DIR"},
                {"--nnodes", "2", "tenfold train: --nnodes 2 with --device cpu: CPU ranks form their world through MPI"},
                {"--collective-timeout", "0", "tenfold train: --collective-timeout must be"},
                {"--max-restarts", "-1", "tenfold train: --max-restarts must be"},
        };
        for (String[] c : cases) {
            List<String> a = new ArrayList<>(List.of(TrainCliTest.trainArgs(dir.resolve("never"))));
            a.addAll(List.of(c).subList(0, c.length - 1));
            CliTest.Result r = CliTest.run("", a.toArray(String[]::new));
            assertEquals(2, r.code(), String.join(" ", c) + ": " + r.err());
            assertTrue(r.err().startsWith(c[c.length - 1]), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
        }
    }

    @Test
    void theConfigurationHashIgnoresTheRanksOwnPlace() throws Exception {
        Path model = TrainCliTest.model;
        List<Path> data = List.of(TrainCliTest.data);
        String a = DataParallelOptions.configHash(List.of("--lr", "1e-3", "--node-rank", "0", "--master-addr", "a"), model, data);
        assertEquals(a, DataParallelOptions.configHash(List.of("--lr", "1e-3", "--node-rank", "1", "--master-addr", "b"), model, data));
        assertNotEquals(a, DataParallelOptions.configHash(List.of("--lr", "2e-3", "--node-rank", "0"), model, data));
        assertEquals(List.of("--lr", "1", "--resume", "out"), Launcher.resumeArgs(List.of("--lr", "1", "--resume", "old"), Path.of("out")));
    }
}
