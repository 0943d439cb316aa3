package dev.tenfold.tools;

import dev.tenfold.engine.cpu.Parallel;
import java.lang.management.ManagementFactory;
import java.util.concurrent.Callable;
import jdk.incubator.vector.FloatVector;
import picocli.CommandLine.Command;

/** Reports what this machine offers tenfold: the JDK, the CPU's vector width, cores and memory. */
@Command(name = "doctor", description = "Show the JDK, CPU features, cores and memory tenfold will use.")
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
        System.out.println("cuda        not available in this build (the CUDA backend is not part of it yet); the CPU backend is used");
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
