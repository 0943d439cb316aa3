package dev.tenfold.tools;

import dev.tenfold.engine.Device;
import dev.tenfold.engine.cpu.Parallel;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.cuda.CudaKernels;
import dev.tenfold.engine.cuda.CudaProbe;
import dev.tenfold.engine.cuda.CudaUnavailableException;
import dev.tenfold.engine.cuda.KernelSelfCheck;
import java.util.List;
import java.util.concurrent.Callable;
import jdk.incubator.vector.FloatVector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Reports what this machine offers tenfold: the JDK, the CPU's vector width, cores, memory and CUDA (driver,
 * GPUs, cuBLAS, NCCL, this build's kernels). With a GPU it runs every kernel once against the CPU reference
 * and prints a pass/fail table row by row (exit 1 if one fails; after a sticky CUDA error the rest are not run);
 * without one it says so and exits 0, or 1 where TENFOLD_REQUIRE_GPU=1. A GPU that does not open is one line
 * and exit 1.
 */
@Command(name = "doctor", mixinStandardHelpOptions = true, description = {
        "Show the JDK, CPU features, cores, memory and the CUDA driver, GPUs, cuBLAS and NCCL found;",
        "with a GPU, check every CUDA kernel against the CPU reference on small random inputs."})
final class DoctorCommand implements Callable<Integer> {

    @Option(names = "--device", paramLabel = "cuda[:N]", defaultValue = "cuda:0", description = "The GPU to self-check (default cuda:0).")
    String device;

    @Option(names = "--no-self-check", description = "Only report what is found; run no kernel.")
    boolean noSelfCheck;

    @Override
    public Integer call() {
        // the device is checked before anything is probed: a bad one is refused on every machine, GPU or not
        Device d;
        try {
            d = Device.parse(device);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--device: " + e.getMessage());
        }
        if (d.isCpu()) throw new Flags.BadFlag("--device: doctor self-checks a GPU (cuda or cuda:N), not cpu");
        Runtime rt = Runtime.getRuntime();
        System.out.println("java        " + Runtime.version() + " (" + System.getProperty("java.vm.vendor") + ", "
                + System.getProperty("java.home") + ")");
        System.out.println("cpu         " + dev.tenfold.engine.Machine.cpuModel() + ", " + rt.availableProcessors() + " cores visible, "
                + Parallel.threads() + " worker threads");
        System.out.println("vector api  " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit f32 vectors ("
                + FloatVector.SPECIES_PREFERRED.length() + " lanes)");
        long physical = dev.tenfold.engine.Machine.physicalMemory(), available = dev.tenfold.engine.Machine.availableMemory();
        System.out.println("memory      heap max " + gib(rt.maxMemory())
                + (physical > 0 ? ", physical " + gib(physical) : "") + (available > 0 ? ", available " + gib(available) : ""));
        CudaProbe.Report cuda = CudaProbe.probe();
        System.out.println("cuda driver " + (cuda.driver() != null ? cuda.driver() : cuda.driverProblem()));
        for (CudaProbe.Gpu g : cuda.gpus()) {
            System.out.printf("gpu %d       %s, %s, compute capability %d.%d%n", g.index(), g.name(), gib(g.totalBytes()), g.major(), g.minor());
        }
        System.out.println("cublas      " + (cuda.cublas() != null ? cuda.cublas() : cuda.cublasProblem()));
        System.out.println("nccl        " + (cuda.nccl() != null ? cuda.nccl() : cuda.ncclProblem()));
        String kernels = kernels();
        System.out.println("kernels     " + kernels);
        boolean required = CudaBackend.gpuRequired();
        String requiredNote = required ? " (" + CudaBackend.REQUIRE_GPU_ENV + "=1: a GPU is required)" : "";
        if (!cuda.hasGpu()) {
            System.out.println("backend     cpu: no GPU here, so no kernel was run; every command runs on the CPU (--device cpu)" + requiredNote);
            return required ? 1 : 0;
        }
        CudaBackend gpu;
        try {
            gpu = CudaBackend.open(d.index());
        } catch (CudaUnavailableException e) {
            System.out.println("backend     cpu: " + d + " cannot be used: " + e.getMessage() + requiredNote);
            return required ? 1 : 0;
        } catch (RuntimeException e) { // the GPU itself refused: never a skip
            System.out.println("backend     " + d + " FAILED to open: " + e.getMessage());
            return 1;
        }
        System.out.println("backend     " + d + " ready: " + gpu.gpuName() + ", sm_" + gpu.computeCapability().replace(".", "") + ", "
                + gpu.multiprocessors() + " SMs, cuBLAS " + gpu.cublasVersion());
        if (noSelfCheck) return 0;
        System.out.println();
        System.out.println("self-check  every kernel on " + d + " against the CPU reference, small random inputs, outputs poisoned:");
        System.out.print(KernelSelfCheck.header());
        // each row's op and kernels first, its result when done: a kernel that hangs is the last line printed
        List<KernelSelfCheck.Result> results = KernelSelfCheck.run(gpu, KernelSelfCheck.Sizes.QUICK, 42, new KernelSelfCheck.Listener() {
            private boolean started;

            @Override public void starting(String op, String kernels) {
                System.out.print(KernelSelfCheck.rowStart(op, kernels));
                System.out.flush();
                started = true;
            }

            @Override public void finished(KernelSelfCheck.Result r) {
                if (!started) System.out.print(KernelSelfCheck.rowStart(r.op(), r.kernels()));
                System.out.print(KernelSelfCheck.rowEnd(r));
                System.out.flush();
                started = false;
            }
        });
        long failed = results.stream().filter(r -> r.ran() && !r.passed()).count(), notRun = results.stream().filter(r -> !r.ran()).count();
        System.out.println(failed == 0 ? "result      all " + results.size() + " checks passed"
                : "result      " + failed + " of " + results.size() + " checks FAILED" + (notRun > 0 ? ", " + notRun + " not run" : ""));
        KernelSelfCheck.firstFailure(results).ifPresent(r ->
                System.out.println("first fail  " + r.op() + " (" + r.kernels() + "): " + r.failure()));
        return failed == 0 ? 0 : 1;
    }

    /** Whether this build carries the kernels' fatbin, and its size. */
    private static String kernels() {
        try {
            byte[] fatbin = CudaKernels.readFatbin(DoctorCommand.class.getClassLoader());
            return CudaKernels.RESOURCE + " (" + fatbin.length / 1024 + " KiB) on the classpath";
        } catch (CudaUnavailableException e) {
            return e.getMessage();
        }
    }

    private static String gib(long bytes) { return String.format("%.1f GiB", bytes / (1024.0 * 1024 * 1024)); }
}
