package dev.tenfold.llama;

/**
 * The allowed values of a numeric setting: finite, between two bounds, each bound open or closed
 * (an infinite upper bound means none). Printed as the error messages show it: "> 0", ">= 1",
 * "in [0, 1)".
 */
public record Range(double min, boolean minOpen, double max, boolean maxOpen) {

    public Range {
        if (Double.isNaN(min) || Double.isNaN(max) || min > max) throw new IllegalArgumentException("bad range " + min + ".." + max);
    }

    /** (min, infinity): finite values above min. */
    public static Range greaterThan(double min) { return new Range(min, true, Double.POSITIVE_INFINITY, true); }

    /** [min, infinity): finite values from min on. */
    public static Range atLeast(double min) { return new Range(min, false, Double.POSITIVE_INFINITY, true); }

    /** [min, max]. */
    public static Range closed(double min, double max) { return new Range(min, false, max, false); }

    /** [min, max). */
    public static Range closedOpen(double min, double max) { return new Range(min, false, max, true); }

    /** (min, max]. */
    public static Range openClosed(double min, double max) { return new Range(min, true, max, false); }

    /** Whether v is finite and inside. */
    public boolean contains(double v) {
        if (!Double.isFinite(v)) return false;
        boolean aboveMin = minOpen ? v > min : v >= min;
        boolean belowMax = maxOpen ? v < max : v <= max;
        return aboveMin && belowMax;
    }

    /** v, or an error "NAME must be a finite number RANGE, got v". */
    public double check(String name, double v) {
        if (!contains(v)) throw new IllegalArgumentException(name + " must be a finite number " + this + ", got " + v);
        return v;
    }

    @Override
    public String toString() {
        if (max == Double.POSITIVE_INFINITY) return (minOpen ? "> " : ">= ") + format(min);
        return "in " + (minOpen ? "(" : "[") + format(min) + ", " + format(max) + (maxOpen ? ")" : "]");
    }

    static String format(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }
}
