package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Kernel variants side by side: the gpu-report.json of each (variant, round) that `.gpu/run.sh variants` wrote,
 * from folders named {@code VARIANT-ROUND}, as one table of milliseconds per benchmark row, every round of every
 * variant, and each variant's median against the first variant's (the bundle's own kernels: "current"). The
 * variants ran alternately in one session on one GPU, so the machine's drift falls on all of them alike.
 *
 * <p>Usage: {@code GpuVariants [--baseline NAME] [--out DIR] FOLDER...}: prints the table and writes {@code variants.md}
 * into DIR; the baseline (default: the first folder's variant) is the one the others are compared with.
 * Exit 0; 1 when a folder has no readable report; 2 on bad arguments.
 */
public final class GpuVariants {
    static final String MD = "variants.md";
    private static final ObjectMapper JSON = new ObjectMapper();

    private GpuVariants() {}

    /** One benchmark row's milliseconds per variant, each variant's rounds in order. */
    record Row(String id, String shape, Map<String, List<Double>> ms) {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        Path outDir = null;
        String baseline = null; // the variant the others are compared with: the first one unless named
        List<Path> folders = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--out") && i + 1 < args.length) outDir = Path.of(args[++i]);
            else if (args[i].equals("--baseline") && i + 1 < args.length) baseline = args[++i];
            else if (args[i].startsWith("--")) return usage(err, "unknown option '" + args[i] + "'");
            else folders.add(Path.of(args[i]));
        }
        if (folders.isEmpty()) return usage(err, "no report folders given");
        Map<String, Row> rows = new LinkedHashMap<>();
        List<String> variants = new ArrayList<>();
        for (Path folder : folders) {
            String name = folder.getFileName().toString();
            int dash = name.lastIndexOf('-');
            if (dash <= 0 || !name.substring(dash + 1).matches("\\d+")) {
                return usage(err, "'" + folder + "' is not named VARIANT-ROUND (e.g. current-1)");
            }
            String variant = name.substring(0, dash);
            if (!variants.contains(variant)) variants.add(variant);
            JsonNode report;
            try {
                report = JSON.readTree(folder.resolve(GpuReport.REPORT_JSON).toFile());
            } catch (IOException e) {
                err.println("gpu-variants: no readable " + GpuReport.REPORT_JSON + " in " + folder + ": " + e.getMessage());
                return 1;
            }
            for (JsonNode r : report.path("rows")) {
                if (r.hasNonNull("error") || !r.hasNonNull("ms")) continue;
                Row row = rows.computeIfAbsent(r.path("id").asText(), id -> new Row(id, r.path("shape").asText(), new LinkedHashMap<>()));
                row.ms().computeIfAbsent(variant, v -> new ArrayList<>()).add(r.path("ms").asDouble());
            }
        }
        if (baseline != null) {
            if (!variants.remove(baseline)) {
                err.println("gpu-variants: no report of the baseline '" + baseline + "' among the folders (its runs failed?)");
                return 1;
            }
            variants.addFirst(baseline);
        }
        String table = table(variants, rows.values());
        out.print(table);
        if (outDir != null) {
            try {
                GpuReport.writeAtomically(outDir.resolve(MD), table);
            } catch (IOException e) {
                err.println("gpu-variants: could not write " + outDir.resolve(MD) + ": " + e.getMessage());
                return 1;
            }
        }
        return 0;
    }

    /** The markdown table: ms of each round per variant, and each later variant's speed against the first's. */
    static String table(List<String> variants, Iterable<Row> rows) {
        StringBuilder sb = new StringBuilder();
        String first = variants.getFirst();
        sb.append("| id | shape |");
        for (String v : variants) sb.append(' ').append(v).append(" ms |");
        for (String v : variants.subList(1, variants.size())) sb.append(' ').append(first).append(" / ").append(v).append(" |");
        sb.append('\n').append("|---|---|").append("---:|".repeat(2 * variants.size() - 1)).append('\n');
        for (Row r : rows) {
            sb.append("| ").append(r.id()).append(" | ").append(r.shape()).append(" |");
            for (String v : variants) {
                List<Double> ms = r.ms().get(v);
                sb.append(' ').append(ms == null ? "—" : String.join(" / ", ms.stream().map(GpuVariants::ms).toList())).append(" |");
            }
            List<Double> base = r.ms().get(first);
            for (String v : variants.subList(1, variants.size())) {
                List<Double> ms = r.ms().get(v);
                // > 1: the variant is faster than the first (its median time is lower)
                sb.append(base == null || ms == null ? " — |" : String.format(Locale.ROOT, " %.2fx |", median(base) / median(ms)));
            }
            sb.append('\n');
        }
        sb.append("\n\"").append(first).append(" / v\" > 1: v is faster (median of its rounds' times against the first variant's).\n");
        return sb.toString();
    }

    private static double median(List<Double> xs) { return GpuWork.median(xs.stream().mapToDouble(Double::doubleValue).toArray()); }

    private static String ms(double v) {
        return String.format(Locale.ROOT, v >= 100 ? "%.1f" : v >= 1 ? "%.2f" : "%.4f", v);
    }

    private static int usage(PrintStream err, String message) {
        err.println("gpu-variants: " + message);
        err.println("usage: GpuVariants [--baseline NAME] [--out DIR] VARIANT-ROUND... (folders holding gpu-report.json)");
        return 2;
    }
}
