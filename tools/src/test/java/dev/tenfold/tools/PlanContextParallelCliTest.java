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

    /** 16 ranks do not divide Llama-3-8B's 8 key/value heads: auto plans the all-gather, whose gathered keys and values cost more. */
    @Test
    void sixteenRanksPlanTheAllGatherAndCountItsKeysAndValues() {
        String c = PlanCliTest.LLAMA3_8B.toString();
        CliTest.Result auto = CliTest.run("", "plan", "--config", c, "--tokens", "32k", "--cp", "16", "--json");
        assertEquals(0, auto.code(), auto.err());
        assertTrue(auto.out().contains("\"context_parallel\":16") && auto.out().contains("\"context_parallel_scheme\":\"allgather\""), auto.out());
        CliTest.Result ulysses = CliTest.run("", "plan", "--config", c, "--tokens", "32k", "--cp", "8", "--json");
        CliTest.Result allgather = CliTest.run("", "plan", "--config", c, "--tokens", "32k", "--cp", "8", "--cp-scheme", "allgather", "--json");
        assertEquals(0, allgather.code(), allgather.err());
        assertTrue(ulysses.out().contains("\"context_parallel_scheme\":\"ulysses\""), ulysses.out());
        assertTrue(peak(allgather.out()) > peak(ulysses.out()), allgather.out() + "\n" + ulysses.out());
        CliTest.Result table = CliTest.run("", "plan", "--config", c, "--tokens", "32k", "--cp", "16");
        assertTrue(table.out().contains("32,768 tokens shared by 16 ranks (all-gather of keys and values), this rank's memory")
                && table.out().contains("context-parallel attention"), table.out());
    }

    @Test
    void ulyssesOverRanksThatDoNotDivideTheKeyValueHeadsIsABadFlag() {
        CliTest.Result r = CliTest.run("", "plan", "--config", PlanCliTest.LLAMA3_8B.toString(), "--cp", "3", "--cp-scheme", "ulysses");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--cp 3 --cp-scheme ulysses: context parallelism: Ulysses needs the 3 ranks to divide the model's 8"
                + " key/value heads; use --cp-scheme allgather (or auto) for 3 ranks"), r.err());
        CliTest.Result s = CliTest.run("", "plan", "--config", PlanCliTest.LLAMA3_8B.toString(), "--cp", "2", "--cp-scheme", "ring");
        assertEquals(2, s.code(), s.err());
        assertTrue(s.err().contains("--cp-scheme ring: choose auto, ulysses or allgather"), s.err());
    }

    private static long peak(String json) {
        var m = java.util.regex.Pattern.compile("\"peak_bytes\":(\\d+)").matcher(json);
        assertTrue(m.find(), json);
        return Long.parseLong(m.group(1));
    }
}
