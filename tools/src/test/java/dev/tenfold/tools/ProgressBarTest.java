package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The status line's running loss, speed and ETA, fed made-up steps. */
class ProgressBarTest {
    /** A made-up step: what the bar is shown of it. */
    record Step(int step, int total, double loss, long tokens, double seconds) {
        void showOn(ProgressBar bar) { bar.show(step, total, loss, 1e-3, tokens, seconds); }
    }

    static Step step(int step, int total, double loss, long tokens, double seconds) { return new Step(step, total, loss, tokens, seconds); }

    @Test
    void slowFirstStepsDoNotStayInTheEta() {
        // JIT warm-up: the first step takes 30 s, the next few 3 s, then 1 s each
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(out, true, StandardCharsets.UTF_8), false);
        Step last = step(1, 400, 2.0, 1000, 30);
        last.showOn(bar);
        // one step, compiling included, says nothing of the speed to come
        assertTrue(Double.isNaN(bar.etaSeconds(last.step(), last.total())));
        assertTrue(out.toString(StandardCharsets.UTF_8).strip().endsWith("| 33 tok/s | ETA ?"), out.toString(StandardCharsets.UTF_8));
        for (int i = 2; i <= 100; i++) {
            last = step(i, 400, 2.0, 1000, i <= 5 ? 3 : 1);
            last.showOn(bar);
        }
        assertEquals(300, bar.etaSeconds(last.step(), last.total()), 3); // the mean since the start said 300 * 1.37 s
        assertEquals(1000, bar.tokensPerSecond(), 10);
        assertEquals(0, bar.etaSeconds(400, 400));
    }

    @Test
    void theEtaCountsTokensNotSteps() {
        // 1 ms per token throughout; after the first step, 40 short steps then 10 long ones (batches grouped by
        // length come in runs): the steps left are expected to be like all so far (1,600 tokens each on average),
        // not like the last few
        ProgressBar bar = new ProgressBar(new PrintStream(new ByteArrayOutputStream()), false);
        Step last = null;
        for (int i = 1; i <= 51; i++) {
            long tokens = i <= 41 ? 1000 : 4000;
            last = step(i, 101, 2.0, tokens, tokens / 1000.0);
            last.showOn(bar);
        }
        assertEquals(50 * 1.6, bar.etaSeconds(last.step(), last.total()), 1e-6);
        assertEquals(1000, bar.tokensPerSecond(), 1e-6);
    }

    @Test
    void aNonFiniteLossShowsInTheAverage() {
        for (double bad : new double[] {Double.NaN, Double.POSITIVE_INFINITY}) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ProgressBar bar = new ProgressBar(new PrintStream(out, true, StandardCharsets.UTF_8), false);
            double[] losses = {2.0, 1.9, bad, 1.8, 1.7};
            for (int i = 0; i < losses.length; i++) {
                step(i + 1, losses.length, losses[i], 100, 0.1).showOn(bar);
                if (i < 2) assertEquals(i == 0 ? 2.0 : 1.99, bar.averageLoss(), 1e-12);
                else assertEquals(Double.toString(bad), Double.toString(bar.averageLoss()), "after step " + (i + 1));
            }
            String lines = out.toString(StandardCharsets.UTF_8);
            String lastLine = lines.lines().reduce((a, b) -> b).orElseThrow();
            assertTrue(lastLine.startsWith("step 5/5") && lastLine.contains("(avg " + (Double.isNaN(bad) ? "NaN" : "Infinity") + ")"),
                    lines);
        }
    }
}
