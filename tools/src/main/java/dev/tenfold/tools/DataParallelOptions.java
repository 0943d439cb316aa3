package dev.tenfold.tools;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.collective.CollectiveException;
import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.collective.MpiCommunicator;
import dev.tenfold.engine.collective.NcclCommunicator;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * `tenfold train`'s data-parallel flags: how many ranks, where rank 0 listens, how long to wait.
 * With --nproc-per-node N (or --nnodes) and no launcher's variables set, this process is the
 * launcher ({@link Launcher}); a process with them set is a rank ({@link RankEnvironment}) and
 * joins the others ({@link #join}).
 */
final class DataParallelOptions {
    @Option(names = "--nproc-per-node", paramLabel = "N", defaultValue = "1",
            description = "Ranks (processes, one per GPU) to start on this machine (default 1); CPU ranks through mpirun.")
    @Range(min = 1, max = 1024) int nprocPerNode = 1;
    @Option(names = "--nnodes", paramLabel = "N", defaultValue = "1", description = "Machines in the run (default 1); start the same command on each.")
    @Range(min = 1, max = 65536) int nnodes = 1;
    @Option(names = "--node-rank", paramLabel = "I", defaultValue = "0", description = "This machine's index in [0, --nnodes) (default 0).")
    @Range(min = 0, max = 65535) int nodeRank;
    @Option(names = "--master-addr", paramLabel = "HOST", description = "Where rank 0 listens (default MASTER_ADDR, else 127.0.0.1).")
    String masterAddr;
    @Option(names = "--master-port", paramLabel = "PORT", description = "Rank 0's rendezvous port (default MASTER_PORT, else 29500).")
    @Range(min = 1, max = 65535) Integer masterPort;
    @Option(names = "--rdzv", paramLabel = "tcp|file:DIR", defaultValue = "tcp",
            description = "How GPU ranks meet: rank 0's TCP port (default), or files in a folder every machine sees.")
    String rdzv = "tcp";
    @Option(names = "--rdzv-timeout", paramLabel = "SECONDS", defaultValue = "900",
            description = "How long rank 0 waits for the other ranks to arrive (default 900); the missing ranks are named.")
    @Range(min = 1, max = 86_400) int rdzvTimeout = 900;
    @Option(names = "--collective-timeout", paramLabel = "SECONDS", defaultValue = "600",
            description = "A rank stuck this long in an all-reduce (a rank died) ends with an error (default 600).")
    @Range(min = 1, max = 86_400) int collectiveTimeout = 600;
    @Option(names = "--max-restarts", paramLabel = "K", defaultValue = "0",
            description = "Restart every rank from the last checkpoint up to K times after a failure (default 0).")
    @Range(min = 0, max = 1000) int maxRestarts;

    static final int DEFAULT_PORT = 29500;

    /** Whether this process starts the ranks (it is none of them). */
    boolean launches(Map<String, String> env) {
        return (nprocPerNode > 1 || nnodes > 1) && RankEnvironment.detect(env).isEmpty();
    }

    /** Flags that contradict each other, before anything starts. */
    void check(boolean cpu) {
        if (nodeRank >= nnodes) throw new Flags.BadFlag("--node-rank " + nodeRank + " is not in [0, " + nnodes + ") (--nnodes " + nnodes + ")");
        if (!rdzv.equals("tcp") && !(rdzv.startsWith("file:") && rdzv.length() > 5)) {
            throw new Flags.BadFlag("--rdzv " + rdzv + ": choose tcp or file:DIR");
        }
        if (cpu && nnodes > 1) {
            throw new Flags.BadFlag("--nnodes " + nnodes + " with --device cpu: CPU ranks form their world through MPI; start them on every"
                    + " machine with mpirun -H host1:N,host2:N ... tenfold train ... (see the README)");
        }
    }

    Duration collectiveTimeout() { return Duration.ofSeconds(collectiveTimeout); }

    /**
     * Joins the other ranks: MPI's world under mpirun (or srun with a CPU device), else the
     * rendezvous (TCP or files) and NCCL on the rank's GPU. Every rank's {@code configHash} must be
     * rank 0's. A one-rank world needs nothing: {@link Communicator#solo()}.
     */
    Communicator join(RankEnvironment env, Backend backend, String configHash) throws IOException {
        if (env.size() == 1) return Communicator.solo();
        boolean cpu = backend.device().isCpu();
        if (env.isMpi() || (cpu && env.launcher().equals(RankEnvironment.SLURM))) {
            if (!cpu) throw new IllegalArgumentException("GPU ranks talk through NCCL: start them with torchrun, srun or tenfold train --nproc-per-node,"
                    + " not mpirun (or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)");
            MpiCommunicator mpi = MpiCommunicator.world(collectiveTimeout());
            if (mpi.size() != env.size()) {
                throw new CollectiveException("MPI's world has " + mpi.size() + " ranks but the launcher said " + env.size());
            }
            checkSameConfiguration(mpi, configHash);
            return mpi;
        }
        if (cpu) {
            throw new IllegalArgumentException("CPU ranks form their world through MPI: start them with mpirun (or tenfold train"
                    + " --nproc-per-node N --device cpu, which runs mpirun), not " + env.launcher());
        }
        String host = masterAddr != null ? masterAddr : env.masterAddr() != null ? env.masterAddr() : "127.0.0.1";
        int port = masterPort != null ? masterPort : env.masterPort() != null ? env.masterPort() : DEFAULT_PORT;
        Duration wait = Duration.ofSeconds(rdzvTimeout);
        byte[] id = rdzv.startsWith("file:")
                ? Rendezvous.file(Path.of(rdzv.substring(5)), env.rank(), env.size(), configHash, NcclCommunicator::newUniqueId, wait)
                : Rendezvous.tcp(host, port, env.rank(), env.size(), configHash, NcclCommunicator::newUniqueId, wait);
        return NcclCommunicator.join(backend, env.size(), env.rank(), id, collectiveTimeout());
    }

    /** Every rank's hash (its first 52 bits, exact in a double) against rank 0's; the ranks that differ are named. */
    static void checkSameConfiguration(Communicator comm, String configHash) {
        double[] hashes = new double[comm.size()];
        hashes[comm.rank()] = Long.parseLong(configHash.substring(0, 13), 16);
        comm.allReduceSum(hashes);
        List<String> differ = new ArrayList<>();
        for (int r = 1; r < hashes.length; r++) if (hashes[r] != hashes[0]) differ.add(String.valueOf(r));
        if (!differ.isEmpty()) {
            throw new IllegalArgumentException("rank" + (differ.size() > 1 ? "s " : " ") + String.join(", ", differ)
                    + " run a configuration that differs from rank 0's: every rank must run the same train command on the same model and data");
        }
    }

    /** The device of a rank: --device cuda means cuda:LOCAL_RANK, or cuda:0 where one GPU is visible. */
    static String deviceOf(String device, RankEnvironment env, Map<String, String> sysEnv) {
        if (!device.equals("cuda")) return device;
        String visible = sysEnv.get("CUDA_VISIBLE_DEVICES");
        if (visible != null && !visible.isBlank() && !visible.contains(",")) return "cuda:0";
        return "cuda:" + env.localRank();
    }

    // ------------------------------------------------------------------ the launcher's commands

    /** This JVM's java, its flags and class path, running the CLI: what each rank runs. */
    static List<String> javaCommand(int threadsPerRank) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            // not the launcher script's stderr descriptor (a rank does not inherit it), nor a debugger or agent of this JVM
            if (!a.startsWith("-Djava.util.concurrent.ForkJoinPool.common.parallelism") && !a.startsWith("-agentlib")
                    && !a.startsWith("-javaagent") && !a.startsWith("-Dtenfold.stderr.fd")) {
                cmd.add(a);
            }
        }
        // the cores shared among this machine's ranks: Parallel.threads() is this parallelism plus the calling thread
        if (threadsPerRank > 0) cmd.add("-Djava.util.concurrent.ForkJoinPool.common.parallelism=" + Math.max(0, threadsPerRank - 1));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        return cmd;
    }

    /** mpirun's command for N CPU ranks on this machine (oversubscribed; allowed as root where run as root). */
    List<String> mpirunCommand(String mpirun) {
        List<String> cmd = new ArrayList<>(List.of(mpirun, "-n", String.valueOf(nprocPerNode), "--oversubscribe", "--bind-to", "none"));
        if ("root".equals(System.getProperty("user.name"))) cmd.add("--allow-run-as-root");
        return cmd;
    }

    /** A short hex id of the run's configuration: the arguments but the rank's own, the model's config.json, the data files' sizes. */
    static String configHash(List<String> args, Path model, List<Path> data) throws IOException {
        try {
            java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
            List<String> kept = new ArrayList<>();
            for (int i = 0; i < args.size(); i++) {
                String a = args.get(i);
                if (a.equals("--node-rank") || a.equals("--master-addr")) {
                    i++; // the rank's own place, not the run's configuration
                    continue;
                }
                if (a.startsWith("--node-rank=") || a.startsWith("--master-addr=")) continue;
                kept.add(a);
            }
            md.update(String.join("\u0000", kept).getBytes(java.nio.charset.StandardCharsets.UTF_8));
            Path config = model.resolve("config.json");
            if (Files.isRegularFile(config)) md.update(Files.readAllBytes(config));
            for (Path d : data) md.update(Long.toString(Files.isRegularFile(d) ? Files.size(d) : -1).getBytes());
            return HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
