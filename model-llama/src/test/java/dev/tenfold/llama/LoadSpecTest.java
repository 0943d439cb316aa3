package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LoadSpec: one value for what loading changes, each setting checked where it is given. */
class LoadSpecTest {
    @Test
    void aSpecIsAValueAndChecksItsSettings() {
        LoadSpec base = LoadSpec.defaults();
        LoadSpec recipe = base.ropeTheta(200e6).quantization(Quantization.NF4);
        assertNull(base.ropeTheta(), "withers copy");
        assertEquals(Quantization.NONE, base.quantization());
        assertEquals(200e6, recipe.ropeTheta());
        assertEquals(recipe, LoadSpec.defaults().quantization(Quantization.NF4).ropeTheta(200e6));
        assertSame(CpuBackend.fast(), recipe.backend());
        assertEquals("rope_theta must be a finite number > 1, got 1.0",
                assertThrows(IllegalArgumentException.class, () -> base.ropeTheta(1.0)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> base.ropeTheta(Double.NaN));
        assertEquals(Quantization.NF4, Quantization.parse("NF4"));
        assertThrows(IllegalArgumentException.class, () -> Quantization.parse("int8"));
    }

    @Test
    void theSpecsRopeChangesReachTheModel(@TempDir Path dir) throws Exception {
        Path m = TinyLlama.write(dir.resolve("m"), 4, DType.F32, false);
        try (LlamaModel model = LlamaLoader.load(m, LoadSpec.defaults().ropeTheta(5e5).ropeScaling(RopeScaling.linear(2)))) {
            assertEquals(5e5, model.config().ropeTheta());
            assertEquals(RopeScaling.linear(2), model.config().ropeScaling());
            assertEquals(m, model.source());
        }
    }

    @Test
    void quantizedCheckpointsNeedTheModuleThatReadsThem(@TempDir Path dir) throws Exception {
        Path m = TinyLlama.write(dir.resolve("m"), 4, DType.F32, false);
        // model-llama alone (its tests' class path) has no NF4 provider: the error says which module has one
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LlamaLoader.load(m, LoadSpec.defaults().quantization(Quantization.NF4)));
        assertEquals(m.resolve("config.json") + ": nf4 projections need tenfold-qlora (not on the class or module path)", e.getMessage());
        String cfg = Files.readString(m.resolve("config.json"));
        Files.writeString(m.resolve("config.json"), cfg.substring(0, cfg.lastIndexOf('}'))
                + ", \"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true}}");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LlamaLoader.load(m)).getMessage().contains("tenfold-qlora"));
    }
}
