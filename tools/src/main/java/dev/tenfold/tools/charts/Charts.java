package dev.tenfold.tools.charts;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import javax.imageio.ImageIO;

/** Shared drawing for the evaluation PNGs (headless AWT, written to a temporary name and renamed). */
final class Charts {
    private Charts() {}

    static BufferedImage canvas(int w, int h) {
        System.setProperty("java.awt.headless", "true");
        return new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    }

    static Graphics2D start(BufferedImage img, String title) {
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, img.getWidth(), img.getHeight());
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString(title, 20, 25);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        return g;
    }

    /** Red (0) through yellow (0.5) to green (1), as the recipe's needle figure colours its cells. */
    static Color score(double v) {
        double t = Double.isFinite(v) ? Math.max(0, Math.min(1, v)) : 0;
        int r, gr;
        if (t < 0.5) { r = 215; gr = (int) Math.round(48 + (220 - 48) * (t / 0.5)); }
        else { r = (int) Math.round(215 - (215 - 26) * ((t - 0.5) / 0.5)); gr = (int) Math.round(220 - (220 - 150) * ((t - 0.5) / 0.5)); }
        return new Color(r, gr, t < 0.5 ? 39 : 65);
    }

    static void centered(Graphics2D g, String s, int cx, int baseline) {
        FontMetrics fm = g.getFontMetrics();
        g.drawString(s, cx - fm.stringWidth(s) / 2, baseline);
    }

    static void write(BufferedImage img, Path png) throws IOException {
        Path tmp = png.resolveSibling("." + png.getFileName() + ".tmp");
        ImageIO.write(img, "png", tmp.toFile());
        Files.move(tmp, png, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    static BasicStroke stroke(float w) { return new BasicStroke(w); }
}
