package dev.tenfold.tools;

import dev.tenfold.engine.cpu.Parallel;
import dev.tenfold.engine.cuda.CudaProbe;
import java.lang.management.ManagementFactory;
import java.util.concurrent.Callable;
import jdk.incubator.vector.FloatVector;
import picocli.CommandLine.Command;

/** Reports what this machine offers tenfold: the JDK, the CPU's vector width, cores, memory and CUDA. Exits 0 without a GPU. */
@Command(name = "doctor", mixinStandardHelpOptions = true, description = "Show the JDK, CPU features, cores, memory and the CUDA driver, GPUs, cuBLAS and NCCL found.")
final class DoctorCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        Runtime rt = Runtime.getRuntime();
        System.out.println("java        " + Runtime.version() + " (" + System.getProperty("java.vm.vendor") + ", "
                + System.getProperty("java.home") + ")");
        System.out.println("cpu         " + dev.tenfold.engine.Machine.cpuModel() + ", " + rt.availableProcessors() + " cores visible, "
                + Parallel.threads() + " worker threads");
        System.out.println("vector api  " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit f32 vectors ("
                + FloatVector.SPECIES_PREFERRED.length() + " lanes)");
        long physical = physicalMemory();
        System.out.println("memory      heap max " + gib(rt.maxMemory())
                + (physical > 0 ? ", physical " + gib(physical) : ""));
        CudaProbe.Report cuda = CudaProbe.probe();
        System.out.println("cuda driver " + (cuda.driver() != null ? cuda.driver() : cuda.driverProblem()));
        for (CudaProbe.Gpu g : cuda.gpus()) {
            System.out.printf("gpu %d       %s, %s, compute capability %d.%d%n", g.index(), g.name(), gib(g.totalBytes()), g.major(), g.minor());
        }
        System.out.println("cublas      " + (cuda.cublas() != null ? cuda.cublas() : cuda.cublasProblem()));
        System.out.println("nccl        " + (cuda.nccl() != null ? cuda.nccl() : cuda.ncclProblem()));
        System.out.println("backend     cpu (the CUDA kernels are not part of this build yet" + (cuda.hasGpu() ? "; this GPU is unused)" : ")"));
        return 0;
    }

    private static long physicalMemory() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getTotalMemorySize();
        }
        return -1;
    }

    private static String gib(long bytes) { return String.format("%.1f GiB", bytes / (1024.0 * 1024 * 1024)); }
}
