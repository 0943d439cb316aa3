package dev.tenfold.tools.charts;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A PNG heatmap of scores 0..1 over context length (x) and needle depth (y, 0% at the top), with
 * a colour legend: the layout of the ten-fold recipe's needle-in-a-haystack figure.
 */
public final class Heatmap {
    private Heatmap() {}

    /** {@code scores[i][j]} is the score at {@code lengths[i]} and {@code depthsPercent[j]}. */
    public static void write(Path png, String title, int[] lengths, double[] depthsPercent, double[][] scores) throws IOException {
        if (scores.length != lengths.length) throw new IllegalArgumentException("scores has " + scores.length + " rows for " + lengths.length + " lengths");
        for (double[] row : scores) {
            if (row.length != depthsPercent.length) throw new IllegalArgumentException("a scores row has " + row.length + " cells for " + depthsPercent.length + " depths");
        }
        int left = 80, top = 45, bottom = 60, legendW = 90;
        int cellW = Math.max(40, Math.min(90, 720 / Math.max(1, lengths.length)));
        int cellH = Math.max(24, Math.min(50, 420 / Math.max(1, depthsPercent.length)));
        int pw = cellW * lengths.length, ph = cellH * depthsPercent.length;
        int w = left + pw + legendW + 20, h = top + ph + bottom;
        BufferedImage img = Charts.canvas(Math.max(w, 420), h);
        Graphics2D g = Charts.start(img, title);
        for (int i = 0; i < lengths.length; i++) {
            for (int j = 0; j < depthsPercent.length; j++) {
                int x = left + i * cellW, y = top + j * cellH;
                g.setColor(Charts.score(scores[i][j]));
                g.fillRect(x, y, cellW, cellH);
                g.setColor(Color.WHITE);
                g.drawRect(x, y, cellW, cellH);
                g.setColor(Color.BLACK);
                if (cellH >= 18) Charts.centered(g, String.format("%.2f", scores[i][j]), x + cellW / 2, y + cellH / 2 + 4);
            }
        }
        g.setColor(Color.BLACK);
        for (int i = 0; i < lengths.length; i++) Charts.centered(g, tokens(lengths[i]), left + i * cellW + cellW / 2, top + ph + 16);
        for (int j = 0; j < depthsPercent.length; j++) {
            String s = String.format("%.0f%%", depthsPercent[j]);
            g.drawString(s, left - 8 - g.getFontMetrics().stringWidth(s), top + j * cellH + cellH / 2 + 4);
        }
        Charts.centered(g, "context length (tokens)", left + pw / 2, top + ph + 40);
        AffineTransform saved = g.getTransform();
        g.rotate(-Math.PI / 2);
        Charts.centered(g, "needle depth", -(top + ph / 2), 18);
        g.setTransform(saved);
        // legend: a vertical bar from 1 (top) to 0 (bottom)
        int lx = left + pw + 25, lw = 18;
        for (int y = 0; y < ph; y++) {
            g.setColor(Charts.score(1 - (double) y / Math.max(1, ph - 1)));
            g.fillRect(lx, top + y, lw, 1);
        }
        g.setColor(Color.BLACK);
        g.drawRect(lx, top, lw, ph);
        g.drawString("1.0", lx + lw + 5, top + 10);
        g.drawString("0.5", lx + lw + 5, top + ph / 2 + 4);
        g.drawString("0.0", lx + lw + 5, top + ph);
        g.drawString("score", lx - 4, top - 6);
        g.dispose();
        Charts.write(img, png);
    }

    static String tokens(int n) {
        return n >= 1024 && n % 1024 == 0 ? (n / 1024) + "K" : Integer.toString(n);
    }
}
