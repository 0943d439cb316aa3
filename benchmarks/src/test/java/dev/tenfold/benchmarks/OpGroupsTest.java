package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** step-peer --ops: the peer's profile and tenfold's op times cut into the same parts. */
class OpGroupsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void peerPartsAreScaledToThePlainStep() throws Exception {
        // profiled ops add up to 1,250 ms, the plain step took 1 s: every op counts 0.8 of its profiled time
        OpGroups g = OpGroups.ofPeer(JSON.readTree("""
                {"step_seconds": 1.0, "profiled_ms_per_step": 1250, "ops": [
                 {"op": "aten::mm", "self_ms": 500}, {"op": "aten::_scaled_dot_product_flash_attention_for_cpu_backward", "self_ms": 300},
                 {"op": "aten::_scaled_dot_product_flash_attention_for_cpu", "self_ms": 125}, {"op": "aten::_log_softmax", "self_ms": 25},
                 {"op": "aten::_log_softmax_backward_data", "self_ms": 25}, {"op": "aten::mul", "self_ms": 200}]}"""));
        assertEquals(440, g.productsAndLoss(), 1e-9);
        assertEquals(100, g.attentionForward(), 1e-9);
        assertEquals(240, g.attentionBackward(), 1e-9);
        assertEquals(1000, g.step(), 1e-9);
        assertEquals(220, g.rest(), 1e-9);
    }

    @Test
    void tenfoldsRestIsWhatTheNamedOpsLeaveOfItsStep() throws Exception {
        OpGroups g = OpGroups.ofTenfold(JSON.readTree("""
                {"seconds": [0.9, 1.0, 1.8], "ops_step_seconds": 1.0, "ops": [{"op": "matmul", "ms": 300}, {"op": "crossEntropy", "ms": 100},
                 {"op": "attentionBackward", "ms": 250}, {"op": "attention", "ms": 120}, {"op": "rmsnorm", "ms": 30}]}"""));
        assertEquals(400, g.productsAndLoss(), 1e-9);
        assertEquals(120, g.attentionForward(), 1e-9);
        assertEquals(250, g.attentionBackward(), 1e-9);
        assertEquals(1000, g.step(), 1e-9);
        assertEquals(230, g.rest(), 1e-9);
        String table = OpGroups.table("h512, 4,096 tokens", OpGroups.ofPeer(JSON.readTree("""
                {"step_seconds": 0.8, "profiled_ms_per_step": 800, "ops": [{"op": "aten::mm", "self_ms": 400}]}""")), g);
        assertTrue(table.contains("| products and loss (peer: mm, log-softmax, NLL; tenfold: matmul, crossEntropy) | 400.0 | 400.0 | 1.00x |"), table);
        assertTrue(table.contains("| step | 800.0 | 1,000.0 | 0.80x |"), table);
        assertTrue(table.contains("| attention forward | 0.0 | 120.0 | - |"), table);
        assertFalse(table.contains("not reliable"), "a profile as long as the plain step: " + table);
        table = OpGroups.table("h512, 4,096 tokens", OpGroups.ofPeer(JSON.readTree("""
                {"step_seconds": 0.8, "profiled_ms_per_step": 1800, "ops": [{"op": "aten::mm", "self_ms": 900}]}""")), g);
        assertTrue(table.contains("2.25x longer") && table.contains("parts below are not reliable"), table);
        assertTrue(table.contains("| products and loss (peer: mm, log-softmax, NLL; tenfold: matmul, crossEntropy) | 400.0 | 400.0 | 1.00x |"), table);
    }

    @Test
    void productsAreSetBesideEachOtherByShape() throws Exception {
        // the peer's profile is 2x its plain step: its 8 ms of 1024x512x512 count 4
        String table = OpGroups.productsTable(JSON.readTree("""
                {"step_seconds": 0.1, "profiled_ms_per_step": 200, "ops": [], "products": [
                 {"shape": "1024x512x512", "self_ms": 8, "calls": 2}, {"shape": "1024x8192x512", "self_ms": 30, "calls": 1},
                 {"shape": "1024x8x512", "self_ms": 0.5, "calls": 4}]}"""), JSON.readTree("""
                {"ops_step_seconds": 1.0, "ops": [], "products": [{"shape": "1024x512x512", "ms": 8, "calls": 2, "flops": 1073741824},
                 {"shape": "1024x128x512", "ms": 2, "calls": 2, "flops": 268435456}]}"""), 3);
        // 2 x 2 x 1024 x 512 x 512 flops: 1.07 GFLOP in 4 ms (peer) and in 8 ms (tenfold)
        assertTrue(table.contains("| 1024x512x512 | 2 | 4.0 | 268 | 2 | 8.0 | 134 | 0.50x |"), table);
        assertTrue(table.contains("2.00x longer") && table.contains("not reliable"), "a profile twice the plain step is flagged: " + table);
        assertTrue(table.contains("| 1024x8192x512 | 1 | 15.0 | 573 | - | - | - | - |"), table);
        assertTrue(table.contains("| 1024x128x512 | - | - | - | 2 | 2.0 | 134 | - |"), table);
        assertFalse(table.contains("1024x8x512"), "the three longest only: " + table);
        assertTrue(table.indexOf("1024x8192x512") < table.indexOf("1024x512x512"), "longest first: " + table);
        assertEquals(2.0 * 3 * 4 * 5, OpGroups.flopsOf("3x4x5"));
        assertThrows(IllegalArgumentException.class, () -> OpGroups.flopsOf("3x4"));
    }

    @Test
    void runsWithoutTimesAreRefusedByName() throws Exception {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OpGroups.ofTenfold(JSON.readTree("{\"seconds\": [1.0]}")));
        assertTrue(e.getMessage().contains("no op times"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> OpGroups.ofPeer(JSON.readTree("{\"ops\": []}")));
        assertTrue(e.getMessage().contains("step_seconds"), e.getMessage());
    }
}
