package dev.tenfold.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tenfold.engine.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The weights of a Hugging Face model folder: either one {@code model.safetensors} or shards
 * listed by {@code model.safetensors.index.json} ({@code {"weight_map": {tensor: shard file}}}).
 *
 * <p>Each shard is opened (mapped and validated) once. Every tensor the index names must be in
 * the shard it names; shard names must be plain file names inside the folder, so an index cannot
 * reach files elsewhere ("../x", "/etc/x"). Symbolic links inside the folder are followed, as the
 * Hugging Face cache links snapshot files to blobs. Tensors a shard holds but the index does not
 * list are not exposed: the index is the model's table of contents.
 */
public final class SafeTensorsModel implements AutoCloseable {
    public static final String INDEX_FILE = "model.safetensors.index.json";
    public static final String SINGLE_FILE = "model.safetensors";

    private final Path source;
    private final List<SafeTensorsFile> files;
    private final Map<String, SafeTensorsFile> byName; // index (or header) order

    private SafeTensorsModel(Path source, List<SafeTensorsFile> files, Map<String, SafeTensorsFile> byName) {
        this.source = source;
        this.files = files;
        this.byName = byName;
    }

    /**
     * Opens a model folder (index first, else the single file), or directly a {@code .safetensors}
     * file or an {@code .index.json} file. Problems are {@link SafeTensorsException}s naming the file.
     */
    public static SafeTensorsModel open(Path path) {
        if (path == null) throw new IllegalArgumentException("model path is null");
        if (Files.isDirectory(path)) {
            Path index = path.resolve(INDEX_FILE);
            if (Files.exists(index)) return openIndex(index);
            Path single = path.resolve(SINGLE_FILE);
            if (Files.exists(single)) return openSingle(single);
            throw new SafeTensorsException(path + ": no weights found; looked for " + INDEX_FILE + " and " + SINGLE_FILE);
        }
        if (!Files.exists(path)) throw new SafeTensorsException(path + ": no such file or folder");
        Path name = path.getFileName();
        return name != null && name.toString().endsWith(".index.json") ? openIndex(path) : openSingle(path);
    }

    private static SafeTensorsModel openSingle(Path file) {
        SafeTensorsFile f = SafeTensorsFile.open(file);
        Map<String, SafeTensorsFile> byName = new LinkedHashMap<>();
        for (String n : f.names()) byName.put(n, f);
        return new SafeTensorsModel(file, List.of(f), Collections.unmodifiableMap(byName));
    }

    private static SafeTensorsModel openIndex(Path index) {
        Map<String, String> weightMap = readWeightMap(index);
        Path dir = index.toAbsolutePath().getParent();

        // Group tensors by shard (first-seen order) so each shard is opened exactly once.
        Map<String, List<String>> byShard = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : weightMap.entrySet()) {
            checkShardName(index, dir, e.getKey(), e.getValue());
            byShard.computeIfAbsent(e.getValue(), k -> new ArrayList<>()).add(e.getKey());
        }

        Map<String, SafeTensorsFile> shards = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, List<String>> e : byShard.entrySet()) {
                List<String> tensors = e.getValue();
                SafeTensorsFile f;
                try {
                    f = SafeTensorsFile.open(dir.resolve(e.getKey()));
                } catch (SafeTensorsException x) {
                    throw new SafeTensorsException(index + ": shard " + StrictJson.quote(e.getKey()) + " (holding " + tensors.size()
                            + " tensors, e.g. " + StrictJson.quote(tensors.get(0)) + ") cannot be opened: " + x.getMessage(), x);
                }
                shards.put(e.getKey(), f);
                for (String t : tensors) {
                    if (!f.has(t)) {
                        throw new SafeTensorsException(index + ": tensor " + StrictJson.quote(t) + " is mapped to shard " + StrictJson.quote(e.getKey())
                                + " but that shard does not contain it");
                    }
                }
            }
        } catch (RuntimeException | Error e) {
            for (SafeTensorsFile f : shards.values()) f.close();
            throw e;
        }
        Map<String, SafeTensorsFile> byName = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : weightMap.entrySet()) byName.put(e.getKey(), shards.get(e.getValue()));
        return new SafeTensorsModel(index, List.copyOf(shards.values()), Collections.unmodifiableMap(byName));
    }

    /** Reads {@code weight_map} from the index, with the same size bound and strict JSON as headers. */
    static Map<String, String> readWeightMap(Path index) {
        byte[] bytes;
        try {
            if (!Files.isRegularFile(index)) throw new SafeTensorsException(index + ": not a regular file");
            long size = Files.size(index);
            if (size > StrictJson.MAX_BYTES) {
                throw new SafeTensorsException(index + ": index is " + size + " bytes, over the " + StrictJson.MAX_BYTES + "-byte limit");
            }
            bytes = Files.readAllBytes(index);
        } catch (IOException e) {
            throw new SafeTensorsException(index + ": cannot read: " + e, e);
        }
        JsonNode root = StrictJson.parse(bytes, bytes.length, index.toString());
        if (!root.isObject()) throw new SafeTensorsException(index + ": index is not a JSON object");
        JsonNode wm = root.get("weight_map");
        if (wm == null) throw new SafeTensorsException(index + ": index has no weight_map");
        if (!wm.isObject()) throw new SafeTensorsException(index + ": weight_map is not a JSON object");
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : wm.properties()) {
            if (!e.getValue().isTextual()) {
                throw new SafeTensorsException(index + ": weight_map entry for tensor " + StrictJson.quote(e.getKey()) + " is not a file name string");
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
        return out;
    }

    /** A shard must be a plain file name in the index's folder: no separators, no "." or "..". */
    private static void checkShardName(Path index, Path dir, String tensor, String shard) {
        boolean plain = !shard.isEmpty() && !shard.equals(".") && !shard.equals("..")
                && shard.indexOf('/') < 0 && shard.indexOf('\\') < 0 && shard.indexOf('\0') < 0;
        if (plain) {
            try {
                Path p = dir.resolve(shard);
                // Belt and braces for platforms with other path syntax (drive letters, ...).
                plain = dir.equals(p.getParent()) && shard.equals(p.getFileName().toString());
            } catch (InvalidPathException e) {
                plain = false;
            }
        }
        if (!plain) {
            throw new SafeTensorsException(index + ": tensor " + StrictJson.quote(tensor) + " is mapped to shard " + StrictJson.quote(shard)
                    + ", which is not a plain file name in " + dir + " (path traversal is refused)");
        }
    }

    // ---------------------------------------------------------------- access

    /** The index or single file this model was opened from. */
    public Path source() { return source; }

    /** Tensor names in index order (or header order for a single file). */
    public List<String> names() { return List.copyOf(byName.keySet()); }

    public boolean has(String name) { return byName.containsKey(name); }

    public int size() { return byName.size(); }

    /** The opened files, each once, in the order first referenced. */
    public List<SafeTensorsFile> files() { return files; }

    /** The file holding {@code name}; unknown names throw {@link IllegalArgumentException}. */
    public SafeTensorsFile file(String name) {
        SafeTensorsFile f = byName.get(name);
        if (f == null) throw new IllegalArgumentException("no tensor '" + name + "' in " + source);
        return f;
    }

    public TensorInfo info(String name) { return file(name).info(name); }

    /** A read-only view into the mapped shard, valid until this model is closed. */
    public Tensor tensor(String name) { return file(name).tensor(name); }

    /** Unmaps every shard; closing twice is harmless. */
    @Override
    public void close() {
        for (SafeTensorsFile f : files) f.close();
    }

    @Override
    public String toString() { return "SafeTensorsModel " + source + " (" + byName.size() + " tensors in " + files.size() + " files)"; }
}
