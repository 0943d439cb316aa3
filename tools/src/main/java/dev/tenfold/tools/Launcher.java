package dev.tenfold.tools;

import dev.tenfold.engine.collective.MpiCommunicator;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * `tenfold train --nproc-per-node N`: starts this machine's ranks and watches them. CPU ranks run
 * under mpirun (which forms their MPI world and ends them all when one fails); GPU ranks are N
 * processes with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, ...), and when one fails the
 * launcher ends the others (SIGTERM, then SIGKILL). With --max-restarts K a failed run starts again
 * from its newest checkpoint, up to K times.
 */
final class Launcher {
    private Launcher() {}

    private static final long GRACE_MS = 10_000;

    /** Runs the ranks (again after failures, as --max-restarts allows); returns the exit code. */
    static int run(DataParallelOptions dp, List<String> args, Path output, boolean cpu, PrintStream err) throws IOException, InterruptedException {
        int world = dp.nprocPerNode * dp.nnodes;
        for (int attempt = 0; ; attempt++) {
            List<String> a = attempt == 0 ? args : resumeArgs(args, output);
            err.println("tenfold: starting " + dp.nprocPerNode + " rank" + (dp.nprocPerNode > 1 ? "s" : "") + " on this machine ("
                    + world + " in all, " + (cpu ? "CPU over MPI" : "GPU over NCCL") + ")" + (attempt > 0 ? ", restart " + attempt + " of "
                    + dp.maxRestarts : ""));
            int code = cpu ? runUnderMpirun(dp, a) : runProcesses(dp, a);
            if (code == 0) return Main.OK;
            err.println("tenfold: a rank failed (exit code " + code + "); every rank of this machine has ended");
            if (attempt >= dp.maxRestarts) return Main.FAILED;
            if (Outputs.checkpoints(output).isEmpty()) {
                err.println("tenfold: no checkpoint in " + output + " to restart from (--save-every N writes them)");
                return Main.FAILED;
            }
        }
    }

    /** The arguments with --resume OUTPUT instead of a new run's. */
    static List<String> resumeArgs(List<String> args, Path output) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("--resume")) {
                i++;
                continue;
            }
            if (a.startsWith("--resume=")) continue;
            out.add(a);
        }
        out.addAll(List.of("--resume", output.toString()));
        return out;
    }

    private static int runUnderMpirun(DataParallelOptions dp, List<String> args) throws IOException, InterruptedException {
        String mpirun = MpiCommunicator.mpirun();
        if (mpirun == null) {
            throw new IllegalArgumentException("--nproc-per-node " + dp.nprocPerNode + " --device cpu starts the ranks through mpirun, which is"
                    + " not on the PATH: install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin)");
        }
        List<String> cmd = dp.mpirunCommand(mpirun);
        cmd.addAll(DataParallelOptions.javaCommand(Math.max(1, Runtime.getRuntime().availableProcessors() / dp.nprocPerNode)));
        cmd.addAll(args);
        return supervise(List.of(new ProcessBuilder(cmd).inheritIO().start()));
    }

    private static int runProcesses(DataParallelOptions dp, List<String> args) throws IOException, InterruptedException {
        List<Process> ranks = new ArrayList<>();
        String addr = dp.masterAddr != null ? dp.masterAddr : System.getenv().getOrDefault("MASTER_ADDR", "127.0.0.1");
        String port = String.valueOf(dp.masterPort != null ? dp.masterPort
                : Integer.parseInt(System.getenv().getOrDefault("MASTER_PORT", String.valueOf(DataParallelOptions.DEFAULT_PORT))));
        try {
            for (int local = 0; local < dp.nprocPerNode; local++) {
                List<String> cmd = DataParallelOptions.javaCommand(0);
                cmd.addAll(args);
                ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
                pb.environment().put("RANK", String.valueOf(dp.nodeRank * dp.nprocPerNode + local));
                pb.environment().put("WORLD_SIZE", String.valueOf(dp.nnodes * dp.nprocPerNode));
                pb.environment().put("LOCAL_RANK", String.valueOf(local));
                pb.environment().put("LOCAL_WORLD_SIZE", String.valueOf(dp.nprocPerNode));
                pb.environment().put("MASTER_ADDR", addr);
                pb.environment().put("MASTER_PORT", port);
                ranks.add(pb.start());
            }
        } catch (IOException e) {
            end(ranks, new LinkedHashSet<>());
            throw e;
        }
        return supervise(ranks);
    }

    /**
     * Waits for the processes: 0 when all end with 0; at the first that fails, the others are ended
     * and its exit code returned. Their children (mpirun's ranks) are watched too: the launcher
     * returns once every one has gone. A launcher that is itself ended (Ctrl-C) ends them too.
     */
    static int supervise(List<Process> procs) throws InterruptedException {
        Set<ProcessHandle> seen = new LinkedHashSet<>();
        Thread hook = new Thread(() -> end(procs, seen));
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            while (true) {
                synchronized (seen) {
                    for (Process p : procs) p.descendants().forEach(seen::add);
                }
                boolean allDone = true;
                for (Process p : procs) {
                    if (p.isAlive()) {
                        allDone = false;
                    } else if (p.exitValue() != 0) {
                        end(procs, seen);
                        return p.exitValue();
                    }
                }
                if (allDone) {
                    end(procs, seen); // nothing should be left; a straggler is not left behind
                    return 0;
                }
                Thread.sleep(100);
            }
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // the JVM is shutting down: the hook runs
            }
        }
    }

    /** SIGTERM to every process and every child seen, SIGKILL after a grace period; returns once all have gone. */
    static void end(List<Process> procs, Set<ProcessHandle> seen) {
        List<ProcessHandle> all = new ArrayList<>();
        synchronized (seen) {
            for (Process p : procs) p.descendants().forEach(seen::add);
            all.addAll(seen);
        }
        for (Process p : procs) all.add(p.toHandle());
        for (ProcessHandle h : all) h.destroy();
        long deadline = System.currentTimeMillis() + GRACE_MS;
        try {
            for (ProcessHandle h : all) {
                while (h.isAlive() && System.currentTimeMillis() < deadline) Thread.sleep(20);
                if (h.isAlive()) h.destroyForcibly();
            }
            for (Process p : procs) p.waitFor(GRACE_MS, TimeUnit.MILLISECONDS); // reaps them
            for (ProcessHandle h : all) {
                long until = System.currentTimeMillis() + GRACE_MS;
                while (h.isAlive() && System.currentTimeMillis() < until) Thread.sleep(20);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
