package dev.tenfold.tools;

import dev.tenfold.qlora.Trainer;
import java.io.PrintStream;

/** One status line on stderr: step, a bar, loss, tokens/s and the ETA (a new line every 10 s when not a terminal). */
public final class ProgressBar implements Trainer.Listener {
    private final PrintStream err;
    private final boolean terminal;
    private long lastPrint;
    private long tokens;
    private double seconds;
    private double emaLoss = Double.NaN;

    public ProgressBar(PrintStream err) {
        this.err = err;
        this.terminal = System.console() != null;
    }

    @Override
    public void onStep(Trainer.StepMetrics m) {
        tokens += m.tokens();
        seconds += m.seconds();
        if (Double.isFinite(m.loss())) emaLoss = Double.isNaN(emaLoss) ? m.loss() : 0.9 * emaLoss + 0.1 * m.loss();
        long now = System.nanoTime();
        boolean last = m.step() == m.totalSteps();
        if (!terminal && !last && m.step() > 1 && now - lastPrint < 10_000_000_000L) return;
        lastPrint = now;
        double perStep = seconds / Math.max(1, m.step());
        long eta = Math.round(perStep * (m.totalSteps() - m.step()));
        int width = 24, done = (int) Math.round(width * (double) m.step() / m.totalSteps());
        String bar = "=".repeat(done) + (done < width ? ">" + " ".repeat(width - done - 1) : "");
        String line = String.format("step %d/%d [%s] loss %.4f (avg %.4f) | lr %.2e | %,.0f tok/s | ETA %s",
                m.step(), m.totalSteps(), bar, m.loss(), emaLoss, m.lr(), tokens / Math.max(1e-9, seconds), duration(eta));
        if (terminal) {
            err.print("\r" + line + (last ? "\n" : ""));
        } else {
            err.println(line);
        }
        err.flush();
    }

    static String duration(long s) {
        if (s >= 3600) return String.format("%dh%02dm", s / 3600, (s % 3600) / 60);
        if (s >= 60) return String.format("%dm%02ds", s / 60, s % 60);
        return s + "s";
    }
}
