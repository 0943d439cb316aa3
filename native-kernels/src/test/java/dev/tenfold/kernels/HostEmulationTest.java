package dev.tenfold.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Executes the CUDA kernels without a GPU: src/test/emulation/run.sh compiles the family files
 * with g++ against a host emulation of CUDA (threads as fibers, __syncthreads and warp shuffles as
 * barriers) and checks every kernel against double references on awkward sizes and unaligned
 * views. Skips, saying why, where g++ or the CUDA headers are missing.
 */
class HostEmulationTest {

    @Test
    void everyKernelFamilyMatchesItsReferenceOnTheHost() throws IOException, InterruptedException {
        Path script = Path.of("src/test/emulation/run.sh");
        Assumptions.assumeTrue(Files.isRegularFile(script), "run from the native-kernels folder (Maven does)");
        Process p = new ProcessBuilder("bash", script.toString(), "target/emulation").redirectErrorStream(true).start();
        String out;
        try (var in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "host emulation did not finish in 10 minutes:\n" + out);
        System.out.print(out);
        Assumptions.assumeTrue(p.exitValue() != 77, () -> "host emulation " + out.strip());
        assertEquals(0, p.exitValue(), "host emulation of the kernels failed:\n" + out);
    }
}
