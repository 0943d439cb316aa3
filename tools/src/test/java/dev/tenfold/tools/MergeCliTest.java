package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.io.SafeTensorsModel;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.PeftAdapter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `tenfold merge`: the base's precision or --dtype, an output that is never the adapter, a NaN adapter refused. */
class MergeCliTest {

    private static Path adapter(Path base, Path dir, boolean nan) throws Exception {
        try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
            Lora.attach(m, LoraConfig.of(4, 8f).targets("q,v").seed(1));
            for (Parameter p : m.parameters()) {
                if (p.name().contains("lora_B")) p.value().fill(0.01f);
                if (nan && p.name().equals("model.layers.0.self_attn.q_proj.lora_B.weight")) p.value().setFloat(3, Float.NaN);
            }
            PeftAdapter.save(dir, m);
        }
        return dir;
    }

    private static Set<DType> dtypes(Path model) throws Exception {
        Set<DType> seen = new TreeSet<>();
        try (SafeTensorsModel w = SafeTensorsModel.open(model)) {
            for (String n : w.names()) seen.add(w.info(n).dtype());
        }
        return seen;
    }

    @Test
    void keepsTheBaseDtypeOrTakesDtype(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 4, DType.F32, false);
        Path a = adapter(base, dir.resolve("adapter"), false);
        CliTest.Result r = CliTest.run("", "merge", "--model", base.toString(), "--adapter", a.toString(), "--output", dir.resolve("m1").toString());
        assertEquals(0, r.code(), r.err());
        assertEquals(Set.of(DType.F32), dtypes(dir.resolve("m1")));
        assertTrue(Files.readString(dir.resolve("m1/config.json")).contains("\"torch_dtype\" : \"float32\""));
        r = CliTest.run("", "merge", "--model", base.toString(), "--adapter", a.toString(), "--output", dir.resolve("m2").toString(),
                "--dtype", "bf16");
        assertEquals(0, r.code(), r.err());
        assertEquals(Set.of(DType.BF16), dtypes(dir.resolve("m2")));
        assertTrue(Files.readString(dir.resolve("m2/config.json")).contains("\"torch_dtype\" : \"bfloat16\""));
        r = CliTest.run("", "merge", "--model", base.toString(), "--adapter", a.toString(), "--output", dir.resolve("m3").toString(),
                "--dtype", "f8");
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("--dtype f8: choose bf16, f16 or f32"), r.err());
        assertFalse(Files.exists(dir.resolve("m3")));
    }

    @Test
    void neverWritesIntoTheAdapterOrAFullFolder(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 4, DType.BF16, false);
        Path a = adapter(base, dir.resolve("adapter"), false);
        byte[] weights = Files.readAllBytes(a.resolve(PeftAdapter.WEIGHTS));
        for (String force : new String[] {"--dtype=bf16", "--force"}) {
            CliTest.Result r = CliTest.run("", "merge", "--model", base.toString(), "--adapter", a.toString(), "--output", a.toString(), force);
            assertNotEquals(0, r.code());
            assertTrue(r.err().contains("--output: output folder " + a + " is the adapter folder"), r.err());
        }
        assertArrayEquals(weights, Files.readAllBytes(a.resolve(PeftAdapter.WEIGHTS)));
        try (var files = Files.list(a)) {
            assertEquals(2, files.count(), "nothing was added to the adapter folder");
        }
        Path mine = Files.createDirectories(dir.resolve("mine"));
        Files.writeString(mine.resolve("report.txt"), "keep");
        CliTest.Result r = CliTest.run("", "merge", "--model", base.toString(), "--adapter", a.toString(), "--output", mine.toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("exists and is not empty (use --force"), r.err());
        r = CliTest.run("", "merge", "--model", base.toString(), "--adapter", a.toString(), "--output", mine.toString(), "--force");
        assertEquals(0, r.code(), r.err());
        assertEquals("keep", Files.readString(mine.resolve("report.txt")));
    }

    @Test
    void refusesANaNAdapter(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 4, DType.BF16, false);
        Path a = adapter(base, dir.resolve("adapter"), true);
        CliTest.Result r = CliTest.run("", "merge", "--model", base.toString(), "--adapter", a.toString(), "--output", dir.resolve("m").toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("tensor base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight holds NaN at index 3"), r.err());
        assertFalse(Files.exists(dir.resolve("m").resolve("config.json")));
    }
}
