package dev.tenfold.engine.cuda;

import static dev.tenfold.engine.cuda.KernelAbi.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Widened;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The op set on one NVIDIA GPU: tenfold's kernels (tenfold_kernels.h) for everything but matrix
 * products, which are cuBLAS's. One instance per device ({@link #open}), living as long as the process.
 *
 * <p>Everything runs in order on one stream of the device's primary context; an op returns once its
 * work is queued (ops that return a value, and copies to or from the host, wait for it). Tensors come
 * from a caching allocator ({@link CudaAllocator}); temporaries are returned to it as soon as their work
 * is queued, which the single stream makes safe. Ops check their arguments as the CPU backend does (same
 * messages) and also that every tensor is on this device.
 *
 * <p>Precision: elementwise ops, norms, softmax, RoPE, the loss statistics, AdamW and reductions are f32
 * (reductions accumulate in f64, in a fixed order). Matrix products multiply in the operands' type with
 * f32 accumulation; an F32 operand paired with a BF16 one is rounded to BF16 first. Attention runs the
 * bf16 flash kernels (q, k, v, out and dOut rounded to bf16; logsumexp and accumulation f32).
 *
 * <p>BF16 activations (a lean training step's): matrix products write bf16 from cuBLAS (f32 accumulation) and
 * attention takes and gives bf16 directly; the other ops on activations run their f32 kernels on f32 copies of a
 * few rows at a time ({@link Widened}: temporaries of at most 32 MiB each).
 */
public final class CudaBackend implements Backend {
    /**
     * Set to 1 where a GPU must be used (a GPU machine's test run, `.gpu/run.sh first-light`): "no CUDA backend" is
     * then a failure for doctor, the GPU tests and GpuReport instead of a skip.
     */
    public static final String REQUIRE_GPU_ENV = "TENFOLD_REQUIRE_GPU";
    /**
     * 1 (the default): the attention backward sums dQ in a fixed order (bit-reproducible); 0: with atomics (faster,
     * and it never waits on another thread block). Read when a backend opens; {@link #setDeterministic} changes it.
     */
    public static final String DETERMINISTIC_ENV = "TENFOLD_DETERMINISTIC_ATTENTION";
    /**
     * The fixed order of the deterministic backward's dQ additions: "descending" (the default: from each query block's
     * last key block, so the waits do not chain; 1.2-1.6x faster than ascending at 1K-16K tokens on an H200, within
     * 9-18 % of atomics) or "ascending" (key block 0 first). Both are reproducible bit for bit, each with its own bits.
     */
    public static final String ORDER_ENV = "TENFOLD_FLASH_BWD_ORDER";
    /** cuDriverGetVersion of CUDA 13.0: the fatbin is built by nvcc 13 (its PTX and cubins need a CUDA 13 driver). */
    public static final int REQUIRED_DRIVER_API = 13000;
    /** The NVIDIA Linux driver that CUDA 13.0 needs (CUDA 13.0 release notes), for the messages. */
    public static final String REQUIRED_NVIDIA_DRIVER = "580.65.06";
    /** Rows and vocabulary columns of one logits chunk of the cross-entropy (a 128 MiB f32 scratch at most). */
    public static final int CE_TOKEN_CHUNK = 4096, CE_VOCAB_CHUNK = 8192;
    private static final int IGNORE = -100;
    private static final long PINNED_BYTES = 64 * 1024;

    private static final Map<Integer, CudaBackend> OPEN = new HashMap<>();
    /** Why a device did not open: not retried, so that a failing open costs (and reports) once per process. */
    private static final Map<Integer, RuntimeException> FAILED = new HashMap<>();
    /** The context last made current on each thread (its address), to skip redundant cuCtxSetCurrent calls. */
    private static final ThreadLocal<long[]> CURRENT = ThreadLocal.withInitial(() -> new long[1]);

    private final CudaDriver driver;
    private final Device device;
    private final int cuDevice;
    private final String gpuName;
    private final int ccMajor, ccMinor, multiprocessors;
    private final MemorySegment context, stream, pinned;
    private MemorySegment copyStream; // the second stream of copyAsync, made on first use
    private final CudaAllocator allocator;
    private final CudaKernels kernels;
    private final Cublas cublas;
    private final Map<Long, Tensor> seqlens = new HashMap<>();
    private final Widened widened = new Widened(this, this::allocateUninitialized);
    private volatile boolean deterministic = true;
    private volatile boolean descending; // the deterministic backward's order (ORDER_ENV)
    private long maxPitch = -1; // CU_DEVICE_ATTRIBUTE_MAX_PITCH, read on copy2d's first use
    private boolean rowByRowCopies; // the driver refused a device-to-device 2D copy's pitches once: copy2d copies rows since

    /**
     * The backend of GPU {@code index} (cuda:index), created on first use and shared afterwards. Throws
     * {@link CudaUnavailableException} saying why when there is no driver, too old a driver, no such GPU, no cuBLAS,
     * or no kernels in this build; a {@link CudaException} when the GPU itself refuses (a fatbin without code for
     * it ...). A failed open is not retried: later calls throw the same exception.
     */
    public static CudaBackend open(int index) {
        if (index < 0) throw new IllegalArgumentException("device index must be >= 0, got " + index);
        synchronized (OPEN) {
            CudaBackend b = OPEN.get(index);
            if (b != null) return b;
            RuntimeException failed = FAILED.get(index);
            if (failed != null) throw failed;
            try {
                b = create(index);
            } catch (RuntimeException e) {
                FAILED.put(index, e);
                throw e;
            }
            OPEN.put(index, b);
            return b;
        }
    }

    /** Whether {@value #REQUIRE_GPU_ENV} asks for a GPU (1), or lets work go without one (0 or unset). */
    public static boolean gpuRequired() { return flag(REQUIRE_GPU_ENV, System.getenv(REQUIRE_GPU_ENV), false); }

    /** A 0/1 environment setting; unset or empty gives {@code unset}; anything else is refused naming the variable. */
    static boolean flag(String name, String value, boolean unset) {
        if (value == null || value.isBlank()) return unset;
        return switch (value.trim()) {
            case "1", "true" -> true;
            case "0", "false" -> false;
            default -> throw new IllegalArgumentException(name + " must be 0 or 1, got '" + value + "'");
        };
    }

    /** ORDER_ENV's value: true for "descending" or unset, false for "ascending". */
    static boolean descendingOrder(String value) {
        if (value == null || value.isBlank()) return true;
        return switch (value.trim()) {
            case "ascending" -> false;
            case "descending" -> true;
            default -> throw new IllegalArgumentException(ORDER_ENV + " must be ascending or descending, got '" + value + "'");
        };
    }

    private static CudaBackend create(int index) {
        boolean deterministic = flag(DETERMINISTIC_ENV, System.getenv(DETERMINISTIC_ENV), true);
        boolean descending = descendingOrder(System.getenv(ORDER_ENV));
        CudaDriver driver = CudaDriver.get();
        checkDriverVersion(driver.driverVersion());
        int count = driver.deviceCount();
        if (count == 0) throw new CudaUnavailableException("the CUDA driver (" + driver.loaded() + ") sees no GPU");
        if (index >= count) {
            throw new CudaUnavailableException("there is no cuda:" + index + "; this machine has " + count + " GPU"
                    + (count == 1 ? " (cuda:0)" : "s (cuda:0 to cuda:" + (count - 1) + ")"));
        }
        // the clearest failures first, before the GPU is touched: no kernels, no cuBLAS
        byte[] fatbin = CudaKernels.readFatbin();
        Cublas.load();
        CudaBackend b = new CudaBackend(driver, index, fatbin);
        b.setDeterministic(deterministic);
        b.descending = descending;
        return b;
    }

    /** Refuses a driver older than CUDA 13 in one line: the one found and the one needed. */
    static void checkDriverVersion(int driverApi) {
        if (driverApi >= REQUIRED_DRIVER_API) return;
        throw new CudaUnavailableException("the NVIDIA driver supports CUDA " + driverApi / 1000 + "." + driverApi % 1000 / 10
                + " (cuDriverGetVersion " + driverApi + "); tenfold's kernels are built with CUDA 13 and need a driver for CUDA "
                + REQUIRED_DRIVER_API / 1000 + "." + REQUIRED_DRIVER_API % 1000 / 10 + " or newer (" + REQUIRED_NVIDIA_DRIVER
                + " or newer on Linux)");
    }

    private CudaBackend(CudaDriver driver, int index, byte[] fatbin) {
        this.driver = driver;
        this.device = Device.cuda(index);
        this.cuDevice = driver.device(index);
        this.gpuName = driver.deviceName(cuDevice);
        this.ccMajor = driver.attribute(CudaDriver.ATTR_COMPUTE_CAPABILITY_MAJOR, cuDevice);
        this.ccMinor = driver.attribute(CudaDriver.ATTR_COMPUTE_CAPABILITY_MINOR, cuDevice);
        this.multiprocessors = driver.attribute(CudaDriver.ATTR_MULTIPROCESSOR_COUNT, cuDevice);
        this.context = driver.primaryContextRetain(cuDevice);
        Cublas blas = null;
        try {
            makeCurrent();
            this.stream = driver.streamCreate(CudaDriver.STREAM_NON_BLOCKING);
            this.kernels = new CudaKernels(driver, cuDevice, fatbin);
            blas = Cublas.create();
            blas.setStream(stream);
            blas.setMathMode(Cublas.DEFAULT_MATH); // f32 products stay f32 (no TF32)
            this.cublas = blas;
            this.allocator = new CudaAllocator(new DriverMemory());
            this.pinned = driver.hostAlloc(PINNED_BYTES, 0);
        } catch (RuntimeException e) {
            // give back what this open took: releasing the primary context frees its stream, module and memory
            if (blas != null) {
                try {
                    blas.close();
                } catch (RuntimeException s) {
                    e.addSuppressed(s);
                }
            }
            try {
                driver.primaryContextRelease(cuDevice);
            } catch (RuntimeException s) {
                e.addSuppressed(s);
            }
            CURRENT.get()[0] = 0;
            throw e;
        }
    }

    /** The driver's memory, for the allocator. */
    private final class DriverMemory implements DeviceMemory {
        @Override public long allocate(long bytes) {
            makeCurrent();
            return driver.memAlloc(bytes);
        }

        @Override public void free(long address) {
            makeCurrent();
            driver.memFree(address);
        }

        @Override public CudaDriver.MemoryInfo info() {
            makeCurrent();
            return driver.memInfo();
        }

        @Override public void quiesce() {
            makeCurrent();
            driver.streamSynchronize(stream);
        }

        @Override public String name() { return device.toString(); }
    }

    // ------------------------------------------------------------------ identity

    @Override public String name() { return device.toString(); }

    @Override public Device device() { return device; }

    @Override public DType activationDtype() { return DType.BF16; } // half the memory of the saved activations; arithmetic stays F32

    /** e.g. "NVIDIA H100 80GB HBM3". */
    public String gpuName() { return gpuName; }

    /** e.g. "9.0". */
    public String computeCapability() { return ccMajor + "." + ccMinor; }

    public int multiprocessors() { return multiprocessors; }

    public CudaAllocator allocator() { return allocator; }

    /** cuBLAS's version, e.g. 13.1.0. */
    public String cublasVersion() {
        makeCurrent();
        return Cublas.versionString(cublas.version());
    }

    /** Free and total bytes of this GPU. */
    public CudaDriver.MemoryInfo memoryInfo() {
        makeCurrent();
        return driver.memInfo();
    }

    /**
     * Whether the attention backward sums dQ in a fixed order (bit-reproducible; the default, or what
     * {@value #DETERMINISTIC_ENV} says) or with atomics (faster; blocks never wait for each other). The fixed order
     * waits for key blocks in launch order; if the GPU does not run them in that order (compute-sanitizer, MPS) the
     * wait gives up after {@value KernelAbi#FLASH_BWD_WAIT_SECONDS} s and the backward throws
     * {@link CudaKernelException}.
     */
    public void setDeterministic(boolean deterministic) { this.deterministic = deterministic; }

    public boolean isDeterministic() { return deterministic; }

    /** The deterministic backward's order: descending (see {@link #ORDER_ENV}) or ascending; for tests and benchmarks. */
    void setDescendingOrder(boolean descending) { this.descending = descending; }

    boolean isDescendingOrder() { return descending; }

    /** Binds this device's context to the calling thread (done by every op; needed before raw driver calls). */
    public void makeCurrent() {
        long[] current = CURRENT.get();
        if (current[0] != context.address()) {
            driver.setCurrent(context);
            current[0] = context.address();
        }
    }

    /**
     * Forgets which context the calling thread has current, so the next op sets it again: for after
     * library calls that may switch the thread's device themselves (NCCL's communicator set-up).
     */
    static void forgetCurrentContext() { CURRENT.get()[0] = 0; }

    /** The stream all of this backend's work goes to. */
    MemorySegment stream() { return stream; }

    // ------------------------------------------------------------------ memory and copies

    /** A zero-filled tensor on this GPU. */
    @Override
    public Tensor allocate(DType dtype, long... shape) {
        Tensor t = allocateUninitialized(dtype, shape);
        zero(t);
        return t;
    }

    /** A tensor on this GPU whose contents are whatever the memory held (for outputs about to be overwritten). */
    public Tensor allocateUninitialized(DType dtype, long... shape) {
        for (long d : shape) if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + java.util.Arrays.toString(shape));
        long bytes = dtype.byteSize(Tensor.numelOf(shape));
        CudaAllocator.Block b = allocator.allocate(bytes);
        MemorySegment memory = MemorySegment.ofAddress(b.address()).reinterpret(bytes);
        return Tensor.onDevice(memory, device, dtype, () -> allocator.free(b), shape);
    }

    /** A device copy of a host tensor. */
    public Tensor toDevice(Tensor host) {
        Tensor t = allocateUninitialized(host.dtype(), host.shape());
        copy(host, t);
        return t;
    }

    /** A host copy of a tensor of this device (waits for the queued work). */
    public Tensor toHost(Tensor onDevice) {
        Tensor t = Tensor.allocate(onDevice.dtype(), onDevice.shape());
        copy(onDevice, t);
        return t;
    }

    @Override
    public synchronized void copy(Tensor src, Tensor dst) {
        OpChecks.copy(src, dst);
        boolean srcHost = src.device().isCpu(), dstHost = dst.device().isCpu();
        if ((!srcHost && !src.device().equals(device)) || (!dstHost && !dst.device().equals(device))) {
            throw new IllegalArgumentException("copy: " + name() + " copies between the host and " + device + " only, got "
                    + src.describe() + " into " + dst.describe());
        }
        long bytes = src.byteSize();
        if (bytes == 0) return;
        if (srcHost && dstHost) {
            MemorySegment.copy(src.data(), 0, dst.data(), 0, bytes);
            return;
        }
        makeCurrent();
        if (srcHost) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment from = src.data().isNative() ? src.data() : arena.allocate(bytes, 64).copyFrom(src.data());
                driver.copyHostToDeviceAsync(addr(dst), from, bytes, stream);
                driver.streamSynchronize(stream); // src may change once copy returns
            }
        } else if (dstHost) {
            if (dst.data().isNative()) {
                driver.copyDeviceToHostAsync(dst.data(), addr(src), bytes, stream);
                driver.streamSynchronize(stream);
            } else {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment to = arena.allocate(bytes, 64);
                    driver.copyDeviceToHostAsync(to, addr(src), bytes, stream);
                    driver.streamSynchronize(stream);
                    dst.data().copyFrom(to);
                }
            }
        } else if (addr(src) != addr(dst)) {
            driver.copyDeviceToDeviceAsync(addr(dst), addr(src), bytes, stream);
        }
    }

    /**
     * Within the host (a loop of copies), or within this GPU: one cuMemcpy2DAsync on this backend's stream, or one
     * plain copy where the blocks are contiguous on both sides. The driver may refuse device-to-device pitches (above
     * its maximum pitch, or ones not from cuMemAllocPitch, which cuda.h allows it to refuse): then the blocks go one
     * cuMemcpyDtoDAsync each, the same bytes.
     */
    @Override
    public synchronized void copy2d(Tensor src, long srcOffsetBytes, long srcPitchBytes, Tensor dst, long dstOffsetBytes, long dstPitchBytes,
                                    long widthBytes, long rows) {
        OpChecks.copy2d(src, srcOffsetBytes, srcPitchBytes, dst, dstOffsetBytes, dstPitchBytes, widthBytes, rows);
        if (src.device().isCpu() && dst.device().isCpu()) {
            OpChecks.copy2dOnHost(src.data(), srcOffsetBytes, srcPitchBytes, dst.data(), dstOffsetBytes, dstPitchBytes, widthBytes, rows);
            return;
        }
        if (!src.device().equals(device) || !dst.device().equals(device)) {
            throw new IllegalArgumentException("copy2d: " + name() + " copies within the host or within " + device
                    + " (copy moves between them), got " + src.describe() + " into " + dst.describe());
        }
        if (widthBytes == 0 || rows == 0) return;
        makeCurrent();
        long from = addr(src) + srcOffsetBytes, to = addr(dst) + dstOffsetBytes;
        if (rows == 1 || (srcPitchBytes == widthBytes && dstPitchBytes == widthBytes)) {
            driver.copyDeviceToDeviceAsync(to, from, widthBytes * rows, stream);
            return;
        }
        if (maxPitch < 0) maxPitch = driver.attribute(CudaDriver.ATTR_MAX_PITCH, cuDevice) & 0xFFFFFFFFL;
        if (!rowByRowCopies && srcPitchBytes <= maxPitch && dstPitchBytes <= maxPitch) {
            try {
                driver.copy2dDeviceToDeviceAsync(to, dstPitchBytes, from, srcPitchBytes, widthBytes, rows, stream);
                return;
            } catch (CudaException e) {
                if (e.status() != CudaStatus.CUDA_ERROR_INVALID_VALUE) throw e;
                rowByRowCopies = true; // the pitches, refused before anything was queued
            }
        }
        for (long i = 0; i < rows; i++) {
            driver.copyDeviceToDeviceAsync(to + i * dstPitchBytes, from + i * srcPitchBytes, widthBytes, stream);
        }
    }

    /** Whether copy2d gave up on cuMemcpy2DAsync (the driver refused its pitches): for the GPU test, which expects not. */
    synchronized boolean copiesRowByRow() { return rowByRowCopies; }

    /** Sets every element of an F32 tensor: a 32-bit memset of the value's bits on this GPU's stream. */
    @Override
    public void fill(Tensor t, float value) {
        Check.notNull("fill", "t", t);
        Check.dtype("fill", "t", t, DType.F32);
        if (t.device().isCpu()) {
            t.fill(value);
            return;
        }
        if (!t.device().equals(device)) throw new IllegalArgumentException("fill: " + t.describe() + " is not on " + device);
        if (t.numel() == 0) return;
        makeCurrent();
        driver.memsetD32Async(addr(t), Float.floatToRawIntBits(value), t.numel(), stream);
    }

    @Override
    public synchronized void synchronize() {
        makeCurrent();
        driver.streamSynchronize(stream);
        if (copyStream != null) driver.streamSynchronize(copyStream);
    }

    /** The caching allocator's free blocks back to the driver. */
    @Override
    public void releaseCachedMemory() { allocator.emptyCache(); }

    /** Pinned (page-locked) host memory, zero-filled, freed on close: what {@link #copyAsync} copies at full speed. */
    @Override
    public synchronized Tensor allocateHost(DType dtype, long... shape) {
        for (long d : shape) if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + java.util.Arrays.toString(shape));
        long bytes = dtype.byteSize(Tensor.numelOf(shape));
        makeCurrent();
        MemorySegment memory = driver.hostAlloc(Math.max(bytes, 1), 0);
        memory.fill((byte) 0);
        return Tensor.owning(memory.asSlice(0, bytes), Device.CPU, dtype, () -> {
            makeCurrent();
            driver.freeHost(memory);
        }, shape);
    }

    /**
     * The copy on a second stream: it starts when the work queued so far on this backend's stream is done
     * (an event), and {@link Pending#await} makes the work queued after it wait for the copy (another event),
     * all on the GPU: the host never blocks, and the copy overlaps the ops queued in between. A host tensor
     * that is not native memory is copied at once instead.
     */
    @Override
    public synchronized Pending copyAsync(Tensor src, Tensor dst) {
        OpChecks.copy(src, dst);
        boolean srcHost = src.device().isCpu(), dstHost = dst.device().isCpu();
        if (srcHost == dstHost || !(srcHost ? src : dst).data().isNative() || src.byteSize() == 0) {
            copy(src, dst);
            return Pending.DONE;
        }
        Tensor onDevice = srcHost ? dst : src;
        if (!onDevice.device().equals(device)) {
            throw new IllegalArgumentException("copy: " + name() + " copies between the host and " + device + " only, got "
                    + src.describe() + " into " + dst.describe());
        }
        makeCurrent();
        if (copyStream == null) copyStream = driver.streamCreate(CudaDriver.STREAM_NON_BLOCKING);
        MemorySegment ready = driver.eventCreate(CudaDriver.EVENT_DISABLE_TIMING);
        driver.eventRecord(ready, stream);
        driver.streamWaitEvent(copyStream, ready);
        driver.eventDestroy(ready); // released once the wait is done
        if (srcHost) driver.copyHostToDeviceAsync(addr(dst), src.data(), src.byteSize(), copyStream);
        else driver.copyDeviceToHostAsync(dst.data(), addr(src), src.byteSize(), copyStream);
        MemorySegment done = driver.eventCreate(CudaDriver.EVENT_DISABLE_TIMING);
        driver.eventRecord(done, copyStream);
        return new Pending() {
            private boolean awaited;

            @Override
            public void await() {
                synchronized (CudaBackend.this) {
                    if (awaited) return;
                    awaited = true;
                    makeCurrent();
                    driver.streamWaitEvent(stream, done);
                    driver.eventDestroy(done);
                }
            }
        };
    }

    // ------------------------------------------------------------------ matrix product (cuBLAS)

    @Override
    public synchronized void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        OpChecks.MatmulDims d = OpChecks.matmul(a, transA, b, transB, out, DType.F32, DType.BF16);
        OpChecks.onDevice("matmul", device, new String[] {"a", "b", "out"}, a, b, out);
        makeCurrent();
        if (out.dtype() == DType.BF16 && a.dtype() == DType.F32 && b.dtype() == DType.F32) {
            widened.matmul(a, transA, b, transB, out, accumulate); // cuBLAS writes bf16 only from bf16 operands
            return;
        }
        gemm(d, a, transA, b, transB, out, accumulate);
    }

    /**
     * out (+)= op(a) op(b) for checked operands; a mixed F32/BF16 pair is multiplied in BF16; a BF16 out
     * (from at least one BF16 operand) is written by cuBLAS in bf16.
     */
    private void gemm(OpChecks.MatmulDims d, Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        if (d.batch() == 0 || d.m() == 0 || d.n() == 0) return;
        if (d.k() == 0) {
            if (!accumulate) zero(out);
            return;
        }
        GemmPlan plan = GemmPlan.rowMajor(d.batch(), d.m(), d.n(), d.k(), transA, transB, d.bBatched());
        Tensor a16 = a.dtype() == DType.F32 && b.dtype() == DType.BF16 ? toBf16(a) : null;
        Tensor b16 = b.dtype() == DType.F32 && a.dtype() == DType.BF16 ? toBf16(b) : null;
        try {
            Tensor x = a16 != null ? a16 : a, y = b16 != null ? b16 : b;
            int type = x.dtype() == DType.BF16 ? Cublas.R_16BF : Cublas.R_32F;
            int outType = out.dtype() == DType.BF16 ? Cublas.R_16BF : Cublas.R_32F;
            cublas.gemm(plan, addr(x), type, addr(y), type, addr(out), outType, 1f, accumulate ? 1f : 0f);
        } finally {
            if (a16 != null) a16.close();
            if (b16 != null) b16.close();
        }
    }

    /** matmul on tensors already known to be on this device (views of scratch included). */
    private void gemm(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        gemm(OpChecks.matmul(a, transA, b, transB, out), a, transA, b, transB, out, accumulate);
    }

    // ------------------------------------------------------------------ elementwise

    @Override
    public synchronized void add(Tensor a, Tensor b, Tensor out) {
        if (Widened.any(a, b, out)) {
            OpChecks.onDevice("add", device, new String[] {"a", "b", "out"}, a, b, out);
            widened.add(a, b, out);
            return;
        }
        long n = OpChecks.elementwise("add", a, b, out);
        OpChecks.onDevice("add", device, new String[] {"a", "b", "out"}, a, b, out);
        elementwise(ADD_F32, n, a, b, out, n);
    }

    @Override
    public synchronized void mul(Tensor a, Tensor b, Tensor out) {
        if (Widened.any(a, b, out)) {
            OpChecks.onDevice("mul", device, new String[] {"a", "b", "out"}, a, b, out);
            widened.mul(a, b, out);
            return;
        }
        long n = OpChecks.elementwise("mul", a, b, out);
        OpChecks.onDevice("mul", device, new String[] {"a", "b", "out"}, a, b, out);
        elementwise(MUL_F32, n, a, b, out, n);
    }

    @Override
    public synchronized void scale(Tensor a, float s, Tensor out) {
        long n = OpChecks.elementwise("scale", a, null, out);
        OpChecks.onDevice("scale", device, new String[] {"a", "out"}, a, out);
        elementwise(SCALE_F32, n, a, s, out, n);
    }

    @Override
    public synchronized void cast(Tensor src, Tensor dst) {
        long n = OpChecks.cast(src, dst);
        OpChecks.onDevice("cast", device, new String[] {"src", "dst"}, src, dst);
        if (n == 0) return;
        makeCurrent();
        if (src.dtype() == dst.dtype()) {
            if (addr(src) != addr(dst)) driver.copyDeviceToDeviceAsync(addr(dst), addr(src), src.byteSize(), stream);
            return;
        }
        elementwise(castKernel(src.dtype(), dst.dtype()), n, src, dst, n);
    }

    static KernelAbi.Kernel castKernel(DType from, DType to) {
        return switch (from) {
            case F32 -> to == DType.BF16 ? CAST_F32_BF16 : CAST_F32_F16;
            case BF16 -> to == DType.F32 ? CAST_BF16_F32 : CAST_BF16_F16;
            case F16 -> to == DType.F32 ? CAST_F16_F32 : CAST_F16_BF16;
            default -> throw new IllegalArgumentException("cast: no kernel from " + from + " to " + to);
        };
    }

    // ------------------------------------------------------------------ embedding

    @Override
    public synchronized void embedding(Tensor table, Tensor ids, Tensor out) {
        if (Widened.any(out)) {
            OpChecks.onDevice("embedding", device, new String[] {"table", "ids", "out"}, table, ids, out);
            widened.embedding(table, ids, out);
            return;
        }
        int[] d = OpChecks.embedding("embedding", table, ids, out, false);
        OpChecks.onDevice("embedding", device, new String[] {"table", "ids", "out"}, table, ids, out);
        int t = d[0], h = d[1], v = d[2];
        if (t == 0) return;
        makeCurrent();
        try (Tensor error = allocateUninitialized(DType.I32, 1)) {
            driver.memsetD32Async(addr(error), -1, 1, stream);
            launch(table.dtype() == DType.BF16 ? EMBEDDING_FWD_BF16 : EMBEDDING_FWD_F32, rows(t), table, ids, out, t, h, v, error);
            int bad = readBack(addr(error), 4).get(ValueLayout.JAVA_INT, 0);
            if (bad >= 0) {
                int id = bad < t ? readBack(addr(ids) + 4L * bad, 4).get(ValueLayout.JAVA_INT, 0) : Integer.MIN_VALUE;
                throw Check.fail("embedding", "id " + id + " at position " + bad + " is out of range [0, " + v + ")", table, ids);
            }
        }
    }

    @Override
    public synchronized void embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable) {
        String op = "embeddingBackward";
        int[] d = OpChecks.embedding(op, dTable, ids, dOut, true);
        OpChecks.onDevice(op, device, new String[] {"dOut", "ids", "dTable"}, dOut, ids, dTable);
        int t = d[0], h = d[1], v = d[2];
        if (t == 0) return;
        makeCurrent();
        int[] hostIds = readInts(ids); // an id out of range would make the kernel write outside dTable
        for (int i = 0; i < t; i++) {
            if (hostIds[i] < 0 || hostIds[i] >= v) {
                throw Check.fail(op, "id " + hostIds[i] + " at position " + i + " is out of range [0, " + v + ")", dTable, ids);
            }
        }
        launch(EMBEDDING_BWD_F32, rows(t), dOut, ids, dTable, t, h, v);
    }

    // ------------------------------------------------------------------ RMSNorm

    @Override
    public synchronized void rmsnorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        if (Widened.any(x, out)) {
            OpChecks.onDevice("rmsnorm", device, new String[] {"x", "weight", "out", "rstd"}, x, weight, out, rstd);
            widened.rmsnorm(x, weight, eps, out, rstd);
            return;
        }
        int[] d = OpChecks.rmsnorm("rmsnorm", x, weight, rstd, out, "out", null, null);
        OpChecks.onDevice("rmsnorm", device, new String[] {"x", "weight", "out", "rstd"}, x, weight, out, rstd);
        int rows = d[0], h = d[1];
        if (rows == 0) return;
        makeCurrent();
        launch(RMSNORM_FWD_F32, rows(rows), x, weight, eps, out, rstd, rows, h);
    }

    @Override
    public synchronized void rmsnormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        String op = "rmsnormBackward";
        if (Widened.any(dOut, x, dx)) {
            OpChecks.onDevice(op, device, new String[] {"dOut", "x", "weight", "rstd", "dx", "dWeight"}, dOut, x, weight, rstd, dx, dWeight);
            widened.rmsnormBackward(dOut, x, weight, rstd, dx, dWeight);
            return;
        }
        int[] d = OpChecks.rmsnormBackward(dOut, x, weight, rstd, dx, dWeight);
        OpChecks.onDevice(op, device, new String[] {"dOut", "x", "weight", "rstd", "dx", "dWeight"}, dOut, x, weight, rstd, dx, dWeight);
        int rows = d[0], h = d[1];
        if (rows == 0) return;
        makeCurrent();
        // dWeight first: dx may be dOut's memory, and the weight gradient reads dOut
        if (dWeight != null) launch(RMSNORM_DWEIGHT_F32, columns(h), dOut, x, rstd, dWeight, rows, h);
        launch(RMSNORM_BWD_F32, rows(rows), dOut, x, weight, rstd, dx, rows, h);
    }

    // ------------------------------------------------------------------ RoPE

    @Override
    public synchronized void rope(Tensor x, Tensor invFreq, Tensor positions, float attnScale, Tensor out) {
        if (Widened.any(x, out)) {
            OpChecks.onDevice("rope", device, new String[] {"x", "invFreq", "positions", "out"}, x, invFreq, positions, out);
            widened.rope(x, invFreq, positions, attnScale, out, false);
            return;
        }
        int[] d = OpChecks.rope("rope", x, "x", invFreq, positions, out, "out");
        OpChecks.onDevice("rope", device, new String[] {"x", "invFreq", "positions", "out"}, x, invFreq, positions, out);
        elementwise(ROPE_F32, (long) d[0] * d[1] * (d[2] / 2), x, invFreq, positions, attnScale, out, d[0], d[1], d[2], 1);
    }

    @Override
    public synchronized void ropeBackward(Tensor dOut, Tensor invFreq, Tensor positions, float attnScale, Tensor dx) {
        String op = "ropeBackward";
        if (Widened.any(dOut, dx)) {
            OpChecks.onDevice(op, device, new String[] {"dOut", "invFreq", "positions", "dx"}, dOut, invFreq, positions, dx);
            widened.rope(dOut, invFreq, positions, attnScale, dx, true);
            return;
        }
        int[] d = OpChecks.rope(op, dOut, "dOut", invFreq, positions, dx, "dx");
        OpChecks.onDevice(op, device, new String[] {"dOut", "invFreq", "positions", "dx"}, dOut, invFreq, positions, dx);
        elementwise(ROPE_F32, (long) d[0] * d[1] * (d[2] / 2), dOut, invFreq, positions, attnScale, dx, d[0], d[1], d[2], -1);
    }

    /**
     * CUDA only: {@link #rope} (or, with {@code backward}, {@link #ropeBackward}) applied in place to q
     * [.., Hq, d] and k [.., Hkv, d] of the same rows, in one launch.
     */
    public synchronized void ropeInPlace(Tensor q, Tensor k, Tensor invFreq, Tensor positions, float attnScale, boolean backward) {
        String op = backward ? "ropeBackward" : "rope";
        int[] dq = OpChecks.rope(op, q, "q", invFreq, positions, q, "q");
        int[] dk = OpChecks.rope(op, k, "k", invFreq, positions, k, "k");
        if (dq[0] != dk[0] || dq[2] != dk[2]) throw Check.fail(op, "q and k need the same rows and head dim", q, k);
        OpChecks.onDevice(op, device, new String[] {"q", "k", "invFreq", "positions"}, q, k, invFreq, positions);
        elementwise(ROPE_QK_F32, (long) dq[0] * (dq[1] + dk[1]) * (dq[2] / 2), q, k, invFreq, positions, attnScale,
                dq[0], dq[1], dk[1], dq[2], backward ? -1 : 1);
    }

    // ------------------------------------------------------------------ SwiGLU and softmax

    @Override
    public synchronized void swiglu(Tensor gate, Tensor up, Tensor out) {
        if (Widened.any(gate, up, out)) {
            OpChecks.onDevice("swiglu", device, new String[] {"gate", "up", "out"}, gate, up, out);
            widened.swiglu(gate, up, out);
            return;
        }
        long n = OpChecks.swiglu("swiglu", gate, new String[] {"up", "out"}, up, out);
        OpChecks.onDevice("swiglu", device, new String[] {"gate", "up", "out"}, gate, up, out);
        elementwise(SWIGLU_FWD_F32, n, gate, up, out, n);
    }

    @Override
    public synchronized void swigluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        String op = "swigluBackward";
        if (Widened.any(dOut, gate, up, dGate, dUp)) {
            OpChecks.onDevice(op, device, new String[] {"dOut", "gate", "up", "dGate", "dUp"}, dOut, gate, up, dGate, dUp);
            widened.swigluBackward(dOut, gate, up, dGate, dUp);
            return;
        }
        long n = OpChecks.swiglu(op, gate, new String[] {"dOut", "up", "dGate", "dUp"}, dOut, up, dGate, dUp);
        OpChecks.onDevice(op, device, new String[] {"dOut", "gate", "up", "dGate", "dUp"}, dOut, gate, up, dGate, dUp);
        elementwise(SWIGLU_BWD_F32, n, dOut, gate, up, dGate, dUp, n);
    }

    @Override
    public synchronized void softmax(Tensor x, Tensor out) {
        int[] d = OpChecks.softmax("softmax", new String[] {"x", "out"}, x, out);
        OpChecks.onDevice("softmax", device, new String[] {"x", "out"}, x, out);
        if (d[0] == 0) return;
        makeCurrent();
        launch(SOFTMAX_FWD_F32, rows(d[0]), x, out, d[0], d[1]);
    }

    @Override
    public synchronized void softmaxBackward(Tensor dOut, Tensor y, Tensor dx) {
        int[] d = OpChecks.softmax("softmaxBackward", new String[] {"dOut", "y", "dx"}, dOut, y, dx);
        OpChecks.onDevice("softmaxBackward", device, new String[] {"dOut", "y", "dx"}, dOut, y, dx);
        if (d[0] == 0) return;
        makeCurrent();
        launch(SOFTMAX_BWD_F32, rows(d[0]), dOut, y, dx, d[0], d[1]);
    }

    // ------------------------------------------------------------------ attention (flash kernels)

    // The kernels take packed sequences (cu_seqlens) and write lse as [hq, total_q]; Backend's lse is
    // [B, Hq, Tq]. Launching once per batch element, with cu_seqlens {0, Tq} / {0, Tk}, makes the two
    // layouts coincide (lse of element b is [Hq, Tq] at b*Hq*Tq), so nothing is converted.

    @Override
    public synchronized void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) {
        OpChecks.onDevice("attention", device, new String[] {"q", "k", "v", "out", "lse"}, q, k, v, out, lse);
        boolean bf16 = allBf16(q, k, v, out); // the kernels' own type: used in place
        if (!bf16 && Widened.any(q, k, v, out)) {
            widened.attention(q, k, v, scale, out, lse);
            return;
        }
        OpChecks.AttentionDims g = OpChecks.attentionForward(q, k, v, out, lse, bf16 ? DType.BF16 : DType.F32);
        if (g.empty()) return;
        KernelAbi.Kernel kernel = flashKernel(g, false);
        makeCurrent();
        int tq = g.tq(), tk = g.tk(), hq = g.hq(), hkv = g.hkv(), d = g.d();
        long qBytes = 2L * tq * hq * d, kBytes = 2L * tk * hkv * d, lseBytes = 4L * hq * tq;
        try (Tensor qb = bf16 ? null : toBf16(q); Tensor kb = bf16 ? null : toBf16(k); Tensor vb = bf16 ? null : toBf16(v);
             Tensor ob = bf16 ? null : allocateUninitialized(DType.BF16, q.shape())) {
            Tensor q16 = bf16 ? q : qb, k16 = bf16 ? k : kb, v16 = bf16 ? v : vb, o16 = bf16 ? out : ob;
            long cuQ = seqlens(tq, tk), cuK = cuQ + 8;
            KernelAbi.Launch l = flashForward(tq, hq, 1, d);
            for (int b = 0; b < g.batch(); b++) {
                launch(kernel, l, addr(q16) + b * qBytes, addr(k16) + b * kBytes, addr(v16) + b * kBytes, addr(o16) + b * qBytes,
                        addr(lse) + b * lseBytes, cuQ, cuK, 1, tq, hq, hkv, scale);
            }
            if (!bf16) elementwise(CAST_BF16_F32, ob.numel(), ob, out, ob.numel());
        }
    }

    private static boolean allBf16(Tensor... ts) {
        for (Tensor t : ts) if (t == null || t.dtype() != DType.BF16) return false;
        return true;
    }

    @Override
    public synchronized void attentionBackward(Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, float scale,
                                               Tensor dq, Tensor dk, Tensor dv) {
        OpChecks.onDevice("attention", device, new String[] {"dOut", "q", "k", "v", "out", "lse", "dq", "dk", "dv"},
                dOut, q, k, v, out, lse, dq, dk, dv);
        boolean bf16 = allBf16(dOut, q, k, v, out, dq, dk, dv);
        if (!bf16 && Widened.any(dOut, q, k, v, out, dq, dk, dv)) {
            widened.attentionBackward(dOut, q, k, v, out, lse, scale, dq, dk, dv);
            return;
        }
        OpChecks.AttentionDims g = OpChecks.attentionBackward(dOut, q, k, v, out, lse, dq, dk, dv, bf16 ? DType.BF16 : DType.F32);
        makeCurrent();
        if (g.empty()) { // no query: the gradients are zero
            zero(dq);
            zero(dk);
            zero(dv);
            return;
        }
        KernelAbi.Kernel kernel = flashKernel(g, true);
        boolean fixedOrder = deterministic;
        int tq = g.tq(), tk = g.tk(), hq = g.hq(), hkv = g.hkv(), d = g.d();
        long qElems = (long) tq * hq * d, kElems = (long) tk * hkv * d, rowsQ = (long) hq * tq;
        // dq is accumulated in f32 per batch element; the deterministic mode's semaphore words follow it
        long semWords = flashBackwardSemaphoreWords(1, hq, tk);
        // bf16 tensors are the kernels' own: used in place; f32 ones go through bf16 copies
        try (Tensor qc = bf16 ? null : toBf16(q); Tensor kc = bf16 ? null : toBf16(k); Tensor vc = bf16 ? null : toBf16(v);
             Tensor oc = bf16 ? null : toBf16(out); Tensor doc = bf16 ? null : toBf16(dOut);
             Tensor delta = allocateUninitialized(DType.F32, g.batch(), hq, tq);
             Tensor dqAccum = allocateUninitialized(DType.F32, qElems + semWords);
             Tensor dqc = bf16 ? null : allocateUninitialized(DType.BF16, q.shape());
             Tensor dkc = bf16 ? null : allocateUninitialized(DType.BF16, k.shape());
             Tensor dvc = bf16 ? null : allocateUninitialized(DType.BF16, k.shape());
             Tensor error = allocateUninitialized(DType.I32, 1)) {
            Tensor qb = bf16 ? q : qc, kb = bf16 ? k : kc, vb = bf16 ? v : vc, ob = bf16 ? out : oc, dob = bf16 ? dOut : doc;
            Tensor dqb = bf16 ? dq : dqc, dkb = bf16 ? dk : dkc, dvb = bf16 ? dv : dvc;
            driver.memsetD32Async(addr(error), 0, 1, stream);
            long cuQ = seqlens(tq, tk), cuK = cuQ + 8;
            KernelAbi.Launch l = flashBackward(tk, hkv, 1, d);
            for (int b = 0; b < g.batch(); b++) {
                long qo = 2 * b * qElems, ko = 2 * b * kElems, ro = 4 * b * rowsQ;
                zero(dqAccum);
                // one warp per (query, head) row: size the grid by warps
                elementwise(FLASH_BWD_PRE, rowsQ * 32, addr(ob) + qo, addr(dob) + qo, addr(delta) + ro, tq, hq, d);
                launch(kernel, l, addr(qb) + qo, addr(kb) + ko, addr(vb) + ko, addr(dob) + qo, addr(lse) + ro, addr(delta) + ro,
                        addr(dqAccum), addr(dkb) + ko, addr(dvb) + ko, cuQ, cuK, 1, tk, hq, hkv, scale,
                        fixedOrder ? (descending ? 2 : 1) : 0, error);
                elementwise(FLASH_BWD_POST, qElems, addr(dqAccum), scale, addr(dqb) + qo, qElems);
            }
            if (fixedOrder) checkFlashBackwardError(kernel, readBack(addr(error), 4).get(ValueLayout.JAVA_INT, 0));
            if (!bf16) {
                elementwise(CAST_BF16_F32, dqb.numel(), dqb, dq, dqb.numel());
                elementwise(CAST_BF16_F32, dkb.numel(), dkb, dk, dkb.numel());
                elementwise(CAST_BF16_F32, dvb.numel(), dvb, dv, dvb.numel());
            }
        }
    }

    /** Turns the flash backward's error word into an exception that names the kernel and the cause (0: nothing). */
    public static void checkFlashBackwardError(KernelAbi.Kernel kernel, int code) {
        if (code == 0) return;
        if (code == KernelAbi.FLASH_BWD_ERR_WAIT_TIMEOUT) {
            throw new CudaKernelException(kernel.name(), code, "TF_FLASH_BWD_ERR_WAIT_TIMEOUT: in the deterministic attention"
                    + " backward a thread block waited more than " + KernelAbi.FLASH_BWD_WAIT_SECONDS + " s for the key block"
                    + " before it, so the GPU did not run the blocks in launch order (compute-sanitizer or MPS can do that), and"
                    + " dQ is incomplete; the non-deterministic backward never waits: " + DETERMINISTIC_ENV
                    + "=0 or CudaBackend.setDeterministic(false)");
        }
        throw new CudaKernelException(kernel.name(), code, "an error code this engine does not know (tenfold_kernels.h)");
    }

    /** The flash kernel for the head dim; other head dims are refused with the op's shapes. */
    private static KernelAbi.Kernel flashKernel(OpChecks.AttentionDims g, boolean backward) {
        return switch (g.d()) {
            case 64 -> backward ? FLASH_BWD_D64 : FLASH_FWD_D64;
            case 128 -> backward ? FLASH_BWD_D128 : FLASH_FWD_D128;
            default -> throw new IllegalArgumentException("attention: head dim " + g.d() + " is not supported on CUDA (the"
                    + " flash kernels take 64 or 128); run this model on the CPU backend");
        };
    }

    /** Device address of int[4] {0, tq, 0, tk}: cu_seqlens of one query sequence and of its keys (cached). */
    private long seqlens(int tq, int tk) {
        long key = ((long) tq << 32) | tk;
        Tensor t = seqlens.get(key);
        if (t == null) {
            t = toDeviceUnlocked(Tensor.ofInts(new int[] {0, tq, 0, tk}));
            seqlens.put(key, t);
        }
        return addr(t);
    }

    private Tensor toDeviceUnlocked(Tensor host) {
        try (host) {
            Tensor t = allocateUninitialized(host.dtype(), host.shape());
            driver.copyHostToDeviceAsync(addr(t), host.data(), host.byteSize(), stream);
            driver.streamSynchronize(stream);
            return t;
        }
    }

    // ------------------------------------------------------------------ cross-entropy (chunked)

    @Override
    public synchronized LossSum crossEntropy(Tensor hidden, Tensor weight, Tensor targets, float gradScale, Tensor dHidden,
                                             Tensor dWeight) {
        String op = "crossEntropy";
        if (Widened.any(hidden, dHidden)) {
            OpChecks.onDevice(op, device, new String[] {"hidden", "weight", "targets", "dHidden", "dWeight"},
                    hidden, weight, targets, dHidden, dWeight);
            return widened.crossEntropy(hidden, weight, targets, gradScale, dHidden, dWeight);
        }
        int[] d = OpChecks.crossEntropy(hidden, weight, targets, dHidden, dWeight);
        OpChecks.onDevice(op, device, new String[] {"hidden", "weight", "targets", "dHidden", "dWeight"},
                hidden, weight, targets, dHidden, dWeight);
        int t = d[0], h = d[1], v = d[2];
        if (t == 0) return new LossSum(0, 0);
        makeCurrent();
        int[] y = readInts(targets);
        for (int i = 0; i < t; i++) {
            if (y[i] != IGNORE && (y[i] < 0 || y[i] >= v)) {
                throw Check.fail(op, "target " + y[i] + " at position " + i + " is out of range [0, " + v
                        + ") and not the ignore index " + IGNORE, hidden, weight, targets);
            }
        }
        if (dHidden != null) zero(dHidden);
        if (v == 0) return new LossSum(0, 0); // every target was the ignore index
        boolean grads = dHidden != null || dWeight != null, bf16 = weight.dtype() == DType.BF16;
        int tc = Math.min(CE_TOKEN_CHUNK, t), vc = Math.min(CE_VOCAB_CHUNK, v), chunks = Math.ceilDiv(t, tc);
        Tensor ids = targets.view(t);
        try (Tensor logits = allocateUninitialized(DType.F32, (long) tc * vc);
             Tensor logits16 = bf16 && dHidden != null ? allocateUninitialized(DType.BF16, (long) tc * vc) : null;
             Tensor hidden16 = bf16 ? allocateUninitialized(DType.BF16, (long) tc * h) : null;
             Tensor rowMax = allocateUninitialized(DType.F32, tc);
             Tensor rowSum = allocateUninitialized(DType.F32, tc);
             Tensor targetLogit = allocate(DType.F32, tc);
             Tensor losses = allocate(DType.F64, chunks);
             Tensor counts = allocate(DType.I64, chunks)) {
            for (int c = 0; c < chunks; c++) {
                int t0 = c * tc, nt = Math.min(tc, t - t0);
                Tensor hid = hidden.slice(t0, t0 + nt), tgt = ids.slice(t0, t0 + nt);
                Tensor hidOperand = hid; // the logits product multiplies in the weight's type
                if (bf16) {
                    hidOperand = view(hidden16, DType.BF16, nt, h);
                    elementwise(CAST_F32_BF16, (long) nt * h, hid, hidOperand, (long) nt * h);
                }
                elementwise(FILL_F32, nt, rowMax, Float.NEGATIVE_INFINITY, (long) nt);
                elementwise(FILL_F32, nt, rowSum, 0f, (long) nt);
                for (int v0 = 0; v0 < v; v0 += vc) { // pass 1: online max and sum of exponentials per token
                    int nv = Math.min(vc, v - v0);
                    Tensor chunk = view(logits, DType.F32, nt, nv);
                    gemm(hidOperand, false, weight.slice(v0, v0 + nv), true, chunk, false);
                    launch(CE_STATS_F32, rows(nt), chunk, tgt, nt, nv, v0, rowMax, rowSum, targetLogit);
                }
                launch(CE_LOSS_F32, singleBlock(), rowMax, rowSum, targetLogit, tgt, nt, addr(losses) + 8L * c, addr(counts) + 8L * c);
                if (!grads) continue;
                for (int v0 = 0; v0 < v; v0 += vc) { // pass 2: recompute the logits, turn them into gradients, back-propagate
                    int nv = Math.min(vc, v - v0);
                    Tensor chunk = view(logits, DType.F32, nt, nv), w = weight.slice(v0, v0 + nv);
                    gemm(hidOperand, false, w, true, chunk, false);
                    launch(CE_GRAD_F32, rows(nt), chunk, tgt, rowMax, rowSum, gradScale, nt, nv, v0);
                    if (dHidden != null) {
                        Tensor dl = chunk;
                        if (bf16) {
                            dl = view(logits16, DType.BF16, nt, nv);
                            elementwise(CAST_F32_BF16, (long) nt * nv, chunk, dl, (long) nt * nv);
                        }
                        gemm(dl, false, w, false, dHidden.slice(t0, t0 + nt), true);
                    }
                    if (dWeight != null) gemm(chunk, true, hid, false, dWeight.slice(v0, v0 + nv), true);
                }
            }
            MemorySegment l = readBack(addr(losses), 8L * chunks);
            double loss = 0;
            for (int c = 0; c < chunks; c++) loss += l.getAtIndex(ValueLayout.JAVA_DOUBLE, c);
            MemorySegment n = readBack(addr(counts), 8L * chunks);
            long count = 0;
            for (int c = 0; c < chunks; c++) count += n.getAtIndex(ValueLayout.JAVA_LONG, c);
            return new LossSum(loss, count);
        }
    }

    // ------------------------------------------------------------------ optimizer

    @Override
    public synchronized void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp, long step) {
        long n = OpChecks.adamw(param, grad, m, v, hp, step);
        OpChecks.onDevice("adamw", device, new String[] {"param", "grad", "m", "v"}, param, grad, m, v);
        // As the CPU backend: the hyper-parameters as the decimals they were written as, bias corrections in double.
        double b1 = decimal(hp.beta1()), b2 = decimal(hp.beta2());
        float bc1 = (float) (1 - Math.pow(b1, step)), bc2 = (float) (1 - Math.pow(b2, step));
        elementwise(ADAMW_F32, n, param, grad, m, v, hp.lr(), hp.beta1(), hp.beta2(), hp.eps(), hp.weightDecay(), bc1, bc2, n);
    }

    private static double decimal(float f) { return Double.parseDouble(Float.toString(f)); }

    // ------------------------------------------------------------------ reductions (two fixed stages: deterministic)

    @Override
    public synchronized double sum(Tensor x) { return sumOf("sum", SUM_PARTIAL_F32, x); }

    @Override
    public synchronized double sumOfSquares(Tensor x) { return sumOf("sumOfSquares", SUMSQ_PARTIAL_F32, x); }

    /** sum and sumOfSquares: partials per block, folded in order into one double, read back. */
    private double sumOf(String op, KernelAbi.Kernel partialKernel, Tensor x) {
        long n = OpChecks.reduction(op, x);
        OpChecks.onDevice(op, device, new String[] {"x"}, x);
        if (n == 0) return 0;
        makeCurrent();
        try (Tensor result = allocateUninitialized(DType.F64, 1)) {
            sumInto(partialKernel, x, n, addr(result));
            return readBack(addr(result), 8).get(ValueLayout.JAVA_DOUBLE, 0);
        }
    }

    @Override
    public synchronized float max(Tensor x) {
        long n = OpChecks.reduction("max", x);
        OpChecks.onDevice("max", device, new String[] {"x"}, x);
        if (n == 0) return Float.NEGATIVE_INFINITY;
        makeCurrent();
        try (Tensor partial = allocateUninitialized(DType.F32, REDUCE_BLOCKS); Tensor result = allocateUninitialized(DType.F32, 1)) {
            launch(MAX_PARTIAL_F32, reducePartial(), x, n, partial);
            launch(MAX_FINAL_F32, singleBlock(), partial, REDUCE_BLOCKS, result);
            return readBack(addr(result), 4).get(ValueLayout.JAVA_FLOAT, 0);
        }
    }

    /** Every tensor's sum of squares into one device array, read back once, added in order. */
    @Override
    public synchronized double globalNorm(List<Tensor> tensors) {
        for (Tensor t : tensors) {
            OpChecks.reduction("sumOfSquares", t);
            OpChecks.onDevice("sumOfSquares", device, new String[] {"x"}, t);
        }
        if (tensors.isEmpty()) return 0;
        makeCurrent();
        try (Tensor results = allocate(DType.F64, tensors.size())) {
            for (int i = 0; i < tensors.size(); i++) {
                Tensor t = tensors.get(i);
                if (t.numel() > 0) sumInto(SUMSQ_PARTIAL_F32, t, t.numel(), addr(results) + 8L * i);
            }
            double s = 0;
            for (double part : readDoubles(results)) s += part;
            return Math.sqrt(s);
        }
    }

    private void sumInto(KernelAbi.Kernel partialKernel, Tensor x, long n, long result) {
        try (Tensor partial = allocateUninitialized(DType.F64, REDUCE_BLOCKS)) {
            launch(partialKernel, reducePartial(), x, n, partial);
            launch(SUM_FINAL_F64, singleBlock(), partial, REDUCE_BLOCKS, result);
        }
    }

    // ------------------------------------------------------------------ NF4

    @Override
    public synchronized void dequantizeNf4(Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode, float offset,
                                           Tensor out) {
        long n = OpChecks.nf4(packed, absmax, nestedAbsmax, nestedCode, out);
        OpChecks.onDevice("dequantizeNf4", device, new String[] {"packed", "absmax", "nestedAbsmax", "nestedCode", "out"},
                packed, absmax, nestedAbsmax, nestedCode, out);
        boolean nested = absmax.dtype() == DType.U8;
        // grid-stride over the packed bytes (n / 2); n is the element count
        elementwise(out.dtype() == DType.BF16 ? NF4_DEQUANT_BF16 : NF4_DEQUANT_F32, n / 2, packed, nested ? null : absmax,
                nested ? absmax : null, nested ? nestedAbsmax : null, nested ? nestedCode : null, offset, out, n);
    }

    // ------------------------------------------------------------------ raw launches (benchmarks)

    /**
     * Launches one kernel of the fatbin on this backend's stream, in order with every op: for benchmarks
     * that time a kernel without an op's wrapper (the flash kernels on bf16 buffers, one cross-entropy
     * pass). Only the arguments' count and kinds are checked ({@code KernelArgs}); sizes and pointers are
     * the caller's business, and a wrong one is a CUDA_ERROR_ILLEGAL_ADDRESS that ends this process's
     * use of the GPU. Tensors passed as arguments must stay open until the work is done.
     */
    public synchronized void launchKernel(KernelAbi.Kernel kernel, KernelAbi.Launch launch, Object... args) {
        if (kernel == null || launch == null) throw new IllegalArgumentException("launchKernel: kernel and launch are required");
        makeCurrent();
        launch(kernel, launch, args);
    }

    // ------------------------------------------------------------------ helpers

    private static long addr(Tensor t) { return t.data().address(); }

    private void launch(KernelAbi.Kernel kernel, KernelAbi.Launch l, Object... args) {
        kernels.launch(kernel, l, stream, args);
    }

    /** A grid-stride launch over {@code n} items (nothing when n is 0). */
    private void elementwise(KernelAbi.Kernel kernel, long n, Object... args) {
        if (n <= 0) return;
        makeCurrent();
        launch(kernel, KernelAbi.elementwise(n), args);
    }

    private void zero(Tensor t) {
        if (t.byteSize() == 0) return;
        makeCurrent();
        driver.memsetD8Async(addr(t), (byte) 0, t.byteSize(), stream);
    }

    /** A BF16 copy of an F32 tensor, in scratch (the caller closes it). */
    private Tensor toBf16(Tensor f32) {
        Tensor t = allocateUninitialized(DType.BF16, f32.shape());
        elementwise(CAST_F32_BF16, f32.numel(), f32, t, f32.numel());
        return t;
    }

    /** The front of a scratch tensor seen as [rows, cols] of dtype. */
    private Tensor view(Tensor scratch, DType dtype, int rows, int cols) {
        long bytes = dtype.byteSize((long) rows * cols);
        return Tensor.wrap(scratch.data().asSlice(0, bytes), device, dtype, rows, cols);
    }

    /** Copies device bytes into the pinned buffer and waits; valid until the next read-back. */
    private MemorySegment readBack(long src, long bytes) {
        if (bytes > PINNED_BYTES) throw new IllegalStateException("read-back of " + bytes + " bytes exceeds the pinned buffer");
        driver.copyDeviceToHostAsync(pinned, src, bytes, stream);
        driver.streamSynchronize(stream);
        return pinned.asSlice(0, bytes);
    }

    private int[] readInts(Tensor t) {
        if (t.byteSize() <= PINNED_BYTES) return readBack(addr(t), t.byteSize()).toArray(ValueLayout.JAVA_INT);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment to = arena.allocate(t.byteSize(), 64);
            driver.copyDeviceToHostAsync(to, addr(t), t.byteSize(), stream);
            driver.streamSynchronize(stream);
            return to.toArray(ValueLayout.JAVA_INT);
        }
    }

    private double[] readDoubles(Tensor t) {
        if (t.byteSize() <= PINNED_BYTES) return readBack(addr(t), t.byteSize()).toArray(ValueLayout.JAVA_DOUBLE);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment to = arena.allocate(t.byteSize(), 64);
            driver.copyDeviceToHostAsync(to, addr(t), t.byteSize(), stream);
            driver.streamSynchronize(stream);
            return to.toArray(ValueLayout.JAVA_DOUBLE);
        }
    }

    @Override
    public String toString() { return "CudaBackend " + device + " (" + gpuName + ", sm_" + ccMajor + ccMinor + ")"; }
}
