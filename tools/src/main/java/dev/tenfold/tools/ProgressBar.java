package dev.tenfold.tools;

import dev.tenfold.qlora.Trainer;
import java.io.PrintStream;

/**
 * One status line on stderr: step, a bar, loss, tokens/s and the ETA (a new line every 10 s when not a terminal).
 *
 * <p>Speed and ETA come from recent steps, not from the start: the first steps are slow while the JIT
 * compiles, and a mean since the start kept that in the ETA for minutes. The first step seen is left out
 * of the ETA altogether (it holds the compiling and, by the batch plan, the longest batch), so the ETA is
 * "?" until a second step is done. Since a step's time grows with its tokens, and batches differ a lot in
 * tokens, the speed is kept per token (recent seconds over recent tokens, both decayed per step) and the
 * ETA is that times the tokens still to come, estimated as the mean tokens per step so far times the
 * steps left.
 */
public final class ProgressBar implements Trainer.Listener {
    /** Per-step decay of the recent sums: a step ten steps back counts about a third. */
    static final double RECENT_DECAY = 0.9;

    private final PrintStream err;
    private final boolean terminal;
    private long lastPrint;
    private int steps;
    private double firstSeconds, firstTokens;
    private long tokens; // of the steps after the first
    private double recentSeconds, recentTokens; // of the steps after the first, decayed
    private double avgLoss = Double.NaN;

    public ProgressBar(PrintStream err) {
        this(err, System.console() != null);
    }

    ProgressBar(PrintStream err, boolean terminal) {
        this.err = err;
        this.terminal = terminal;
    }

    @Override
    public void onStep(Trainer.StepMetrics m) {
        if (m.warmUpSeconds() > 0) {
            err.printf("tenfold: CPU kernels compiled before the first step (JIT warm-up): %.1f s%n", m.warmUpSeconds());
        }
        show(m.step(), m.totalSteps(), m.loss(), m.lr(), m.tokens(), m.seconds());
    }

    /** Takes in step {@code step} of {@code totalSteps} (its loss, rate, tokens and seconds) and prints the line when due. */
    void show(int step, int totalSteps, double loss, double lr, long stepTokens, double seconds) {
        // a NaN or infinite loss makes the average NaN or infinite from then on: the line must show that the run broke
        avgLoss = steps == 0 ? loss : 0.9 * avgLoss + 0.1 * loss;
        if (steps == 0) {
            firstSeconds = seconds;
            firstTokens = stepTokens;
        } else {
            tokens += stepTokens;
            recentSeconds = RECENT_DECAY * recentSeconds + seconds;
            recentTokens = RECENT_DECAY * recentTokens + stepTokens;
        }
        steps++;
        long now = System.nanoTime();
        boolean last = step == totalSteps;
        if (!terminal && !last && steps > 1 && now - lastPrint < 10_000_000_000L) return;
        lastPrint = now;
        int width = 24, done = (int) Math.round(width * (double) step / totalSteps);
        String bar = "=".repeat(done) + (done < width ? ">" + " ".repeat(width - done - 1) : "");
        String line = String.format("step %d/%d [%s] loss %.4f (avg %.4f) | lr %.2e | %,.0f tok/s | ETA %s",
                step, totalSteps, bar, loss, avgLoss, lr, tokensPerSecond(), eta(step, totalSteps));
        if (terminal) {
            err.print("\r" + line + (last ? "\n" : ""));
        } else {
            err.println(line);
        }
        err.flush();
    }

    /** The running average of the loss (0.9 old, 0.1 new), NaN or infinite once a step's loss was. */
    double averageLoss() { return avgLoss; }

    /** Tokens per second over the recent steps (the first step's own while it is the only one). */
    double tokensPerSecond() {
        return steps > 1 ? recentTokens / Math.max(1e-9, recentSeconds) : firstTokens / Math.max(1e-9, firstSeconds);
    }

    /**
     * Seconds until the last step, after step {@code step}: recent seconds per token times the tokens expected in
     * the steps left; NaN (unknown) after the first step.
     */
    double etaSeconds(int step, int totalSteps) {
        if (step >= totalSteps) return 0;
        if (steps < 2 || recentTokens <= 0) return Double.NaN;
        double tokensLeft = (double) tokens / (steps - 1) * (totalSteps - step);
        return tokensLeft * recentSeconds / recentTokens;
    }

    private String eta(int step, int totalSteps) {
        double s = etaSeconds(step, totalSteps);
        return Double.isNaN(s) ? "?" : duration(Math.round(s));
    }

    static String duration(long s) {
        if (s >= 3600) return String.format("%dh%02dm", s / 3600, (s % 3600) / 60);
        if (s >= 60) return String.format("%dm%02ds", s / 60, s % 60);
        return s + "s";
    }
}
