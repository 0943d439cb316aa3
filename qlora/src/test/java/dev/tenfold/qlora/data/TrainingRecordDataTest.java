package dev.tenfold.qlora.data;

import org.junit.jupiter.api.Test;

import static dev.tenfold.qlora.data.TrainingRecord.IGNORE;
import static org.junit.jupiter.api.Assertions.*;

/** TrainingRecord: HF-aligned labels, shifted targets, checks. */
class TrainingRecordDataTest {
    private static final int X = IGNORE;

    @Test
    void targetsAreTheLabelsShiftedByOne() {
        TrainingRecord r = new TrainingRecord(new int[] {10, 11, 12, 13, 14}, new int[] {X, X, 12, 13, X}, "f:1");
        assertArrayEquals(new int[] {X, 12, 13, X}, r.targets()); // position 1 predicts token 12
        assertEquals(2, r.targetCount());
        assertEquals(5, r.length());
        assertEquals(0, new TrainingRecord(new int[] {7}, new int[] {7}, "f:2").targets().length);
        assertEquals(0, new TrainingRecord(new int[] {7, 8}, new int[] {7, X}, "f:3").targetCount());
    }

    @Test
    void checksItsArrays() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new TrainingRecord(new int[] {1, 2}, new int[] {1}, "f.jsonl:4"));
        assertTrue(e.getMessage().startsWith("f.jsonl:4: 2 input ids but 1 labels"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new TrainingRecord(new int[0], new int[0], "f:1"));
        assertThrows(IllegalArgumentException.class, () -> new TrainingRecord(new int[] {1}, new int[] {-1}, "f:1"));
        assertThrows(NullPointerException.class, () -> new TrainingRecord(new int[] {1}, new int[] {1}, null));
    }

    @Test
    void equalityIsByContent() {
        TrainingRecord a = new TrainingRecord(new int[] {1, 2}, new int[] {X, 2}, "f:1");
        TrainingRecord b = new TrainingRecord(new int[] {1, 2}, new int[] {X, 2}, "f:1");
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertNotEquals(a, new TrainingRecord(new int[] {1, 2}, new int[] {1, 2}, "f:1"));
        assertEquals("TrainingRecord[f:1, 2 tokens, 1 targets]", a.toString());
    }
}
