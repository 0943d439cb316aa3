package dev.tenfold.qlora;

import dev.tenfold.engine.io.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** What a Hugging Face model folder carries beside its weights, for the commands that write one. */
public final class ModelFolder {
    private ModelFolder() {}

    /** The tokenizer and generation files copied into every model folder tenfold writes. */
    public static final List<String> SIDE_FILES = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "generation_config.json");

    /** Copies the side files that {@code from} has into {@code to}, each atomically; returns how many. */
    public static int copySideFiles(Path from, Path to) throws IOException {
        int n = 0;
        for (String f : SIDE_FILES) {
            Path src = from.resolve(f);
            if (Files.isRegularFile(src)) {
                AtomicFiles.write(to.resolve(f), Files.readAllBytes(src));
                n++;
            }
        }
        return n;
    }
}
