package dev.tenfold.tools.charts;

import static org.junit.jupiter.api.Assertions.*;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The PNGs: the evaluations' heatmap and accuracy curve, and the training loss curve. */
class ChartsTest {
    @TempDir static Path dir;

    @Test
    void heatmapAndCurvePngs() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(ChartSupport.available(), "no java.desktop in this runtime");
        Path png = dir.resolve("heat.png");
        Heatmap.write(png, "test", new int[] {1024, 2048}, new double[] {0, 50, 100}, new double[][] {{1, 0, 0.5}, {0, 1, 1}});
        BufferedImage img = ImageIO.read(png.toFile());
        assertTrue(img.getWidth() > 200 && img.getHeight() > 100);
        // the first cell (score 1) is green, the second row's (score 0) red
        int good = img.getRGB(80 + 5, 45 + 5), bad = img.getRGB(80 + 5, 45 + 50 + 5);
        assertTrue(((good >> 8) & 0xff) > ((good >> 16) & 0xff), Integer.toHexString(good));
        assertTrue(((bad >> 16) & 0xff) > ((bad >> 8) & 0xff), Integer.toHexString(bad));
        Path curve = dir.resolve("curve.png");
        AccuracyCurve.write(curve, "test", new int[] {256, 512, 1024}, new double[] {1, 0.5, 0});
        assertNotNull(ImageIO.read(curve.toFile()));
        assertFalse(Files.exists(dir.resolve(".curve.png.tmp")));
        assertThrows(IllegalArgumentException.class, () -> Heatmap.write(png, "x", new int[] {1}, new double[] {0}, new double[][] {{1, 2}}));
    }

    @Test
    void aLossCurveThatCannotBeWrittenLeavesNoTemporary() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(ChartSupport.available(), "no java.desktop");
        Path folder = Files.createDirectories(dir.resolve("curve"));
        Files.writeString(Files.createDirectories(folder.resolve("loss.png")).resolve("x"), "a folder in the way of the rename");
        assertThrows(RuntimeException.class, () -> LossCurve.write(folder.resolve("loss.png"), "t", List.of(new double[] {1, 2}, new double[] {2, 1})));
        try (Stream<Path> s = Files.list(folder)) {
            assertEquals(List.of("loss.png"), s.map(p -> p.getFileName().toString()).toList());
        }
    }
}
