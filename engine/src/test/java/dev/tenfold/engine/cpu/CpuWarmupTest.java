package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
    void theReferenceBackendHasNothingToWarmUp() {
        assertEquals(0, CpuBackend.reference().warmUp());
    }
}
