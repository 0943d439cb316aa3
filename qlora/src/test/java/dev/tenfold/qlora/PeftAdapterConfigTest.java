package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** adapter_config.json: every field checked for its kind and range where it is read, as peft writes it or not at all. */
class PeftAdapterConfigTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What peft 0.21 writes for LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, q_proj and v_proj, embed_tokens saved). */
    static final String PEFT = """
            {"alora_invocation_tokens": null, "alpha_pattern": {}, "arrow_config": null, "auto_mapping": null,
             "base_model_name_or_path": null, "bias": "none", "corda_config": null, "ensure_weight_tying": false,
             "eva_config": null, "exclude_modules": null, "fan_in_fan_out": false, "inference_mode": false,
             "init_lora_weights": true, "kasa_config": null, "layer_replication": null, "layers_pattern": null,
             "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 16, "lora_bias": false, "lora_dropout": 0.05,
             "lora_ga_config": null, "megatron_config": null, "megatron_core": "megatron.core", "modules_to_save": ["embed_tokens"],
             "monteclora_config": null, "peft_type": "LORA", "peft_version": "0.21.0", "qalora_group_size": 16, "r": 8,
             "rank_pattern": {}, "revision": null, "target_modules": ["v_proj", "q_proj"], "target_parameters": null,
             "task_type": "CAUSAL_LM", "trainable_token_indices": null, "use_bdlora": null, "use_dora": false,
             "use_qalora": false, "use_rslora": false, "velora_config": null}""";

    private static PeftAdapter.Config read(Path dir, String field, String value) throws Exception {
        ObjectNode o = (ObjectNode) JSON.readTree(PEFT);
        if (field != null) o.set(field, JSON.readTree(value));
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(PeftAdapter.CONFIG), o.toString());
        return PeftAdapter.readConfig(dir);
    }

    @Test
    void readsWhatPeftWrites(@TempDir Path dir) throws Exception {
        PeftAdapter.Config c = read(dir, null, null);
        assertEquals(8, c.lora().rank());
        assertEquals(16f, c.lora().alpha());
        assertEquals(0.05f, c.lora().dropout());
        assertEquals(Set.of("q_proj", "v_proj"), c.lora().targetModules());
        assertTrue(c.lora().trainEmbeddings());
        assertNull(c.ropeTheta());
        assertEquals(200e6, read(dir, "tenfold_rope_theta", "2e8").ropeTheta());
        assertEquals(Set.of("model.layers.0.self_attn.q_proj"),
                read(dir, "target_modules", "[\"model.layers.0.self_attn.q_proj\"]").lora().targetModules());
    }

    @Test
    void everyNumberIsCheckedForKindAndRange(@TempDir Path dir) throws Exception {
        String[] notANumber = {"\"abc\"", "true", "[1]", "{}", "1e400", "-1e400"};
        Map<String, List<String>> bad = new LinkedHashMap<>();
        bad.put("r", List.of("0", "-8", "8.5", "65537", "100000000000000000000"));
        bad.put("lora_alpha", List.of("0", "-16", "2000000"));
        bad.put("lora_dropout", List.of("-0.1", "1", "1.5"));
        bad.put("tenfold_rope_theta", List.of("0", "-1", "1"));
        int cases = 0;
        for (Map.Entry<String, List<String>> e : bad.entrySet()) {
            List<String> values = new ArrayList<>(e.getValue());
            values.addAll(List.of(notANumber));
            for (String v : values) {
                IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> read(dir, e.getKey(), v),
                        e.getKey() + " = " + v + " was accepted");
                String m = ex.getMessage();
                assertTrue(m.startsWith(dir.resolve(PeftAdapter.CONFIG) + ": " + e.getKey() + " must be "), m);
                assertTrue(m.contains("[") || m.contains("(") || m.contains(">"), "no range in: " + m);
                cases++;
            }
        }
        assertEquals(38, cases);
        assertEquals(dir.resolve(PeftAdapter.CONFIG) + ": lora_alpha must be a finite number in (0, 1048576], got \"16\"",
                assertThrows(IllegalArgumentException.class, () -> read(dir, "lora_alpha", "\"16\"")).getMessage());
        assertEquals(dir.resolve(PeftAdapter.CONFIG) + ": r must be an integer in [1, 65536], got 0",
                assertThrows(IllegalArgumentException.class, () -> read(dir, "r", "0")).getMessage());
    }

    @Test
    void otherFieldsAreCheckedToo(@TempDir Path dir) throws Exception {
        Map<String, String[]> bad = new LinkedHashMap<>();
        bad.put("target_modules", new String[] {"[]", "\"q_proj\"", "[1]", "[\"lm_head\"]", "[\"q\"]", "{}", "7"});
        bad.put("modules_to_save", new String[] {"[\"lm_head\"]", "\"embed_tokens\"", "[3]"});
        bad.put("use_rslora", new String[] {"\"yes\"", "1"});
        bad.put("bias", new String[] {"\"all\"", "\"lora_only\"", "false"});
        bad.put("peft_type", new String[] {"\"IA3\"", "null", "1"});
        // settings that change what is adapted or how
        bad.put("use_dora", new String[] {"true", "\"no\""});
        bad.put("lora_bias", new String[] {"true"});
        bad.put("fan_in_fan_out", new String[] {"true"});
        bad.put("use_qalora", new String[] {"true"});
        bad.put("rank_pattern", new String[] {"{\"q_proj\": 4}"});
        bad.put("alpha_pattern", new String[] {"{\"q_proj\": 4}"});
        bad.put("layers_to_transform", new String[] {"[0]", "0"});
        bad.put("exclude_modules", new String[] {"[\"q_proj\"]", "\"q\""});
        bad.put("layer_replication", new String[] {"[[0, 1]]"});
        bad.put("trainable_token_indices", new String[] {"[1, 2]"});
        bad.put("target_parameters", new String[] {"[\"w\"]"});
        bad.put("alora_invocation_tokens", new String[] {"[5]"});
        bad.put("use_bdlora", new String[] {"{\"a\": 1}"});
        for (Map.Entry<String, String[]> e : bad.entrySet()) {
            for (String v : e.getValue()) {
                IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> read(dir, e.getKey(), v),
                        e.getKey() + " = " + v + " was accepted");
                assertTrue(ex.getMessage().contains(e.getKey()), ex.getMessage());
            }
        }
        Files.writeString(dir.resolve(PeftAdapter.CONFIG), "{\"peft_type\": \"LORA\", \"r\": NaN}");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> PeftAdapter.readConfig(dir)).getMessage().contains("not valid JSON"));
    }

    @Test
    void theLibraryConfigChecksItsValues() {
        record Bad(String setting, org.junit.jupiter.api.function.Executable make) {}
        for (Bad b : List.of(new Bad("lora_alpha", () -> LoraConfig.of(8, Float.NaN)), new Bad("r", () -> LoraConfig.of(0, 16f)),
                new Bad("r", () -> LoraConfig.of(8, 16f).rank(1 << 17)), new Bad("lora_dropout", () -> LoraConfig.of(8, 16f).dropout(1f)),
                new Bad("target_modules", () -> LoraConfig.of(8, 16f).targetModules(Set.of())),
                new Bad("target_modules", () -> LoraConfig.of(8, 16f).targets("q,lm_head")))) {
            InvalidSettingException e = assertThrows(InvalidSettingException.class, b.make(), b.setting());
            assertEquals(b.setting(), e.setting());
            assertTrue(e.getMessage().startsWith(b.setting()), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> new PeftAdapter.Config(LoraConfig.of(8, 16f), "b", Double.POSITIVE_INFINITY));
        // a config is a value: withers copy, the original stays
        LoraConfig a = LoraConfig.of(8, 16f);
        assertEquals(0f, a.dropout(0.1f).dropout() - 0.1f);
        assertEquals(0f, a.dropout());
        assertEquals(LoraConfig.of(8, 16f).targets("q_proj,v"), LoraConfig.of(8, 16f).targets("q,v"));
    }

    @Test
    void adapterConfigJsonIsDerivedFromTheModel(@TempDir Path dir) throws Exception {
        Path base = TinyLlama.write(dir.resolve("base"), 6, DType.BF16, false);
        LoraConfig lora = LoraConfig.of(4, 8f).targets("v,q").dropout(0.05f).rsLora(true).trainEmbeddings(true).seed(3);
        try (LlamaModel m = LlamaLoader.load(base, LoadSpec.defaults().ropeTheta(2e6))) {
            assertEquals("the model has no LoRA adapters to save (attach them with Lora.attach)",
                    assertThrows(IllegalArgumentException.class, () -> PeftAdapter.save(dir.resolve("none"), m)).getMessage());
            Lora.attach(m, lora);
            PeftAdapter.save(dir.resolve("adapter"), m);
        }
        PeftAdapter.Config c = PeftAdapter.readConfig(dir.resolve("adapter"));
        assertEquals(lora.seed(0), c.lora()); // everything but the initialisation's seed, which peft does not record
        assertEquals(base.toAbsolutePath().toString(), c.baseModel());
        assertEquals(2e6, c.ropeTheta());
    }
}
