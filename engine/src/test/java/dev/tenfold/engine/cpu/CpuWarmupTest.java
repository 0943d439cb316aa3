package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tenfold.engine.Tensor;
import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class CpuWarmupTest {
    @Test
    void oneRoundRunsEveryOpOnValidTensors() {
        // A zero budget stops after the first round: each op's argument checks must pass.
        CpuWarmup.Report r = CpuWarmup.run(CpuBackend.fast(), 0);
        assertEquals(1, r.rounds());
        assertTrue(r.firstRoundMs() > 0);
    }

    @Test
    void oddRoundsReadTheWeightsFromAReadOnlyMappedCopy() {
        // as a model loaded from safetensors does: the JIT must see both kinds of segment before the first step
        try (Arena arena = Arena.ofShared()) {
            CpuWarmup.Workload w = new CpuWarmup.Workload(arena);
            Tensor[] allocated = w.allocated.all(), mapped = w.mapped.all();
            for (int i = 0; i < allocated.length; i++) {
                assertTrue(mapped[i].data().isMapped() && mapped[i].data().isReadOnly(), "weight " + i + " is not mapped read-only");
                assertTrue(!allocated[i].data().isMapped());
                assertEquals(-1, allocated[i].data().mismatch(mapped[i].data()), "weight " + i + " differs from its mapped copy");
            }
            w.round(CpuBackend.fast(), 0);
            w.round(CpuBackend.fast(), 1);
        }
    }

    @Test
    void theReferenceBackendHasNothingToWarmUp() {
        assertEquals(0, CpuBackend.reference().warmUp());
    }
}
