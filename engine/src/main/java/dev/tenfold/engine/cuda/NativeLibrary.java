package dev.tenfold.engine.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
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
            tried.add(nameOrPath + ": " + e.getMessage());
            return Optional.empty();
        }
    }
}
