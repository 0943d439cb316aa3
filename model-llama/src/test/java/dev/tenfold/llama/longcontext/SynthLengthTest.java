package dev.tenfold.llama.longcontext;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.testing.SynthTestData;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The length search over many seeds and awkward targets: always within [target - 2%, target]. */
class SynthLengthTest {
    @Test
    void everyRecordWithinTheTolerance(@TempDir Path dir) {
        Synthesizer s = new Synthesizer(SynthTestData.tokenizer(dir), SynthTestData.corpus());
        for (int seed = 0; seed < 60; seed++) {
            for (SynthTask t : SynthTask.values()) {
                int target = 1000 + (seed * 7919) % 9000;
                SynthRecord r = s.generate(t, target, seed);
                assertTrue(r.tokens() <= target && r.tokens() >= s.minTokens(target),
                        t + " seed " + seed + ": " + r.tokens() + " tokens for " + target);
            }
        }
    }

    @Test
    void aWiderToleranceIsHonoured(@TempDir Path dir) {
        Synthesizer s = new Synthesizer(SynthTestData.tokenizer(dir), null, 0.10);
        assertEquals(1800, s.minTokens(2000));
        SynthRecord r = s.generate(SynthTask.PASSKEY, 2000, 1);
        assertTrue(r.tokens() >= 1800 && r.tokens() <= 2000, "" + r.tokens());
        assertThrows(IllegalArgumentException.class, () -> new Synthesizer(SynthTestData.tokenizer(dir), null, 0));
    }
}
