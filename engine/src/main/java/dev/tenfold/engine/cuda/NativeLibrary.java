package dev.tenfold.engine.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Finds a native library by soname with version fallbacks (libcublas.so.13, then .so.12): first in
 * the folders of the TENFOLD_CUDA_LIBS environment variable (colon-separated; on GPU machines
 * cuBLAS and NCCL often live only inside PyTorch's wheels), then through the system loader path.
 */
public final class NativeLibrary {
    private NativeLibrary() {}

    public static final String SEARCH_PATH_ENV = "TENFOLD_CUDA_LIBS";

    /** A library that was found: its lookup (valid for the JVM's life) and what was loaded. */
    public record Found(SymbolLookup lookup, String loaded) {}

    /** The first of {@code sonames} that loads, or empty with the reasons in {@code tried}. */
    public static Optional<Found> find(List<String> sonames, List<String> tried) {
        List<Path> dirs = new ArrayList<>();
        String extra = System.getenv(SEARCH_PATH_ENV);
        if (extra != null) for (String d : extra.split(":")) if (!d.isBlank()) dirs.add(Path.of(d.trim()));
        for (String soname : sonames) {
            for (Path dir : dirs) {
                Path candidate = dir.resolve(soname);
                if (!Files.exists(candidate)) continue;
                Optional<Found> f = tryLoad(candidate.toString(), tried);
                if (f.isPresent()) return f;
            }
            Optional<Found> f = tryLoad(soname, tried);
            if (f.isPresent()) return f;
        }
        return Optional.empty();
    }

    private static Optional<Found> tryLoad(String nameOrPath, List<String> tried) {
        try {
            // the global arena: a driver library stays loaded for the life of the process
            return Optional.of(new Found(SymbolLookup.libraryLookup(nameOrPath, Arena.global()), nameOrPath));
        } catch (IllegalArgumentException e) {
            String reason = loaderReason(nameOrPath);
            if (reason == null) tried.add(nameOrPath + ": " + e.getMessage());
            else tried.add(reason.startsWith(nameOrPath) ? reason : nameOrPath + ": " + reason);
            return Optional.empty();
        }
    }

    // libc's dlopen/dlerror/dlclose: SymbolLookup.libraryLookup says only "Cannot open library"; the loader says why
    private static final MethodHandle DLOPEN, DLERROR, DLCLOSE;
    private static final int RTLD_LAZY = 1; // glibc; RTLD_LOCAL is 0

    static {
        Linker linker = Linker.nativeLinker();
        SymbolLookup libc = linker.defaultLookup();
        Optional<MemorySegment> open = libc.find("dlopen"), error = libc.find("dlerror"), close = libc.find("dlclose");
        boolean all = open.isPresent() && error.isPresent() && close.isPresent();
        DLOPEN = all ? linker.downcallHandle(open.get(), FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT)) : null;
        DLERROR = all ? linker.downcallHandle(error.get(), FunctionDescriptor.of(ValueLayout.ADDRESS)) : null;
        DLCLOSE = all ? linker.downcallHandle(close.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS)) : null;
    }

    /**
     * The dynamic loader's own reason for not loading {@code nameOrPath} (dlerror after a dlopen of it, e.g. "...:
     * cannot open shared object file: No such file or directory", "...: invalid ELF header", "...: undefined symbol:
     * ..."), or null when the loader is not reachable or the library loads now.
     */
    static String loaderReason(String nameOrPath) {
        if (DLOPEN == null) return null;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocateFrom(nameOrPath);
            MemorySegment handle = (MemorySegment) DLOPEN.invokeExact(name, RTLD_LAZY);
            if (handle.address() != 0) {
                int ignored = (int) DLCLOSE.invokeExact(handle);
                return null;
            }
            return Native.cString((MemorySegment) DLERROR.invokeExact());
        } catch (Throwable t) {
            return null;
        }
    }
}
