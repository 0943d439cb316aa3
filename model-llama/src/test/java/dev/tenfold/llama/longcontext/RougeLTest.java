package dev.tenfold.llama.longcontext;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** ROUGE-L F1 against values worked out by hand. */
class RougeLTest {
    @Test
    void identicalIsOne() {
        assertEquals(1.0, RougeL.f1("The cat sat.", "the cat sat"), 1e-12);
    }

    @Test
    void emptyIsZero() {
        assertEquals(0.0, RougeL.f1("", "the cat"), 0);
        assertEquals(0.0, RougeL.f1("the cat", ""), 0);
        assertEquals(0.0, RougeL.f1("...", "!!"), 0);
    }

    @Test
    void oneWordDiffers() {
        // LCS "the cat on the mat" = 5 of 6 words each side: P = R = F = 5/6
        assertEquals(5.0 / 6, RougeL.f1("the cat sat on the mat", "the cat is on the mat"), 1e-12);
    }

    @Test
    void orderMatters() {
        // LCS "the gunman" = 2 of 4 each side: F = 0.5 (a bag of words would give 0.75)
        assertEquals(0.5, RougeL.f1("police killed the gunman", "the gunman kill police"), 1e-12);
    }

    @Test
    void shortCandidateCaseAndPunctuationIgnored() {
        // candidate 2 words, reference 4, LCS 2: P = 1, R = 0.5, F = 2 * 0.5 / 1.5
        assertEquals(2.0 / 3, RougeL.f1("Dolores Park!", "sitting in dolores park"), 1e-12);
    }

    @Test
    void noOverlapIsZero() {
        assertEquals(0.0, RougeL.f1("blue sky", "green grass"), 0);
    }

    @Test
    void needleAgainstItselfAndAPartialAnswer() {
        assertEquals(1.0, RougeL.f1(NeedleInHaystack.NEEDLE, NeedleInHaystack.NEEDLE), 1e-12);
        // 21-word needle; "sitting in Dolores Park" is a 4-word subsequence: P = 1, R = 4/21, F = 2 * (4/21) / (25/21) = 8/25
        assertEquals(8.0 / 25, RougeL.f1("sitting in Dolores Park", NeedleInHaystack.NEEDLE), 1e-12);
    }
}
