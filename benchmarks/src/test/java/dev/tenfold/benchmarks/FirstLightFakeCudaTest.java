package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.cuda.KernelSelfCheck;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.Attributes;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `.gpu/run.sh first-light` (tools/gpu-run.sh) on the fake CUDA stack (engine/src/test/c/fake_cuda.c), in a bundle
 * laid out as tools/bundle.sh lays it out (the runtime, lib/, tests/engine, run.sh), with a stand-in nvidia-smi,
 * ldconfig and python3 ("with torch", whose NVIDIA wheels hold the fake libraries) first on PATH. It must pass on a
 * working stack, and fail, saying why, within its limits: a kernel that hangs, a missing cuBLAS (no step may pass
 * or skip without a backend), a driver older than CUDA 13's. The GPU tests run here are NcclGpuTest only and the
 * smoke report its copy section (TEST_ARGS, SMOKE_ARGS), to stay quick; FakeCudaTest and GpuReportFakeCudaTest run
 * the rest on the fake stack.
 */
class FirstLightFakeCudaTest {
    @TempDir static Path dir;
    private static Path bundle, fakeLibs, bin;

    @BeforeAll
    static void layOutABundleAndAFakeMachine() throws Exception {
        String cc = GpuReportFakeCudaTest.compiler();
        Assumptions.assumeTrue(cc != null, "no C compiler (cc or gcc) here to build the fake CUDA stack");
        fakeLibs = Files.createDirectories(dir.resolve("fakelib"));
        Path lib = fakeLibs.resolve("libfakecuda.so");
        run(new ProcessBuilder(cc, "-shared", "-fPIC", "-O1", "-o", lib.toString(), GpuReportFakeCudaTest.fakeSource().toString(), "-lm"),
                120);
        for (String soname : new String[] {"libcuda.so.1", "libcublas.so.13", "libnccl.so.2"}) {
            Files.createSymbolicLink(fakeLibs.resolve(soname), lib);
        }
        // the NVIDIA wheels of the fake python: all three libraries, or all but cuBLAS
        Path wheels = Files.createDirectories(dir.resolve("wheels")), noCublas = Files.createDirectories(dir.resolve("wheels-no-cublas"));
        for (String soname : new String[] {"libcuda.so.1", "libcublas.so.13", "libnccl.so.2"}) {
            Files.createSymbolicLink(wheels.resolve(soname), lib);
            if (!soname.startsWith("libcublas")) Files.createSymbolicLink(noCublas.resolve(soname), lib);
        }
        Files.createDirectories(dir.resolve("nothing-here")); // the bounded search's only root

        bundle = Files.createDirectories(dir.resolve("bundle"));
        Files.createSymbolicLink(bundle.resolve("jre"), Path.of(System.getProperty("java.home")));
        Files.copy(repoFile("tools/gpu-run.sh"), bundle.resolve("run.sh"));
        Files.writeString(bundle.resolve("BUILD"), "commit fake-stack test\n");
        Path tests = Files.createDirectories(bundle.resolve("tests"));
        Path engineTests = repoFile("engine/target/test-classes");
        assertTrue(Files.isDirectory(engineTests.resolve("dev/tenfold/engine/testing")), "engine's test classes are not built: " + engineTests);
        Files.createSymbolicLink(tests.resolve("engine"), engineTests);
        // lib/: one jar whose manifest points at this test's class path (a stand-in fatbin first: the fake accepts any)
        Path fatbin = dir.resolve("fatbin").resolve("dev/tenfold/kernels/tenfold.fatbin");
        Files.createDirectories(fatbin.getParent());
        Files.writeString(fatbin, "not a real fatbin: the fake driver accepts any image");
        List<String> classPath = new ArrayList<>(List.of(dir.resolve("fatbin").toUri().toString()));
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (!entry.isBlank()) classPath.add(Path.of(entry).toAbsolutePath().toUri().toString());
        }
        Manifest manifest = new Manifest();
        manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        manifest.getMainAttributes().put(Attributes.Name.CLASS_PATH, String.join(" ", classPath));
        Files.createDirectories(bundle.resolve("lib"));
        try (OutputStream out = Files.newOutputStream(bundle.resolve("lib/classpath.jar")); JarOutputStream jar = new JarOutputStream(out, manifest)) {
            jar.flush();
        }

        bin = Files.createDirectories(dir.resolve("bin"));
        script("nvidia-smi", """
                #!/bin/sh
                # one GPU; the driver and its CUDA version from FAKE_NVIDIA_DRIVER / FAKE_NVIDIA_CUDA
                driver="${FAKE_NVIDIA_DRIVER:-580.95.05}"
                case "$*" in
                  *--query-gpu=*noheader*) echo "Fake GPU 0, $driver" ;;
                  *--query-gpu=*) echo "name, driver_version"; echo "Fake GPU 0, $driver" ;;
                  *) echo "| NVIDIA-SMI $driver   Driver Version: $driver   CUDA Version: ${FAKE_NVIDIA_CUDA:-13.0} |" ;;
                esac
                """);
        script("ldconfig", "#!/bin/sh\n# the system loader knows no CUDA library\nexit 0\n");
        script("python3", """
                #!/bin/sh
                # a python "with torch": its NVIDIA wheels hold the files of $FAKE_WHEELS
                case "$1" in -c) exit 0 ;; esac
                cat >/dev/null
                for f in "$FAKE_WHEELS"/*; do [ -e "$f" ] && echo "$f"; done
                exit 0
                """);
    }

    @Test
    void firstLightPassesOnAWorkingStackFindingTheLibrariesInTheWheels() throws Exception {
        Run r = firstLight(Map.of());
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("libs: " + bin.resolve("python3") + " has torch; its NVIDIA wheels hold: "), r.out());
        assertRow(r, "driver", "passed", "1", "1", "0", "0", "-");
        assertRow(r, "libs", "passed", "1", "1", "0", "0", "-");
        String cases = String.valueOf(KernelSelfCheck.cases().size());
        assertRow(r, "doctor", "passed", cases, cases, "0", "0", "-");
        assertRow(r, "gpu-tests", "passed", "2", "2", "0", "0", "-"); // NcclGpuTest's two tests
        assertRow(r, "smoke", "passed", null, null, "0", "0", "-");
        assertTrue(r.out().contains("first light: Fake GPU 0, driver 580.95.05, CUDA 13.0; commit fake-stack test; logs in "), r.out());
        assertTrue(r.out().contains("first light: PASSED in "), r.out());
        assertEquals(r.summary(), Files.readString(r.logs().resolve("summary.txt")));
    }

    @Test
    void aHungKernelIsStoppedWithinTheRunsBudgetAndNamed() throws Exception {
        // the first kernel of the self-check never returns; the whole run may take 15 s
        Run r = firstLight(Map.of("FAKE_CUDA_HANG_KERNEL", "tf_add_f32", "FIRST_LIGHT_BUDGET", "15"));
        assertNotEquals(0, r.code(), r.out());
        assertRow(r, "doctor", "TIMED OUT", null, null, null, null, "hung in add (tf_add_f32)");
        assertTrue(r.summary().contains("\ngpu-tests  not run ") && r.summary().contains("\nsmoke      not run "), r.summary());
        assertTrue(r.summary().contains("not run: doctor hung"), r.summary());
        Matcher total = Pattern.compile("first light: FAILED in (\\d+) s \\(doctor TIMED OUT: hung in add").matcher(r.summary());
        assertTrue(total.find(), r.summary());
        assertTrue(Integer.parseInt(total.group(1)) <= 15 + 5, "the run took longer than its budget: " + r.summary());
    }

    @Test
    void withoutCublasNoStepPassesOrSkipsAndEachSaysWhy() throws Exception {
        Run r = firstLight(Map.of("FAKE_WHEELS", dir.resolve("wheels-no-cublas").toString()));
        assertNotEquals(0, r.code(), r.out());
        assertRow(r, "libs", "FAILED", null, null, null, null, "cuBLAS or NCCL not found");
        assertTrue(r.out().contains("(cuBLAS NOT FOUND, NCCL found)"), r.out());
        assertRow(r, "doctor", "FAILED", null, null, null, null,
                "backend     cpu: cuda:0 cannot be used: cuBLAS not found (libcublas.so.13: cannot open shared object file: No such file");
        // the GPU test fails (not skipped) for the missing backend
        assertRow(r, "gpu-tests", "FAILED", "2", "0", "2", "0", "NcclGpuTest > aOneRankCommunicatorAllReducesAndBroadcastsDeviceTensors():"
                + " AssertionFailedError: TENFOLD_REQUIRE_GPU=1 and no CUDA for this test (cuda:0): ");
        assertTrue(r.out().contains("AssertionFailedError: TENFOLD_REQUIRE_GPU=1 and no CUDA for this test (cuda:0): cuBLAS not found"
                + " (libcublas.so.13: cannot open shared object file: No such file or directory;"), r.out());
        assertRow(r, "smoke", "FAILED", null, null, null, null, "gpu-report: FAILED (TENFOLD_REQUIRE_GPU=1), no usable GPU: cuBLAS not found");
        assertTrue(r.summary().contains("first light: FAILED in "), r.summary());
    }

    @Test
    void aDriverOlderThanCuda13IsRefusedInOneLineBeforeAnythingRuns() throws Exception {
        Run r = firstLight(Map.of("FAKE_NVIDIA_DRIVER", "570.124.06", "FAKE_NVIDIA_CUDA", "12.8"));
        assertNotEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("run.sh: driver: NVIDIA driver 570.124.06 (CUDA 12.8) is too old: tenfold's kernels are built with"
                + " CUDA 13 and need driver 580.65.06 or newer\n"), r.out());
        assertRow(r, "driver", "FAILED", "1", "0", "1", "0", "driver 570.124.06 < 580.65.06 (CUDA 13)");
        for (String step : new String[] {"libs", "doctor", "gpu-tests", "smoke"}) {
            assertTrue(r.summary().contains("\n" + String.format("%-10s %-10s", step, "not run")), r.summary());
        }
        assertFalse(Files.exists(r.logs().resolve("doctor.txt")), "doctor ran");
    }

    @Test
    void withoutAStepNothingRuns() throws Exception {
        ProcessBuilder pb = new ProcessBuilder("bash", bundle.resolve("run.sh").toString());
        pb.environment().put("OUT", dir.resolve("usage-logs").toString());
        String out = run(pb, 60, 2);
        assertTrue(out.contains("./run.sh first-light        RUN THIS FIRST on a GPU machine. At most 8 minutes"), out);
    }

    @Test
    void doctorNamesTheKernelOfAStickyErrorAndRunsNothingAfterIt() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(bundle.resolve("jre/bin/java").toString(), "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-cp", bundle.resolve("lib") + "/*", "dev.tenfold.tools.Main", "doctor");
        clean(pb.environment());
        pb.environment().put("TENFOLD_CUDA_LIBS", fakeLibs.toString());
        pb.environment().put("FAKE_CUDA_FAULT_KERNEL", "tf_add_f32");
        String out = run(pb, 300, 1);
        int cases = KernelSelfCheck.cases().size();
        assertTrue(Pattern.compile("\nadd +tf_add_f32 +0\\.000e\\+00 +Infinity  FAIL \\(sticky CUDA error, the GPU is unusable from here on:"
                + " cuLaunchKernel\\(tf_add_f32, ").matcher(out).find(), out);
        assertTrue(Pattern.compile("\nmul +tf_mul_f32 +- +-  not run \\(the sticky CUDA error in add made the GPU unusable\\)\n").matcher(out).find(), out);
        assertTrue(out.contains("\nresult      1 of " + cases + " checks FAILED, " + (cases - 1) + " not run\n"), out);
        assertTrue(out.contains("\nfirst fail  add (tf_add_f32): sticky CUDA error, the GPU is unusable from here on: cuLaunchKernel(tf_add_f32,"),
                out);
    }

    // ------------------------------------------------------------------ helpers

    @Test
    void variantsTimesTheBundlesKernelsAndEachVariantAlternately() throws Exception {
        Path none = Files.createTempDirectory(dir, "no-variants");
        ProcessBuilder bare = step("variants", none, Map.of());
        Process p0 = bare.redirectErrorStream(true).start();
        String out0 = new String(p0.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p0.waitFor(120, TimeUnit.SECONDS));
        assertNotEquals(0, p0.exitValue(), out0);
        assertTrue(out0.contains("this bundle has no kernel variants (./tenfold bundle --kernel-variant NAME=REF)"), out0);

        // a variant as bundle.sh lays it out: its fatbin gzipped (the fake driver accepts any image)
        Path kernels = Files.createDirectories(bundle.resolve("variants/other/dev/tenfold/kernels"));
        try (OutputStream gz = new java.util.zip.GZIPOutputStream(Files.newOutputStream(kernels.resolve("tenfold.fatbin.gz")))) {
            gz.write("another fake image".getBytes(StandardCharsets.UTF_8));
        }
        Path logs = Files.createTempDirectory(dir, "variants");
        Process p = step("variants", logs, Map.of("VARIANT_SECTIONS", "copy", "VARIANT_TESTS", ".*NcclGpuTest")).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "run.sh did not end:\n" + out);
        assertEquals(0, p.exitValue(), out);
        assertEquals("another fake image", Files.readString(kernels.resolve("tenfold.fatbin")));
        for (String v : new String[] {"current", "other"}) {
            assertTrue(out.contains("variants: tests of " + v + ": gpu-tests: 2 run, 2 passed, 0 failed"), out);
            for (int round = 1; round <= 2; round++) assertTrue(Files.exists(logs.resolve("variants/" + v + "-" + round + "/gpu-report.json")), v + " " + round);
        }
        // the rounds alternate, the second reversed: current, other, other, current
        assertTrue(out.indexOf("variants: current round 1 done") < out.indexOf("variants: other round 1 done")
                && out.indexOf("variants: other round 1 done") < out.indexOf("variants: other round 2 done")
                && out.indexOf("variants: other round 2 done") < out.indexOf("variants: current round 2 done"), out);
        String md = Files.readString(logs.resolve(GpuVariants.MD));
        assertTrue(md.startsWith("| id | shape | current ms | other ms | current / other |"), md);
        assertTrue(md.contains("| copy_d2d | 1 GiB | "), md);
    }

    @Test
    void aWindowRunsFirstLightThenOnlyWhatFitsAndNothingAfterAFailedFirstLight() throws Exception {
        Path logs = Files.createTempDirectory(dir, "window");
        Map<String, String> quick = Map.of("TEST_ARGS", "--include .*NcclGpuTest", "SMOKE_ARGS", "--sections copy");
        ProcessBuilder pb = step("window", logs, quick);
        pb.command().add("32"); // first light takes a few seconds of it: no later step gets its 30 s
        Process p = pb.redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("first light: PASSED"), out);
        for (String s : new String[] {"report", "peers", "compare", "tests", "memory"}) assertTrue(out.contains("window: " + s + " not run ("), out);

        Map<String, String> oldDriver = new java.util.HashMap<>(quick);
        oldDriver.putAll(Map.of("FAKE_NVIDIA_DRIVER", "570.124.06", "FAKE_NVIDIA_CUDA", "12.8"));
        Process q = step("window", Files.createTempDirectory(dir, "window-old"), oldDriver).redirectErrorStream(true).start();
        String refused = new String(q.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(q.waitFor(120, TimeUnit.SECONDS), refused);
        assertEquals(1, q.exitValue(), refused);
        assertTrue(refused.contains("window: first light did not pass; nothing longer runs"), refused);
        assertFalse(refused.contains("window: step "), refused);
    }

    /** `run.sh STEP` on the fake machine, logging into {@code logs}. */
    private static ProcessBuilder step(String name, Path logs, Map<String, String> env) {
        ProcessBuilder pb = new ProcessBuilder("bash", bundle.resolve("run.sh").toString(), name);
        Map<String, String> e = pb.environment();
        clean(e);
        e.put("PATH", bin + File.pathSeparator + e.getOrDefault("PATH", "/usr/bin:/bin"));
        e.put("OUT", logs.toString());
        e.put("FAKE_WHEELS", dir.resolve("wheels").toString());
        e.put("LIB_SEARCH_ROOTS", dir.resolve("nothing-here").toString());
        e.putAll(env);
        return pb;
    }

    private record Run(int code, String out, String summary, Path logs) {}

    /** `run.sh first-light` with the fake machine's PATH and {@code env} on top; its summary is what follows "first light: <gpu>". */
    private static Run firstLight(Map<String, String> env) throws Exception {
        Path logs = Files.createTempDirectory(dir, "logs");
        Map<String, String> e = new java.util.HashMap<>(Map.of("TEST_ARGS", "--include .*NcclGpuTest", "SMOKE_ARGS", "--sections copy"));
        e.putAll(env);
        Process p = step("first-light", logs, e).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "run.sh did not end:\n" + out);
        int at = out.lastIndexOf("first light: ");
        at = out.lastIndexOf("first light: ", at - 1);
        assertTrue(at >= 0, "no summary:\n" + out);
        return new Run(p.exitValue(), out, out.substring(at), logs);
    }

    /** A variable of this JVM's environment must not leak into the fake machine's. */
    private static void clean(Map<String, String> env) {
        env.keySet().removeIf(k -> k.startsWith("TENFOLD_") || k.startsWith("FAKE_") || k.equals("CUDA_LAUNCH_BLOCKING"));
    }

    /** The summary row of a step: each given column must match (null: any); the first failure must start with {@code first}. */
    private static void assertRow(Run r, String step, String result, String ran, String passed, String failed, String skipped, String first) {
        Matcher m = Pattern.compile("\n" + Pattern.quote(step) + " +(passed|FAILED|TIMED OUT|not run) +(\\S+) +(\\S+) +(\\S+) +(\\S+) +(\\S+)  (.*)\n")
                .matcher(r.summary());
        assertTrue(m.find(), "no row for " + step + ":\n" + r.out());
        String[] expected = {result, ran, passed, failed, skipped};
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] != null) assertEquals(expected[i], m.group(i + 1), step + " column " + (i + 1) + ":\n" + r.summary() + "\n" + r.out());
        }
        assertTrue(m.group(7).startsWith(first), step + ": first failure '" + m.group(7) + "' should start with '" + first + "'\n" + r.out());
    }

    private static void script(String name, String text) throws IOException {
        Path p = bin.resolve(name);
        Files.writeString(p, text);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /** A file of the repository, from the benchmarks folder (Maven) or the root. */
    private static Path repoFile(String path) {
        for (Path p : new Path[] {Path.of("..").resolve(path), Path.of(path)}) {
            if (Files.exists(p)) return p.toAbsolutePath().normalize();
        }
        throw new IllegalStateException(path + " not found from " + Path.of("").toAbsolutePath());
    }

    private static String run(ProcessBuilder pb, int seconds) throws IOException, InterruptedException { return run(pb, seconds, 0); }

    private static String run(ProcessBuilder pb, int seconds, int expectedCode) throws IOException, InterruptedException {
        Process p = pb.redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(seconds, TimeUnit.SECONDS), "timed out: " + pb.command());
        assertEquals(expectedCode, p.exitValue(), String.join(" ", pb.command()) + ":\n" + out);
        return out;
    }
}
