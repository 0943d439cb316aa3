package dev.tenfold.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What the host is, for reports (doctor, benchmark results). */
public final class Machine {
    private Machine() {}

    /** The CPU's model name from /proc/cpuinfo, or the architecture elsewhere. */
    public static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).trim();
            }
        } catch (IOException e) {
            // not Linux: fall through
        }
        return System.getProperty("os.arch");
    }
}
