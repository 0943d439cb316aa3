package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ContextParallelSchemeTest {
    @Test
    void autoTakesUlyssesOnOneMachineWhenTheRanksDivideTheKvHeads() {
        assertEquals(ContextParallelScheme.ULYSSES, ContextParallelScheme.AUTO.resolve(4, 8));
        assertEquals(ContextParallelScheme.ALL_GATHER, ContextParallelScheme.AUTO.resolve(3, 8));
        assertEquals(ContextParallelScheme.ALL_GATHER, ContextParallelScheme.AUTO.resolve(16, 8));
    }

    @Test
    void autoTakesTheAllGatherAcrossMachines() {
        assertEquals(ContextParallelScheme.ALL_GATHER, ContextParallelScheme.AUTO.resolve(4, 8, true));
        assertEquals(ContextParallelScheme.ULYSSES, ContextParallelScheme.AUTO.resolve(4, 8, false));
        // a scheme asked for by name is kept
        assertEquals(ContextParallelScheme.ULYSSES, ContextParallelScheme.ULYSSES.resolve(4, 8, true));
    }

    @Test
    void ulyssesWhereItCannotRunIsRefusedWithTheWayOut() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ContextParallelScheme.ULYSSES.resolve(3, 8));
        assertTrue(e.getMessage().contains("--cp-scheme allgather"), e.getMessage());
    }
}
