package dev.tenfold.tools.charts;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;

/** {@link LossCurve}'s drawing (headless AWT): loaded only where java.desktop is. */
final class LossCurvePng {
    private LossCurvePng() {}

    static void write(Path png, String title, List<double[]> stepAndLoss) throws IOException {
        System.setProperty("java.awt.headless", "true");
        int w = 800, h = 480, left = 70, right = 20, top = 40, bottom = 50;
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, w, h);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString(title, left, 25);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        double minX = Double.MAX_VALUE, maxX = -Double.MAX_VALUE, minY = Double.MAX_VALUE, maxY = -Double.MAX_VALUE;
        for (double[] p : stepAndLoss) {
            if (!Double.isFinite(p[1])) continue;
            minX = Math.min(minX, p[0]);
            maxX = Math.max(maxX, p[0]);
            minY = Math.min(minY, p[1]);
            maxY = Math.max(maxY, p[1]);
        }
        if (minX > maxX) { minX = 0; maxX = 1; minY = 0; maxY = 1; }
        if (maxX == minX) maxX = minX + 1;
        if (maxY - minY < 1e-9) { maxY += 0.5; minY -= 0.5; }
        double pad = (maxY - minY) * 0.05;
        minY -= pad;
        maxY += pad;
        int pw = w - left - right, ph = h - top - bottom;
        g.drawLine(left, top, left, top + ph);
        g.drawLine(left, top + ph, left + pw, top + ph);
        for (int i = 0; i <= 5; i++) {
            double y = minY + (maxY - minY) * i / 5;
            int py = top + ph - (int) Math.round(ph * (double) i / 5);
            g.setColor(new Color(230, 230, 230));
            g.drawLine(left + 1, py, left + pw, py);
            g.setColor(Color.BLACK);
            g.drawString(String.format("%.3f", y), 8, py + 4);
            double x = minX + (maxX - minX) * i / 5;
            int px = left + (int) Math.round(pw * (double) i / 5);
            g.drawString(String.format("%.0f", x), px - 10, top + ph + 18);
        }
        g.drawString("step", left + pw / 2 - 12, h - 10);
        g.drawString("loss", 8, top - 8);
        g.setColor(new Color(31, 119, 180));
        g.setStroke(new BasicStroke(2f));
        int lastX = -1, lastY = -1;
        for (double[] p : stepAndLoss) {
            if (!Double.isFinite(p[1])) continue;
            int px = left + (int) Math.round(pw * (p[0] - minX) / (maxX - minX));
            int py = top + ph - (int) Math.round(ph * (p[1] - minY) / (maxY - minY));
            if (lastX >= 0) g.drawLine(lastX, lastY, px, py);
            else g.fillOval(px - 2, py - 2, 4, 4);
            lastX = px;
            lastY = py;
        }
        g.dispose();
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        ImageIO.write(img, "png", bytes);
        dev.tenfold.engine.io.AtomicFiles.write(png, bytes.toByteArray()); // no temporary left behind on a failure
    }
}
