package dev.tenfold.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The deterministic flash-attention backward cannot hang: src/test/cpp/flash_wait_test.cpp runs the backward
 * kernel itself on the warp emulator with its blocks dispatched in reverse order, one at a time (a waiting block
 * then holds the only slot its predecessor needs), and the kernel must end with TF_FLASH_BWD_ERR_WAIT_TIMEOUT in
 * its error word; in launch order and in the non-deterministic mode the word stays 0. Without the bound on the
 * wait the program never ends, and this test fails at its time limit. Skips, saying why, without g++.
 */
class FlashWaitTest {
    private static final Path CPP = Path.of("src/test/cpp");
    private static final List<Path> SOURCES = List.of(CPP.resolve("flash_wait_test.cpp"), CPP.resolve("flash_emu.h"),
            Path.of("src/main/cuda/flash_attention_bwd.cu"), Path.of("src/main/cuda/flash_common.cuh"),
            Path.of("src/main/cuda/tenfold_kernels.h"));

    @Test
    void aBrokenDispatchOrderEndsInTheErrorWordNotAHang() throws IOException, InterruptedException {
        Assumptions.assumeTrue(Files.isRegularFile(SOURCES.getFirst()), "run from the native-kernels folder (Maven does)");
        String cxx = onPath("g++");
        Assumptions.assumeTrue(cxx != null, "no g++ on PATH to build the warp emulator");
        Path include = Path.of(System.getenv().getOrDefault("CUDA_HOME", "/usr/local/cuda"), "include");
        if (!Files.isRegularFile(include.resolve("cuda_bf16.h"))) include = CPP.resolve("stub");
        Path bin = Path.of("target", "flash-wait", "flash_wait_test");
        if (stale(bin)) {
            Files.createDirectories(bin.getParent());
            String out = run(List.of(cxx, "-std=c++17", "-O1", "-Wall", "-Wno-unknown-pragmas", "-I" + include,
                    "-o", bin.toString(), SOURCES.getFirst().toString()), 300);
            System.out.print(out);
        }
        // 1 s at most in launch order plus 0.5 s for the bound: a minute is for a loaded machine, not a hang
        String out = run(List.of(bin.toString()), 60);
        System.out.print(out);
        assertTrue(out.contains("reverse order, one block at a time: error word 1 (TF_FLASH_BWD_ERR_WAIT_TIMEOUT)"), out);
        assertTrue(out.contains("PASSED"), out);
    }

    private static boolean stale(Path bin) throws IOException {
        if (!Files.isExecutable(bin)) return true;
        for (Path s : SOURCES) if (Files.getLastModifiedTime(s).compareTo(Files.getLastModifiedTime(bin)) > 0) return true;
        return false;
    }

    private static String onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(d, tool))) return Path.of(d, tool).toString();
        }
        return null;
    }

    private static String run(List<String> command, int seconds) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        StringBuilder out = new StringBuilder();
        Thread reader = Thread.ofVirtual().start(() -> {
            try (var in = p.getInputStream()) {
                out.append(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                out.append(e);
            }
        });
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            reader.join();
            throw new AssertionError(String.join(" ", command) + " did not end in " + seconds + " s (a hang):\n" + out);
        }
        reader.join();
        assertEquals(0, p.exitValue(), String.join(" ", command) + " failed:\n" + out);
        return out.toString();
    }
}
