package dev.tenfold.engine;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;

/** What the host is, for reports (doctor, benchmark results) and for the memory checks made before large allocations. */
public final class Machine {
    private Machine() {}

    /** The CPU's model name from /proc/cpuinfo, or the architecture elsewhere. */
    public static String cpuModel() {
        String model = cpuinfo("model name");
        return model != null ? model : System.getProperty("os.arch");
    }

    /** The CPU's feature flags from /proc/cpuinfo ("avx2", "avx512f", ...); empty where there is none (not Linux). */
    public static Set<String> cpuFlags() {
        String flags = cpuinfo("flags");
        return flags == null || flags.isEmpty() ? Set.of() : Set.copyOf(Arrays.asList(flags.split("\\s+")));
    }

    /** The value of the first /proc/cpuinfo line that starts with key, or null. */
    private static String cpuinfo(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith(key) && line.indexOf(':') > 0) return line.substring(line.indexOf(':') + 1).trim();
            }
        } catch (IOException e) {
            // not Linux: fall through
        }
        return null;
    }

    /**
     * The host's memory in bytes (a container's limit inside one), or -1 where the JVM cannot tell. Read once:
     * the JVM reads the container's files on every call (about 1 ms), and a training step asks every time.
     */
    public static long physicalMemory() { return PhysicalMemory.BYTES; }

    private static final class PhysicalMemory {
        static final long BYTES = ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os
                ? os.getTotalMemorySize() : -1;
    }

    /**
     * Memory that a new allocation can get without swapping or the out-of-memory killer: Linux's
     * MemAvailable (free memory plus the page cache it can drop), within a container's limit; the
     * free memory where there is no /proc/meminfo; -1 where the JVM cannot tell.
     */
    public static long availableMemory() {
        long free = -1, total = -1;
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            free = os.getFreeMemorySize();   // container-aware, but without the page cache outside one
            total = os.getTotalMemorySize(); // container-aware
        }
        long memAvailable = -1, memTotal = -1;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) memAvailable = kib(line);
                if (line.startsWith("MemTotal:")) memTotal = kib(line);
            }
        } catch (IOException | RuntimeException e) {
            return free;
        }
        if (memAvailable < 0) return free;
        // a container limit below the host's memory: what is left under the limit counts too
        if (total > 0 && memTotal > 0 && total < memTotal && free >= 0) return Math.min(memAvailable, free);
        return memAvailable;
    }

    /** "MemAvailable:   21873144 kB" in bytes. */
    private static long kib(String line) {
        String[] parts = line.trim().split("\\s+");
        return Long.parseLong(parts[1]) * 1024;
    }
}
