package dev.tenfold.tools;

import java.util.Map;
import java.util.Optional;

/**
 * Which rank of a data-parallel run this process is, as its launcher said in the environment:
 * mpirun (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE), torchrun and tenfold's own
 * launcher (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), or Slurm's
 * srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE). The first that is set wins.
 */
record RankEnvironment(String launcher, int rank, int size, int localRank, int localSize, String masterAddr, Integer masterPort) {

    static final String MPIRUN = "mpirun", TORCHRUN = "torchrun", SLURM = "srun";

    /** Whether the ranks form their world through MPI (mpirun's variables). */
    boolean isMpi() { return launcher.equals(MPIRUN); }

    /** The rank this process is, or empty when no launcher's variables are set (one process). */
    static Optional<RankEnvironment> detect(Map<String, String> env) {
        if (env.containsKey("OMPI_COMM_WORLD_RANK")) {
            int size = number(env, "OMPI_COMM_WORLD_SIZE", 1, null);
            int localSize = env.containsKey("OMPI_COMM_WORLD_LOCAL_SIZE") ? number(env, "OMPI_COMM_WORLD_LOCAL_SIZE", 1, size + 1) : size;
            return Optional.of(new RankEnvironment(MPIRUN, number(env, "OMPI_COMM_WORLD_RANK", 0, size), size,
                    env.containsKey("OMPI_COMM_WORLD_LOCAL_RANK") ? number(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0, localSize) : 0, localSize,
                    env.get("MASTER_ADDR"), port(env)));
        }
        if (env.containsKey("RANK") && env.containsKey("WORLD_SIZE")) {
            int size = number(env, "WORLD_SIZE", 1, null);
            int localSize = env.containsKey("LOCAL_WORLD_SIZE") ? number(env, "LOCAL_WORLD_SIZE", 1, size + 1) : size;
            return Optional.of(new RankEnvironment(TORCHRUN, number(env, "RANK", 0, size), size,
                    env.containsKey("LOCAL_RANK") ? number(env, "LOCAL_RANK", 0, localSize) : 0, localSize,
                    env.get("MASTER_ADDR"), port(env)));
        }
        if (env.containsKey("SLURM_PROCID") && env.containsKey("SLURM_NTASKS")) {
            int size = number(env, "SLURM_NTASKS", 1, null);
            int localSize = env.containsKey("SLURM_NTASKS_PER_NODE") ? leadingNumber(env, "SLURM_NTASKS_PER_NODE", size) : size;
            return Optional.of(new RankEnvironment(SLURM, number(env, "SLURM_PROCID", 0, size), size,
                    env.containsKey("SLURM_LOCALID") ? number(env, "SLURM_LOCALID", 0, localSize) : 0, localSize,
                    env.get("MASTER_ADDR"), port(env)));
        }
        return Optional.empty();
    }

    /** An integer variable in [min, below) (below null: no upper bound); one clear line otherwise. */
    private static int number(Map<String, String> env, String name, int min, Integer below) {
        String v = env.get(name);
        int n;
        try {
            n = Integer.parseInt(v == null ? "" : v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("environment variable " + name + "=" + v + " is not a whole number");
        }
        if (n < min || (below != null && n >= below)) {
            throw new IllegalArgumentException("environment variable " + name + "=" + n + " is not in [" + min + ", "
                    + (below == null ? "..." : below) + ")");
        }
        return n;
    }

    /** SLURM_NTASKS_PER_NODE may read "4(x2)": its first number. */
    private static int leadingNumber(Map<String, String> env, String name, int size) {
        String v = env.get(name).replaceAll("[^0-9].*$", "");
        return number(Map.of(name, v), name, 1, size + 1);
    }

    private static Integer port(Map<String, String> env) {
        if (!env.containsKey("MASTER_PORT")) return null;
        return number(env, "MASTER_PORT", 1, 65536);
    }
}
