package dev.tenfold.engine.cuda;

import dev.tenfold.engine.Backends;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import org.junit.platform.engine.FilterResult;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.PostDiscoveryFilter;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * Run by {@link FakeCudaTest} in a JVM whose TENFOLD_CUDA_LIBS points at the fake CUDA stack
 * (src/test/c/fake_cuda.c): the whole host side — bindings, argument packing, allocator, cuBLAS
 * mapping, per-batch flash launches, chunked loss, NCCL — against the CPU reference. Exit 0 when all is well.
 */
final class FakeCudaMain {
    private static final List<String> problems = new ArrayList<>();

    public static void main(String[] args) {
        CudaBackend gpu = (CudaBackend) Backends.forDevice(Device.cuda(0));
        expect("Fake GPU 0".equals(gpu.gpuName()), "the fake driver is the one loaded: " + gpu.gpuName());
        expect("9.0".equals(gpu.computeCapability()), "compute capability " + gpu.computeCapability());
        expect("13.1.0".equals(gpu.cublasVersion()), "cuBLAS version " + gpu.cublasVersion());
        List<KernelSelfCheck.Result> results = KernelSelfCheck.run(gpu, KernelSelfCheck.Sizes.QUICK, 3);
        System.out.print(KernelSelfCheck.table(results));
        for (KernelSelfCheck.Result r : results) expect(r.passed(), "self-check " + r.op() + ": " + r.failure());

        // a second device does not exist
        try {
            Backends.forDevice(Device.cuda(1));
            expect(false, "cuda:1 should not exist");
        } catch (CudaUnavailableException e) {
            expect(e.getMessage().startsWith("cuda:1: there is no cuda:1; this machine has 1 GPU (cuda:0)"), e.getMessage());
        }
        // out of memory, explained
        try {
            gpu.allocateUninitialized(DType.U8, 81L << 30);
            expect(false, "81 GiB on an 80 GiB device");
        } catch (CudaOutOfMemoryException e) {
            expect(e.getMessage().startsWith("cuda:0 is out of memory: asked for 81.00 GiB, the GPU has"), e.getMessage());
        }
        // NCCL with one rank: the unique id goes by value through ncclCommInitRank (the fake checks its bytes)
        Nccl nccl = Nccl.get();
        expect("2.27.3".equals(Nccl.versionString(nccl.version())), "NCCL version " + nccl.version());
        try (Nccl.Communicator comm = nccl.initRank(gpu, 1, nccl.uniqueId(), 0);
             Tensor x = gpu.toDevice(Tensor.of(new float[] {1, 2, 3})); Tensor y = gpu.allocate(DType.F32, 3);
             Tensor b = gpu.toDevice(Tensor.of(new float[] {4, 5})); Tensor hb = Tensor.allocate(DType.BF16, 2)) {
            comm.allReduceSum(x, y);
            expect(java.util.Arrays.equals(new float[] {1, 2, 3}, gpu.toHost(y).toFloatArray()), "allReduceSum of one rank");
            comm.broadcast(b, b, 0);
            try (Tensor db = gpu.toDevice(hb)) {
                comm.broadcast(db, db, 0); // bf16 in place
            }
            // context parallelism's moves, one rank: copies (ncclAllGather; ncclSend and ncclRecv to itself in a group)
            try (Tensor g = gpu.allocate(DType.F32, 3); Tensor a = gpu.allocate(DType.F32, 3)) {
                comm.allGather(x, g);
                expect(java.util.Arrays.equals(new float[] {1, 2, 3}, gpu.toHost(g).toFloatArray()), "allGather of one rank");
                comm.allToAll(x, a);
                expect(java.util.Arrays.equals(new float[] {1, 2, 3}, gpu.toHost(a).toFloatArray()), "allToAll of one rank");
                try (Tensor rs = gpu.allocate(DType.F32, 3)) {
                    comm.reduceScatterSum(x, rs);
                    expect(java.util.Arrays.equals(new float[] {1, 2, 3}, gpu.toHost(rs).toFloatArray()), "reduceScatter of one rank");
                }
            }
            // ncclCommSplit, one rank: its group is itself, a new communicator (the fake's second token) that runs
            // collectives and is destroyed apart from its parent, which goes on
            try (Nccl.Communicator group = comm.split(0, 0); Tensor gy = gpu.allocate(DType.F32, 3)) {
                expect(group.rank() == 0 && group.ranks() == 1, "split: rank " + group.rank() + " of " + group.ranks());
                group.allReduceSum(x, gy);
                expect(java.util.Arrays.equals(new float[] {1, 2, 3}, gpu.toHost(gy).toFloatArray()), "allReduceSum of a split group");
            }
            comm.allReduceSum(x, y);
            expectThrows(IllegalArgumentException.class, () -> comm.split(-1, 0), "ncclCommSplit: color must be >= 0, got -1");
        }
        // context parallelism's groups on NCCL: NcclCommunicator.split, as TrainCommand --cp runs it
        try (var world = dev.tenfold.engine.collective.NcclCommunicator.join(gpu, 1, 0,
                     dev.tenfold.engine.collective.NcclCommunicator.newUniqueId(), java.time.Duration.ofMinutes(1));
             var group = world.split(1); Tensor ones = gpu.toDevice(Tensor.of(new float[] {1, 1}))) {
            expect(group.rank() == 0 && group.size() == 1 && group.device().equals(gpu.device()), "NcclCommunicator.split: " + group.describe());
            group.allReduceSum(List.of(ones));
            world.allReduceSum(List.of(ones));
            expect(java.util.Arrays.equals(new float[] {1, 1}, gpu.toHost(ones).toFloatArray()), "sums of one rank's group and world");
            expectThrows(IllegalArgumentException.class, () -> world.split(2), "split: groups of 2 ranks do not divide the 1 ranks");
        }
        // a kernel the fatbin lacks is named
        try {
            gpu.makeCurrent();
            new CudaKernels(CudaDriver.get(), 0, new byte[] {1}).function(new KernelAbi.Kernel("not_a_tf_kernel", List.of()));
            expect(false, "a missing kernel should fail");
        } catch (CudaUnavailableException e) {
            expect(e.getMessage().startsWith("the kernels fatbin has no kernel not_a_tf_kernel"), e.getMessage());
        }
        checkTimer(gpu);
        gpu.synchronize();
        runGpuTests();
        checkFlashOrderTimeout(gpu);
        if (problems.isEmpty()) {
            System.out.println("fake CUDA: all checks passed; allocator " + gpu.allocator().stats());
            System.exit(0);
        }
        problems.forEach(p -> System.out.println("PROBLEM: " + p));
        System.exit(1);
    }

    /** CudaTimer: its events measure the work between them (wall time on the fake) and its misuse is refused. */
    private static void checkTimer(CudaBackend gpu) {
        try (CudaTimer timer = new CudaTimer(gpu); Tensor x = gpu.allocate(DType.F32, 1 << 16); Tensor y = gpu.allocate(DType.F32, 1 << 16)) {
            expectThrows(IllegalStateException.class, timer::stop, "stop() before start()");
            expectThrows(IllegalStateException.class, timer::elapsedMillis, "elapsedMillis() needs start() and stop() first");
            expectThrows(IllegalArgumentException.class, () -> timer.millisPerRun(0, () -> {}), "runs must be at least 1, got 0");
            timer.start();
            expectThrows(IllegalStateException.class, timer::elapsedMillis, "elapsedMillis() needs start() and stop() first");
            timer.stop();
            double idle = timer.elapsedMillis();
            expect(idle >= 0 && idle < 1000, "an empty interval takes " + idle + " ms");
            double one = timer.millisPerRun(1, () -> {
                for (int i = 0; i < 20; i++) gpu.add(x, x, y);
            });
            double perRun = timer.millisPerRun(4, () -> {
                for (int i = 0; i < 20; i++) gpu.add(x, x, y);
            });
            expect(one > 0 && perRun > 0, "timed work takes time: " + one + " ms, " + perRun + " ms per run");
            timer.close();
            timer.close(); // idempotent
            expectThrows(IllegalStateException.class, timer::start, "used after close()");
        }
    }

    /**
     * The deterministic flash backward's error word (the fake sets it as the kernel does when its bounded wait gives
     * up) becomes an exception naming the kernel, the cause and the way out; the atomic backward never waits.
     */
    private static void checkFlashOrderTimeout(CudaBackend gpu) {
        float scale = 0.125f;
        try (Tensor q = gpu.toDevice(Tensor.of(new float[2 * 64], 1, 2, 1, 64)); Tensor out = gpu.allocate(DType.F32, 1, 2, 1, 64);
             Tensor lse = gpu.allocate(DType.F32, 1, 1, 2); Tensor dq = gpu.allocate(DType.F32, 1, 2, 1, 64);
             Tensor dk = gpu.allocate(DType.F32, 1, 2, 1, 64); Tensor dv = gpu.allocate(DType.F32, 1, 2, 1, 64)) {
            gpu.attention(q, q, q, scale, out, lse);
            setenv("FAKE_CUDA_FLASH_ORDER_TIMEOUT", "1");
            try {
                gpu.attentionBackward(q, q, q, q, out, lse, scale, dq, dk, dv);
                expect(false, "a flash backward whose wait gave up must throw");
            } catch (CudaKernelException e) {
                expect(e.kernel().equals("tf_flash_bwd_d64") && e.code() == KernelAbi.FLASH_BWD_ERR_WAIT_TIMEOUT
                        && e.getMessage().startsWith("tf_flash_bwd_d64 stopped with error code 1: TF_FLASH_BWD_ERR_WAIT_TIMEOUT")
                        && e.getMessage().contains(CudaBackend.DETERMINISTIC_ENV + "=0"), e.getMessage());
            }
            gpu.setDeterministic(false);
            try {
                gpu.attentionBackward(q, q, q, q, out, lse, scale, dq, dk, dv); // the atomic path does not wait
            } finally {
                gpu.setDeterministic(true);
                setenv("FAKE_CUDA_FLASH_ORDER_TIMEOUT", "0");
            }
        }
    }

    /** libc's setenv: the fake reads its fault switches from the environment at each launch. */
    private static void setenv(String name, String value) {
        var linker = java.lang.foreign.Linker.nativeLinker();
        var setenv = linker.downcallHandle(linker.defaultLookup().find("setenv").orElseThrow(), java.lang.foreign.FunctionDescriptor.of(
                java.lang.foreign.ValueLayout.JAVA_INT, java.lang.foreign.ValueLayout.ADDRESS, java.lang.foreign.ValueLayout.ADDRESS,
                java.lang.foreign.ValueLayout.JAVA_INT));
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            int rc = (int) setenv.invokeExact(arena.allocateFrom(name), arena.allocateFrom(value), 1);
            if (rc != 0) throw new IllegalStateException("setenv " + name + " failed");
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void expectThrows(Class<? extends Throwable> type, Runnable r, String messagePart) {
        try {
            r.run();
            expect(false, "expected " + type.getSimpleName() + " containing '" + messagePart + "'");
        } catch (Throwable t) {
            expect(type.isInstance(t) && String.valueOf(t.getMessage()).contains(messagePart),
                    "expected " + type.getSimpleName() + " containing '" + messagePart + "', got " + t);
        }
    }

    /** CudaBackendGpuTest against the fake, but for the self-check cases it runs (done above at QUICK sizes). */
    private static void runGpuTests() {
        // the fake's flash kernels are plain host loops: keep FlashAttentionGpuTest to its short cases
        System.setProperty(FlashAttentionGpuTest.MAX_LENGTH_PROPERTY, "127");
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
                .selectors(DiscoverySelectors.selectClass(CudaBackendGpuTest.class),
                        DiscoverySelectors.selectClass(FlashAttentionGpuTest.class), DiscoverySelectors.selectClass(NcclGpuTest.class),
                        DiscoverySelectors.selectClass(CudaLeanGpuTest.class))
                .filters((PostDiscoveryFilter) d -> FilterResult.includedIf(!d.getDisplayName().startsWith("everyOpMatches")
                        && !d.getDisplayName().startsWith("quickSizes")))
                .build();
        SummaryGeneratingListener listener = new SummaryGeneratingListener();
        LauncherFactory.create().execute(request, listener);
        TestExecutionSummary s = listener.getSummary();
        PrintWriter out = new PrintWriter(System.out, true);
        s.printTo(out);
        s.printFailuresTo(out, 40);
        expect(s.getTotalFailureCount() == 0, s.getTotalFailureCount() + " GPU tests failed on the fake");
        expect(s.getTestsAbortedCount() == 0 && s.getTestsSkippedCount() == 0, "GPU tests were skipped on the fake");
        expect(s.getTestsSucceededCount() >= 8 + 18 + 1 + 4, "only " + s.getTestsSucceededCount() + " GPU tests ran");
    }

    private static void expect(boolean ok, String what) {
        if (!ok) problems.add(what);
    }
}
