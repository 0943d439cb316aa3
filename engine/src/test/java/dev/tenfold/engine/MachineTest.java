package dev.tenfold.engine;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** What Machine reads from /proc/cpuinfo, on a Linux x86-64 host (every such CPU has SSE2 and names its model). */
class MachineTest {

    @Test
    void readsTheCpuModelAndFlagsOnLinuxX86() {
        String arch = System.getProperty("os.arch");
        assumeTrue(Files.isReadable(Path.of("/proc/cpuinfo")) && (arch.equals("amd64") || arch.equals("x86_64")),
                "needs Linux on x86-64");
        assertTrue(Machine.cpuFlags().contains("sse2"), Machine.cpuFlags().toString());
        assertFalse(Machine.cpuFlags().contains(""));
        assertNotEquals(arch, Machine.cpuModel()); // the model name, not the fallback
        assertFalse(Machine.cpuModel().isBlank());
    }
}
