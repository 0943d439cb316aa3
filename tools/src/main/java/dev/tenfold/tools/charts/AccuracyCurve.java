package dev.tenfold.tools.charts;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;

/** A PNG of accuracy (0..100%) against context length (or another x such as a topic count), one point per x, evenly spaced. */
public final class AccuracyCurve {
    private AccuracyCurve() {}

    public static void write(Path png, String title, int[] lengths, double[] accuracy) throws IOException {
        String[] labels = new String[lengths.length];
        for (int i = 0; i < labels.length; i++) labels[i] = Heatmap.tokens(lengths[i]);
        write(png, title, labels, "context length (tokens)", accuracy);
    }

    /** The curve with its own x labels and axis title. */
    public static void write(Path png, String title, String[] labels, String xTitle, double[] accuracy) throws IOException {
        if (labels.length != accuracy.length) throw new IllegalArgumentException(labels.length + " lengths but " + accuracy.length + " accuracies");
        int w = 800, h = 480, left = 70, right = 30, top = 60, bottom = 55;
        BufferedImage img = Charts.canvas(w, h);
        Graphics2D g = Charts.start(img, title);
        int pw = w - left - right, ph = h - top - bottom;
        g.drawLine(left, top, left, top + ph);
        g.drawLine(left, top + ph, left + pw, top + ph);
        for (int i = 0; i <= 4; i++) {
            int py = top + ph - ph * i / 4;
            g.setColor(new Color(230, 230, 230));
            g.drawLine(left + 1, py, left + pw, py);
            g.setColor(Color.BLACK);
            g.drawString((25 * i) + "%", 25, py + 4);
        }
        // lengths usually double, so an even spacing reads like a log axis and keeps labels apart
        int n = labels.length;
        int[] xs = new int[n], ys = new int[n];
        for (int i = 0; i < n; i++) {
            xs[i] = left + (n == 1 ? pw / 2 : 20 + (pw - 40) * i / (n - 1));
            ys[i] = top + ph - (int) Math.round(ph * Math.max(0, Math.min(1, accuracy[i])));
            Charts.centered(g, labels[i], xs[i], top + ph + 18);
        }
        Charts.centered(g, xTitle, left + pw / 2, h - 12);
        g.drawString("accuracy", 8, top - 10);
        g.setColor(new Color(31, 119, 180));
        g.setStroke(Charts.stroke(2f));
        for (int i = 0; i < n; i++) {
            if (i > 0) g.drawLine(xs[i - 1], ys[i - 1], xs[i], ys[i]);
            g.fillOval(xs[i] - 4, ys[i] - 4, 8, 8);
        }
        g.dispose();
        Charts.write(img, png);
    }
}
