package dev.tenfold.engine.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Run by {@link FakeCudaTest}, one scenario per child JVM, with one of fake_cuda.c's fault switches set: what the
 * backend and the self-check do when the GPU side breaks. Prints its problems and exits 1, or exits 0.
 */
final class FakeCudaScenarios {
    private static final List<String> problems = new ArrayList<>();

    public static void main(String[] args) {
        switch (args[0]) {
            case "open-fails" -> openFails();
            case "old-driver" -> oldDriver();
            case "sticky-error" -> stickyError();
            case "atomic-attention" -> atomicAttention();
            default -> throw new IllegalArgumentException("no scenario " + args[0]);
        }
        problems.forEach(p -> System.out.println("PROBLEM: " + p));
        System.exit(problems.isEmpty() ? 0 : 1);
    }

    /** FAKE_CUDA_MODULE_LOAD_ERROR=209: the open fails once, gives the context back, and is not retried. */
    private static void openFails() {
        RuntimeException first = openError(), second = openError();
        expect(first instanceof CudaException e && e.status() == 209 && e.call().equals("cuModuleLoadData")
                && e.getMessage().contains("CUDA_ERROR_NO_BINARY_FOR_GPU"), "the first open's error: " + first);
        expect(second == first, "the second open throws the first one's failure without retrying: " + second);
        expect(fakeCounter("fake_cuda_module_loads") == 1, "modules loaded: " + fakeCounter("fake_cuda_module_loads"));
        expect(fakeCounter("fake_cuda_context_refs") == 0, "the failed open keeps " + fakeCounter("fake_cuda_context_refs")
                + " references to the primary context");
    }

    /** FAKE_CUDA_DRIVER_VERSION=12080: refused in one line naming the driver found and the one needed, before any GPU work. */
    private static void oldDriver() {
        RuntimeException e = openError();
        expect(e instanceof CudaUnavailableException && e.getMessage().equals("the NVIDIA driver supports CUDA 12.8 (cuDriverGetVersion"
                + " 12080); tenfold's kernels are built with CUDA 13 and need a driver for CUDA 13.0 or newer (580.65.06 or newer on"
                + " Linux)"), "the old driver's message: " + e);
        expect(fakeCounter("fake_cuda_context_refs") == 0 && fakeCounter("fake_cuda_module_loads") == 0, "the GPU was touched");
    }

    /**
     * FAKE_CUDA_FAULT_KERNEL=tf_softmax_fwd_f32: the self-check names softmax as the failure (a sticky error), runs
     * nothing after it and reports those cases as not run, not as failures.
     */
    private static void stickyError() {
        CudaBackend gpu = CudaBackend.open(0);
        List<KernelSelfCheck.Result> results = KernelSelfCheck.run(gpu, KernelSelfCheck.Sizes.QUICK, 3);
        System.out.print(KernelSelfCheck.table(results));
        int softmax = KernelSelfCheck.cases().indexOf("softmax");
        expect(softmax > 0, "the cases: " + KernelSelfCheck.cases());
        for (int i = 0; i < results.size(); i++) {
            KernelSelfCheck.Result r = results.get(i);
            if (i < softmax) expect(r.passed(), "before the fault: " + r);
            if (i == softmax) {
                expect(r.outcome() == KernelSelfCheck.Outcome.STICKY_ERROR && r.failure().contains("cuLaunchKernel(tf_softmax_fwd_f32")
                        && r.failure().contains("CUDA_ERROR_ILLEGAL_ADDRESS"), "the faulting case: " + r);
            }
            if (i > softmax) expect(r.outcome() == KernelSelfCheck.Outcome.NOT_RUN && !r.ran(), "after the fault: " + r);
        }
        expect(KernelSelfCheck.firstFailure(results).map(KernelSelfCheck.Result::op).orElse("").equals("softmax"), "first failure");
        expect(KernelSelfCheck.table(results).contains("not run (the sticky CUDA error in softmax made the GPU unusable)"), "table");
    }

    /**
     * TENFOLD_DETERMINISTIC_ATTENTION=0 and FAKE_CUDA_FLASH_ORDER_TIMEOUT=1: the backend opens with the atomic
     * attention backward, which never waits, so the fault that stops the ordered one does not touch it.
     */
    private static void atomicAttention() {
        CudaBackend gpu = CudaBackend.open(0);
        expect(!gpu.isDeterministic(), "TENFOLD_DETERMINISTIC_ATTENTION=0 leaves the backend deterministic");
        try (var q = gpu.toDevice(dev.tenfold.engine.Tensor.of(new float[2 * 64], 1, 2, 1, 64));
             var out = gpu.allocate(dev.tenfold.engine.DType.F32, 1, 2, 1, 64); var lse = gpu.allocate(dev.tenfold.engine.DType.F32, 1, 1, 2);
             var dq = gpu.allocate(dev.tenfold.engine.DType.F32, 1, 2, 1, 64); var dk = gpu.allocate(dev.tenfold.engine.DType.F32, 1, 2, 1, 64);
             var dv = gpu.allocate(dev.tenfold.engine.DType.F32, 1, 2, 1, 64)) {
            gpu.attention(q, q, q, 0.125f, out, lse);
            gpu.attentionBackward(q, q, q, q, out, lse, 0.125f, dq, dk, dv);
        }
    }

    private static RuntimeException openError() {
        try {
            CudaBackend.open(0);
            expect(false, "cuda:0 opened");
            return null;
        } catch (RuntimeException e) {
            return e;
        }
    }

    /** One of the fake's counters (it is the library the driver binding loaded: same file, same globals). */
    private static int fakeCounter(String symbol) {
        Path lib = Path.of(System.getenv(NativeLibrary.SEARCH_PATH_ENV), "libcuda.so.1");
        var f = SymbolLookup.libraryLookup(lib, Arena.global()).find(symbol).orElseThrow();
        try {
            return (int) Linker.nativeLinker().downcallHandle(f, FunctionDescriptor.of(ValueLayout.JAVA_INT)).invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void expect(boolean ok, String what) {
        if (!ok) problems.add(what);
    }
}
