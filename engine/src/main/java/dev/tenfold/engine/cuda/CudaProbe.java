package dev.tenfold.engine.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What CUDA this machine offers, found through hand-written FFM downcalls (no JCuda): the driver
 * (libcuda.so.1) with its version and GPUs, cuBLAS and NCCL with theirs. Never throws: a missing
 * piece is reported with the reason, so `tenfold doctor` can say it plainly.
 */
public final class CudaProbe {
    private CudaProbe() {}

    public record Gpu(int index, String name, long totalBytes, int major, int minor) {}

    /** The result: each part either found (with a version) or missing (with why). */
    public record Report(String driver, String driverProblem, List<Gpu> gpus, String cublas, String cublasProblem,
                         String nccl, String ncclProblem) {
        public boolean hasGpu() { return !gpus.isEmpty(); }
    }

    static final List<String> DRIVER = List.of("libcuda.so.1", "libcuda.so");
    static final List<String> CUBLAS = List.of("libcublas.so.13", "libcublas.so.12", "libcublas.so");
    static final List<String> NCCL = List.of("libnccl.so.2", "libnccl.so");
    private static final int ATTR_CC_MAJOR = 75, ATTR_CC_MINOR = 76; // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_*

    public static Report probe() {
        String driver = null, driverProblem = null, cublas = null, cublasProblem = null, nccl = null, ncclProblem = null;
        List<Gpu> gpus = new ArrayList<>();
        List<String> tried = new ArrayList<>();
        Optional<NativeLibrary.Found> cuda = NativeLibrary.find(DRIVER, tried);
        if (cuda.isEmpty()) {
            driverProblem = "no CUDA driver (" + String.join("; ", tried) + ")";
        } else {
            try (Arena arena = Arena.ofConfined()) {
                SymbolLookup l = cuda.get().lookup();
                MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
                int rc = (int) fn(l, "cuInit", ValueLayout.JAVA_INT).invokeExact(0);
                if (rc != 0) {
                    driverProblem = "cuInit failed with CUresult " + rc + " (no usable GPU, or a driver/library mismatch)";
                } else {
                    check((int) fn(l, "cuDriverGetVersion", ValueLayout.ADDRESS).invokeExact(out), "cuDriverGetVersion");
                    int v = out.get(ValueLayout.JAVA_INT, 0);
                    driver = (v / 1000) + "." + (v % 1000) / 10 + " (" + cuda.get().loaded() + ")";
                    check((int) fn(l, "cuDeviceGetCount", ValueLayout.ADDRESS).invokeExact(out), "cuDeviceGetCount");
                    int count = out.get(ValueLayout.JAVA_INT, 0);
                    MethodHandle get = fn(l, "cuDeviceGet", ValueLayout.ADDRESS, ValueLayout.JAVA_INT);
                    MethodHandle name = fn(l, "cuDeviceGetName", ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT);
                    MethodHandle mem = fn(l, "cuDeviceTotalMem_v2", ValueLayout.ADDRESS, ValueLayout.JAVA_INT);
                    MethodHandle attr = fn(l, "cuDeviceGetAttribute", ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT);
                    MemorySegment text = arena.allocate(256);
                    MemorySegment bytes = arena.allocate(ValueLayout.JAVA_LONG);
                    for (int i = 0; i < count; i++) {
                        check((int) get.invokeExact(out, i), "cuDeviceGet");
                        int dev = out.get(ValueLayout.JAVA_INT, 0);
                        check((int) name.invokeExact(text, 256, dev), "cuDeviceGetName");
                        check((int) mem.invokeExact(bytes, dev), "cuDeviceTotalMem");
                        check((int) attr.invokeExact(out, ATTR_CC_MAJOR, dev), "cuDeviceGetAttribute");
                        int major = out.get(ValueLayout.JAVA_INT, 0);
                        check((int) attr.invokeExact(out, ATTR_CC_MINOR, dev), "cuDeviceGetAttribute");
                        gpus.add(new Gpu(i, text.getString(0), bytes.get(ValueLayout.JAVA_LONG, 0), major, out.get(ValueLayout.JAVA_INT, 0)));
                    }
                }
            } catch (Throwable e) {
                driverProblem = "CUDA driver query failed: " + e.getMessage();
            }
        }
        tried.clear();
        Optional<NativeLibrary.Found> blas = NativeLibrary.find(CUBLAS, tried);
        if (blas.isEmpty()) {
            cublasProblem = "not found (" + String.join("; ", tried) + "); set " + NativeLibrary.SEARCH_PATH_ENV + " to its folder";
        } else {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
                MethodHandle prop = fn(blas.get().lookup(), "cublasGetProperty", ValueLayout.JAVA_INT, ValueLayout.ADDRESS);
                int[] v = new int[3];
                for (int k = 0; k < 3; k++) { // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
                    check((int) prop.invokeExact(k, out), "cublasGetProperty");
                    v[k] = out.get(ValueLayout.JAVA_INT, 0);
                }
                cublas = v[0] + "." + v[1] + "." + v[2] + " (" + blas.get().loaded() + ")";
            } catch (Throwable e) {
                cublasProblem = "cuBLAS found but its version query failed: " + e.getMessage();
            }
        }
        tried.clear();
        Optional<NativeLibrary.Found> ncclLib = NativeLibrary.find(NCCL, tried);
        if (ncclLib.isEmpty()) {
            ncclProblem = "not found (" + String.join("; ", tried) + "); set " + NativeLibrary.SEARCH_PATH_ENV + " to its folder";
        } else {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
                check((int) fn(ncclLib.get().lookup(), "ncclGetVersion", ValueLayout.ADDRESS).invokeExact(out), "ncclGetVersion");
                int v = out.get(ValueLayout.JAVA_INT, 0); // major*10000 + minor*100 + patch since NCCL 2.9
                nccl = (v / 10000) + "." + (v % 10000) / 100 + "." + (v % 100) + " (" + ncclLib.get().loaded() + ")";
            } catch (Throwable e) {
                ncclProblem = "NCCL found but its version query failed: " + e.getMessage();
            }
        }
        return new Report(driver, driverProblem, gpus, cublas, cublasProblem, nccl, ncclProblem);
    }

    /** A downcall handle returning int (a CUresult or status) with the given argument layouts. */
    static MethodHandle fn(SymbolLookup lookup, String name, ValueLayout... args) {
        MemorySegment symbol = lookup.find(name).orElseThrow(() -> new IllegalStateException("symbol " + name + " not found"));
        return Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.of(ValueLayout.JAVA_INT, args));
    }

    private static void check(int status, String call) {
        if (status != 0) throw new IllegalStateException(call + " returned status " + status);
    }
}
