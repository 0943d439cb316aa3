package dev.tenfold.engine.collective;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.testing.MpiTests;
import java.time.Duration;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** Open MPI's communicator in worlds of 2 and 4 processes (mpirun); skipped without MPI unless TENFOLD_REQUIRE_MPI=1. */
class MpiCommunicatorTest {

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void sumsInRankOrderBroadcastsAndMeets(int ranks) throws Exception {
        MpiTests.Result r = MpiTests.run(ranks, Duration.ofMinutes(3), MpiWorldMain.class);
        assertEquals(0, r.exitCode(), r.output());
        for (int rank = 0; rank < ranks; rank++) assertTrue(r.output().contains("rank " + rank + " of " + ranks + " ok"), r.output());
    }

    @Test
    void aRankThatNeverArrivesEndsTheOthersAfterTheTimeout() throws Exception {
        MpiTests.Result r = MpiTests.run(2, Duration.ofMinutes(2), MpiWorldMain.class, "hang1", "3");
        assertNotEquals(0, r.exitCode(), r.output());
        assertTrue(r.output().contains("rank 0 of 2: barrier did not complete within 3 s"), r.output());
    }
}
