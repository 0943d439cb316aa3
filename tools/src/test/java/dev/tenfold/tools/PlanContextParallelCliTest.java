package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** `tenfold plan --cp N`: one rank's memory when N ranks share each sequence. */
class PlanContextParallelCliTest {

    @Test
    void planningOneRankOfEightNeedsLessThanOneRankAlone() {
        String c = PlanCliTest.LLAMA3_8B.toString();
        CliTest.Result one = CliTest.run("", "plan", "--config", c, "--tokens", "32k", "--json");
        CliTest.Result eight = CliTest.run("", "plan", "--config", c, "--tokens", "32k", "--cp", "8", "--json");
        assertEquals(0, one.code(), one.err());
        assertEquals(0, eight.code(), eight.err());
        assertTrue(eight.out().contains("\"context_parallel\":8"), eight.out());
        assertTrue(peak(eight.out()) < peak(one.out()), eight.out() + "\n" + one.out());
        CliTest.Result table = CliTest.run("", "plan", "--config", c, "--tokens", "32k", "--cp", "8");
        assertTrue(table.out().contains("32,768 tokens shared by 8 ranks (Ulysses), this rank's memory")
                && table.out().contains("context-parallel attention"), table.out());
    }

    @Test
    void aGroupThatDoesNotDivideTheKeyValueHeadsIsABadFlag() {
        CliTest.Result r = CliTest.run("", "plan", "--config", PlanCliTest.LLAMA3_8B.toString(), "--cp", "3");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--cp 3 must divide the model's 8 key/value heads"), r.err());
    }

    private static long peak(String json) {
        var m = java.util.regex.Pattern.compile("\"peak_bytes\":(\\d+)").matcher(json);
        assertTrue(m.find(), json);
        return Long.parseLong(m.group(1));
    }
}
