package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A checkpoint holding NaN or an infinity is refused at load, naming the tensor and the first bad index. */
class NonFiniteWeightsTest {

    private static Path withBadValue(Path dir, DType dtype, String tensor, long index, float value) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), TinyLlama.config(false, null));
        Map<String, Tensor> w = TinyLlama.weights(3, dtype, false);
        try {
            w.get(tensor).setFloat(index, value);
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), w, Map.of("format", "pt"));
        } finally {
            w.values().forEach(Tensor::close);
        }
        return dir;
    }

    private static String loadError(Path model) {
        return assertThrows(IllegalArgumentException.class, () -> LlamaLoader.load(model, CpuBackend.fast()).close()).getMessage();
    }

    @Test
    void nanOrInfinityInAnyDtypeIsRefused(@TempDir Path dir) throws Exception {
        // up_proj is [48, 32]: index 100 is row 3, column 4
        String m = loadError(withBadValue(dir.resolve("bf16"), DType.BF16, "model.layers.1.mlp.up_proj.weight", 100, Float.NaN));
        assertTrue(m.startsWith("tensor model.layers.1.mlp.up_proj.weight holds NaN at index 100 [3, 4] (of 1536 elements)"), m);
        m = loadError(withBadValue(dir.resolve("f32"), DType.F32, "model.norm.weight", 31, Float.NEGATIVE_INFINITY));
        assertTrue(m.startsWith("tensor model.norm.weight holds -Infinity at index 31 (of 32 elements)"), m);
        m = loadError(withBadValue(dir.resolve("f16"), DType.F16, "lm_head.weight", 0, Float.POSITIVE_INFINITY));
        assertTrue(m.startsWith("tensor lm_head.weight holds +Infinity at index 0 [0, 0]"), m);
        // and the same model without the bad value loads
        TinyLlama.write(dir.resolve("good"), 3, DType.BF16, false);
        LlamaLoader.load(dir.resolve("good"), CpuBackend.fast()).close();
    }
}
