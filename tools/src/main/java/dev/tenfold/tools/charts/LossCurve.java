package dev.tenfold.tools.charts;

import dev.tenfold.qlora.RunFolder;
import dev.tenfold.qlora.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A PNG of the training loss against the step, with axes and labels. The drawing is in {@link LossCurvePng}:
 * this class, loaded by every training run, must not touch AWT, or a runtime without java.desktop (the GPU
 * bundle) fails on loading it (the verifier resolves AWT types) before {@link ChartSupport} is asked.
 */
public final class LossCurve {
    private LossCurve() {}

    /**
     * A listener that draws {@code dir}/loss.png from the metrics.jsonl a {@link RunFolder} keeps
     * there, when the run ends (without java.desktop it says so on stderr and draws nothing).
     */
    public static Trainer.Listener listener(Path dir) {
        return new Trainer.Listener() {
            @Override public void onStep(Trainer.StepMetrics step) {}

            @Override public void onEnd(Trainer trainer) throws IOException {
                if (!ChartSupport.available()) {
                    System.err.println("tenfold: loss.png skipped: this Java runtime has no java.desktop (metrics.jsonl has the numbers)");
                    return;
                }
                com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
                List<double[]> pts = new java.util.ArrayList<>();
                for (String line : Files.readAllLines(dir.resolve(RunFolder.METRICS), java.nio.charset.StandardCharsets.UTF_8)) {
                    if (line.isBlank()) continue;
                    com.fasterxml.jackson.databind.JsonNode n = json.readTree(line);
                    pts.add(new double[] {n.path("step").asDouble(), n.path("loss").asDouble(Double.NaN)});
                }
                write(dir.resolve("loss.png"), "training loss", pts);
            }
        };
    }

    /** Draws the curve (needs java.desktop: ask {@link ChartSupport#available()} first). */
    public static void write(Path png, String title, List<double[]> stepAndLoss) throws IOException {
        LossCurvePng.write(png, title, stepAndLoss);
    }
}
