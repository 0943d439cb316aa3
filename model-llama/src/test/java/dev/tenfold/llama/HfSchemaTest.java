package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The checkpoint schema: Llama-3-8B's names and shapes as transformers writes them. */
class HfSchemaTest {
    @Test
    void llama3_8bNamesAndShapes() {
        LlamaConfig c = LlamaConfig.parse("""
                {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "vocab_size": 128256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0}""");
        Map<String, long[]> t = HfSchema.tensors(c);
        assertEquals(2 + 32 * 9 + 1, t.size());
        assertArrayEquals(new long[] {128256, 4096}, t.get("model.embed_tokens.weight"));
        assertArrayEquals(new long[] {4096, 4096}, t.get("model.layers.0.self_attn.q_proj.weight"));
        assertArrayEquals(new long[] {1024, 4096}, t.get("model.layers.31.self_attn.v_proj.weight"));
        assertArrayEquals(new long[] {4096, 14336}, t.get("model.layers.7.mlp.down_proj.weight"));
        assertArrayEquals(new long[] {4096}, t.get("model.layers.7.post_attention_layernorm.weight"));
        assertArrayEquals(new long[] {128256, 4096}, t.get("lm_head.weight"));
        assertEquals("model.embed_tokens.weight", t.keySet().iterator().next());
        for (String name : t.keySet()) {
            assertEquals(name.endsWith("_proj.weight"), HfSchema.PROJECTION_WEIGHT.matcher(name).matches(), name);
        }
        assertEquals(HfSchema.Projection.GATE, HfSchema.Projection.named("gate_proj"));
        assertEquals(HfSchema.Projection.Q, HfSchema.Projection.named("Q"));
        assertNull(HfSchema.Projection.named("lm_head"));
        assertEquals("model.layers.3.mlp.up_proj", HfSchema.Projection.UP.module(3));
        assertEquals("up_proj", HfSchema.Projection.UP.leaf());
    }
}
