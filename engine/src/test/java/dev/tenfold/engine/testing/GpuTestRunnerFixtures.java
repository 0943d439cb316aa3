package dev.tenfold.engine.testing;

import static org.junit.jupiter.api.Assertions.fail;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Tests for {@link GpuTestRunnerTest} to run (their own tags: no test run ever picks them up by accident). */
final class GpuTestRunnerFixtures {
    private GpuTestRunnerFixtures() {}

    @Tag("runner-fixture")
    static class Passing {
        @Test void passes() {}
    }

    @Tag("runner-fixture")
    static class Failing {
        @Test void fails() { fail("the fixture fails\nsecond line"); }
    }

    @Tag("runner-fixture")
    static class Skipping {
        @Test void skips() { Assumptions.abort("no GPU in this fixture"); }
    }

    @Tag("runner-fixture-hang")
    static class Hanging {
        @Test void hangs() throws InterruptedException { Thread.sleep(600_000); }
    }
}
