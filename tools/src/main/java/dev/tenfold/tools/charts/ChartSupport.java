package dev.tenfold.tools.charts;

/**
 * Whether charts (loss.png, heatmaps) can be drawn: they need the java.desktop module, which a
 * trimmed runtime (the GPU bundle) leaves out to stay small; without it, commands skip their PNGs
 * and say so. This class must not touch AWT itself: the chart classes cannot even be loaded there.
 */
public final class ChartSupport {
    private ChartSupport() {}

    public static boolean available() {
        return ModuleLayer.boot().findModule("java.desktop").isPresent();
    }
}
