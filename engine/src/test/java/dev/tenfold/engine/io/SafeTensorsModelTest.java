package dev.tenfold.engine.io;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Model folders: a single file, shards with an index, and indexes that lie or escape the folder. */
class SafeTensorsModelTest {
    @TempDir Path dir;

    private static final String SHARD1 = "model-00001-of-00002.safetensors";
    private static final String SHARD2 = "model-00002-of-00002.safetensors";

    /** Two shards: shard 1 holds embed and layer 0, shard 2 holds layer 1, norm and an unlisted extra. */
    private void writeShards(Path folder) {
        try (Tensor embed = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
             Tensor l0 = Tensor.of(new float[] {7, 8}, 2);
             Tensor l1 = Tensor.of(new float[] {9, 10}, 2);
             Tensor norm = Tensor.allocate(DType.BF16, 2);
             Tensor extra = Tensor.of(new float[] {0}, 1)) {
            norm.copyFrom(new float[] {0.5f, -1f});
            Map<String, Tensor> s1 = new LinkedHashMap<>();
            s1.put("model.embed_tokens.weight", embed);
            s1.put("model.layers.0.w", l0);
            SafeTensorsWriter.write(folder.resolve(SHARD1), s1, Map.of("format", "pt"));
            Map<String, Tensor> s2 = new LinkedHashMap<>();
            s2.put("model.norm.weight", norm);
            s2.put("model.layers.1.w", l1);
            s2.put("unlisted", extra);
            SafeTensorsWriter.write(folder.resolve(SHARD2), s2, Map.of("format", "pt"));
        }
    }

    private Map<String, String> goodMap() {
        Map<String, String> wm = new LinkedHashMap<>();
        wm.put("model.embed_tokens.weight", SHARD1);
        wm.put("model.layers.0.w", SHARD1);
        wm.put("model.layers.1.w", SHARD2);
        wm.put("model.norm.weight", SHARD2);
        return wm;
    }

    private SafeTensorsException assertBadIndex(Map<String, String> wm, String... keywords) {
        SafeTensorsWriter.writeIndex(dir.resolve(SafeTensorsModel.INDEX_FILE), wm, 0);
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsModel.open(dir).close());
        for (String k : keywords) assertTrue(e.getMessage().contains(k), "message should mention '" + k + "': " + e.getMessage());
        return e;
    }

    @Test
    void shardedModelThroughIndex() {
        writeShards(dir);
        SafeTensorsWriter.writeIndex(dir.resolve(SafeTensorsModel.INDEX_FILE), goodMap(), 1234);
        try (SafeTensorsModel m = SafeTensorsModel.open(dir)) {
            assertEquals(List.copyOf(goodMap().keySet()), m.names());
            assertEquals(2, m.files().size(), "each shard opened once");
            assertTrue(m.has("model.norm.weight"));
            assertFalse(m.has("unlisted"), "the index is the table of contents");
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, m.tensor("model.embed_tokens.weight").toFloatArray());
            assertArrayEquals(new long[] {3, 2}, m.info("model.embed_tokens.weight").shape());
            assertArrayEquals(new float[] {9, 10}, m.tensor("model.layers.1.w").toFloatArray());
            assertArrayEquals(new float[] {0.5f, -1f}, m.tensor("model.norm.weight").toFloatArray());
            assertEquals(DType.BF16, m.info("model.norm.weight").dtype());
            assertEquals(dir.resolve(SHARD2).toAbsolutePath(), m.file("model.layers.1.w").path().toAbsolutePath());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.tensor("nope"));
            assertTrue(e.getMessage().contains("nope"), e.getMessage());
        }
        // Opening the index file directly works too.
        try (SafeTensorsModel m = SafeTensorsModel.open(dir.resolve(SafeTensorsModel.INDEX_FILE))) {
            assertEquals(4, m.size());
        }
    }

    @Test
    void singleFileModel() {
        try (Tensor t = Tensor.of(new float[] {3, 4})) {
            SafeTensorsWriter.write(dir.resolve(SafeTensorsModel.SINGLE_FILE), Map.of("lm_head.weight", t), null);
        }
        try (SafeTensorsModel m = SafeTensorsModel.open(dir)) {
            assertEquals(List.of("lm_head.weight"), m.names());
            assertArrayEquals(new float[] {3, 4}, m.tensor("lm_head.weight").toFloatArray());
        }
        try (SafeTensorsModel m = SafeTensorsModel.open(dir.resolve(SafeTensorsModel.SINGLE_FILE))) {
            assertEquals(1, m.size());
        }
    }

    @Test
    void emptyFolderSaysWhatItLookedFor() {
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsModel.open(dir));
        assertTrue(e.getMessage().contains(SafeTensorsModel.INDEX_FILE) && e.getMessage().contains(SafeTensorsModel.SINGLE_FILE),
                e.getMessage());
    }

    @Test
    void indexNamesATensorItsShardLacks() {
        writeShards(dir);
        Map<String, String> wm = goodMap();
        wm.put("model.layers.0.w", SHARD2); // it is in shard 1
        assertBadIndex(wm, "model.layers.0.w", SHARD2, "does not contain");
    }

    @Test
    void indexNamesAMissingShard() {
        writeShards(dir);
        Map<String, String> wm = goodMap();
        wm.put("lm_head.weight", "model-00003-of-00003.safetensors");
        assertBadIndex(wm, "lm_head.weight", "model-00003-of-00003.safetensors", "no such file");
    }

    @Test
    void indexNamesACorruptShard() throws Exception {
        writeShards(dir);
        byte[] b = Files.readAllBytes(dir.resolve(SHARD2));
        Files.write(dir.resolve(SHARD2), java.util.Arrays.copyOf(b, b.length - 1));
        assertBadIndex(goodMap(), SHARD2, "truncated");
    }

    @Test
    void pathTraversalIsRefused() throws Exception {
        Path inner = Files.createDirectory(dir.resolve("inner"));
        writeShards(inner);
        // A real, valid file outside the model folder: it must not be reachable through the index.
        Files.copy(inner.resolve(SHARD1), dir.resolve("outside.safetensors"));
        for (String evil : new String[] {"../outside.safetensors", "../inner/" + SHARD1, "./" + SHARD1,
                dir.resolve("outside.safetensors").toAbsolutePath().toString(), "..", ".", "", "sub\\x.safetensors"}) {
            Map<String, String> wm = goodMap();
            wm.put("model.layers.0.w", evil);
            SafeTensorsWriter.writeIndex(inner.resolve(SafeTensorsModel.INDEX_FILE), wm, 0);
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsModel.open(inner).close(), evil);
            assertTrue(e.getMessage().contains("path traversal") && e.getMessage().contains("model.layers.0.w"), e.getMessage());
        }
    }

    @Test
    void malformedIndexes() throws Exception {
        writeShards(dir);
        Path index = dir.resolve(SafeTensorsModel.INDEX_FILE);
        String[][] cases = {
            {"{\"metadata\": {}}", "no weight_map"},
            {"{\"weight_map\": []}", "not a JSON object"},
            {"{\"weight_map\": {\"a\": 1}}", "not a file name"},
            {"{\"weight_map\": {\"a\": \"" + SHARD1 + "\", \"a\": \"" + SHARD2 + "\"}}", "Duplicate"},
            {"[]", "not a JSON object"},
            {"{\"weight_map\": {}} junk", "trailing"},
            {"{\"weight_map\": " + "[".repeat(50_000), "depth"},
        };
        for (String[] c : cases) {
            Files.writeString(index, c[0], StandardCharsets.UTF_8);
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsModel.open(dir).close(), c[0]);
            assertTrue(e.getMessage().contains(c[1]) && e.getMessage().contains(index.toString()), e.getMessage());
        }
    }
}
