package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The last step of a GPU run: tenfold's gpu-report.json beside the PyTorch peers' JSON lines
 * (kernel_peers.py, attention_peer.py, qlora_step_peer.py), matched by row id, as one short table —
 * tenfold's figure, the peer's, their ratio, and tenfold's % of the copy bandwidth or of cuBLAS. Writes
 * comparison.md and a draft of the results file to commit (benchmarks/results/YYYY-MM-DD-gpu.md) into
 * {@code --out}, and prints the table.
 *
 * <p>Usage: {@code GpuComparison --report gpu-report.json [--peers a.jsonl b.jsonl ...] [--build BUILD.txt] [--out DIR]}
 */
public final class GpuComparison {
    private static final ObjectMapper JSON = new ObjectMapper();

    private GpuComparison() {}

    /** A peer's figure for one row. */
    record Peer(String bench, String id, String impl, String shape, String unit, double value, String note) {}

    /** What the peers' lines said: figures by id, why rows or whole scripts were skipped or failed, their environments. */
    record PeerData(Map<String, Peer> rows, Map<String, String> reasons, List<JsonNode> envs, List<String> problems) {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        Path report = null, outDir = Path.of("."), build = null;
        List<Path> peers = new ArrayList<>();
        try {
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--report" -> report = Path.of(need(args, ++i, "--report"));
                    case "--out" -> outDir = Path.of(need(args, ++i, "--out"));
                    case "--build" -> build = Path.of(need(args, ++i, "--build"));
                    case "--peers" -> {
                        while (i + 1 < args.length && !args[i + 1].startsWith("--")) peers.add(Path.of(args[++i]));
                    }
                    default -> throw new IllegalArgumentException("unknown argument '" + args[i] + "'");
                }
            }
            if (report == null) throw new IllegalArgumentException("--report FILE is required");
        } catch (IllegalArgumentException e) {
            err.println("gpu-compare: " + e.getMessage());
            err.println("usage: GpuComparison --report gpu-report.json [--peers FILE.jsonl ...] [--build FILE] [--out DIR]");
            return 2;
        }
        try {
            JsonNode tenfold = Files.exists(report) ? JSON.readTree(report.toFile())
                    : JSON.createObjectNode().put("skipped", "no " + report + " (the tenfold report did not run)");
            List<String> lines = new ArrayList<>();
            for (Path p : peers) {
                if (Files.exists(p)) lines.addAll(Files.readAllLines(p, StandardCharsets.UTF_8));
                else lines.add(JSON.createObjectNode().put("bench", stem(p)).put("skipped", "no " + p + " (that peer did not run)").toString());
            }
            PeerData data = readPeers(lines);
            String table = table(tenfold, data);
            out.println(table);
            String buildInfo = build != null && Files.exists(build) ? Files.readString(build).strip() : null;
            Path md = outDir.resolve(REPORT_NAME);
            GpuReport.writeAtomically(md, table);
            Path draft = outDir.resolve(resultsFileName(tenfold));
            Path reportMd = report.resolveSibling(GpuReport.REPORT_MD);
            String full = Files.exists(reportMd) ? Files.readString(reportMd) : null;
            GpuReport.writeAtomically(draft, resultsDraft(tenfold, data, table, full, buildInfo));
            err.println("gpu-compare: written " + md + " and " + draft + " (the draft of benchmarks/results/" + draft.getFileName() + ")");
            return 0;
        } catch (IOException e) {
            err.println("gpu-compare: " + e.getMessage());
            return 1;
        }
    }

    static final String REPORT_NAME = "comparison.md";

    /** "attention_peer" for .../attention_peer.jsonl. */
    static String stem(Path p) {
        String n = p.getFileName().toString();
        int dot = n.indexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }

    private static String need(String[] args, int i, String option) {
        if (i >= args.length) throw new IllegalArgumentException(option + " needs a value");
        return args[i];
    }

    // ------------------------------------------------------------------ reading the peers

    /** The peer script that measures a row id (to apply a whole script's "skipped" line to its rows). */
    static String benchOf(String id) {
        if (id.startsWith("attn_")) return "attention_peer";
        if (id.startsWith("qlora_")) return "qlora_step_peer";
        return "kernel_peers";
    }

    /** Parses the peers' JSON lines; anything unreadable becomes a problem line, not an exception. */
    static PeerData readPeers(List<String> lines) {
        Map<String, Peer> rows = new LinkedHashMap<>();
        Map<String, String> reasons = new LinkedHashMap<>();
        List<JsonNode> envs = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        for (String line : lines) {
            String t = line.strip();
            if (t.isEmpty()) continue;
            JsonNode n;
            try {
                n = JSON.readTree(t);
            } catch (IOException e) {
                problems.add("not JSON: " + abbreviate(t, 120));
                continue;
            }
            if (n == null || !n.isObject()) {
                problems.add("not a JSON object: " + abbreviate(t, 120));
                continue;
            }
            String bench = n.path("bench").asText("");
            String id = n.path("id").asText("");
            if ("env".equals(n.path("kind").asText())) {
                envs.add(n);
            } else if (n.has("skipped") || n.has("error")) {
                String why = n.has("skipped") ? "skipped: " + n.get("skipped").asText() : "error: " + n.get("error").asText();
                String key = !id.isEmpty() ? id : "*" + bench;
                reasons.putIfAbsent(key, why);
            } else if (!id.isEmpty() && n.has("value")) {
                double v = n.get("value").isNumber() ? n.get("value").asDouble() : Double.NaN;
                rows.putIfAbsent(id, new Peer(bench, id, n.path("impl").asText(bench), n.path("shape").asText(null),
                        n.path("unit").asText(""), v, n.has("note") ? n.get("note").asText() : null));
            } else {
                problems.add("a line without id and value: " + abbreviate(t, 120));
            }
        }
        return new PeerData(rows, reasons, envs, problems);
    }

    /** Why there is no peer figure for {@code id}, or null when nothing said so. */
    static String reason(PeerData data, String id) {
        String r = data.reasons().get(id);
        if (r != null) return r;
        r = data.reasons().get("*" + benchOf(id));
        if (r != null) return r;
        return data.reasons().get("*");
    }

    // ------------------------------------------------------------------ the table

    /** The comparison table (markdown), with footnotes for shape differences, skips and failures. */
    static String table(JsonNode tenfold, PeerData peers) {
        StringBuilder sb = new StringBuilder();
        JsonNode env = tenfold.path("env");
        sb.append("## tenfold vs PyTorch peers: ").append(env.path("gpu").asText("GPU ?")).append(", ").append(env.path("date").asText("?"))
                .append("\n\n");
        if (tenfold.has("skipped")) sb.append("tenfold's report was skipped: ").append(tenfold.get("skipped").asText()).append("\n\n");
        double copy = tenfold.path("reference").path("copy_gbps").asDouble(Double.NaN);
        double matmul = tenfold.path("reference").path("matmul_tflops").asDouble(Double.NaN);
        if (tenfold.path("reference").path("copy_gbps").isNull()) copy = Double.NaN;
        if (tenfold.path("reference").path("matmul_tflops").isNull()) matmul = Double.NaN;
        sb.append("Limits measured by tenfold in this run: copy ").append(GpuReport.rate(copy)).append(" GB/s, cuBLAS bf16 GEMM ")
                .append(GpuReport.rate(matmul)).append(" TFLOP/s. \"tenfold / peer\" > 1 means tenfold is faster (for GiB, smaller).\n\n");
        sb.append("| id | unit | tenfold | peer | peer impl | tenfold / peer | tenfold % of limit | target |\n")
                .append("|---|---|---:|---:|---|---:|---:|---|\n");
        List<String> notes = new ArrayList<>();
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (JsonNode r : tenfold.path("rows")) {
            String id = r.path("id").asText();
            seen.add(id);
            Peer p = peers.rows().get(id);
            if (r.has("error")) {
                sb.append("| ").append(id).append(" | | FAILED | ").append(p == null ? "—" : GpuReport.rate(p.value())).append(" | ")
                        .append(p == null ? "" : cell(p.impl())).append(" | | | |\n");
                notes.add(id + ": tenfold FAILED: " + r.path("error").asText());
                continue;
            }
            String unit = r.path("unit").asText();
            double value = number(r, "value"), pct = number(r, "pct_of_limit"), target = number(r, "target_pct");
            String peerCell = "—", implCell = "", ratioCell = "";
            if (p != null) {
                peerCell = GpuReport.rate(p.value()) + (p.unit().equals(unit) ? "" : " " + p.unit());
                implCell = cell(p.impl());
                if (p.unit().equals(unit) && p.value() > 0 && Double.isFinite(value)) {
                    double ratio = unit.equals("GiB") ? p.value() / value : value / p.value();
                    ratioCell = String.format(Locale.ROOT, "%.2fx", ratio);
                } else if (!p.unit().equals(unit)) {
                    notes.add(id + ": units differ (tenfold " + unit + ", peer " + p.unit() + "): no ratio");
                }
                String shape = r.path("shape").asText("");
                if (p.shape() != null && !p.shape().equals(shape)) {
                    notes.add(id + ": shapes differ: tenfold " + shape + ", peer " + p.shape());
                }
                if (p.note() != null) notes.add(id + " (peer): " + p.note());
            } else {
                String why = reason(peers, id);
                if (why != null) notes.add(id + ": no peer figure (" + why + ")");
            }
            sb.append("| ").append(id).append(" | ").append(unit).append(" | ").append(GpuReport.rate(value)).append(" | ").append(peerCell)
                    .append(" | ").append(implCell).append(" | ").append(ratioCell).append(" | ")
                    .append(Double.isFinite(pct) ? String.format(Locale.ROOT, "%.1f%%", pct) : "").append(" | ")
                    .append(GpuReport.target(target > 0 ? target : 0, pct)).append(" |\n");
        }
        for (Peer p : peers.rows().values()) {
            if (seen.contains(p.id())) continue;
            sb.append("| ").append(p.id()).append(" | ").append(p.unit()).append(" | — | ").append(GpuReport.rate(p.value())).append(" | ")
                    .append(cell(p.impl())).append(" | | | |\n");
        }
        String aborted = tenfold.path("aborted").isTextual() ? tenfold.path("aborted").asText() : null;
        if (aborted != null) notes.add("tenfold's report stopped early: " + aborted);
        for (Map.Entry<String, String> e : peers.reasons().entrySet()) {
            if (e.getKey().startsWith("*")) notes.add((e.getKey().length() > 1 ? e.getKey().substring(1) : "a peer") + ": " + e.getValue());
        }
        for (String pr : peers.problems()) notes.add("peer output: " + pr);
        if (!notes.isEmpty()) {
            sb.append("\nNotes:\n");
            for (String n : notes) sb.append("- ").append(n).append('\n');
        }
        return sb.toString();
    }

    private static double number(JsonNode r, String key) {
        JsonNode v = r.get(key);
        return v != null && v.isNumber() ? v.asDouble() : Double.NaN;
    }

    private static String cell(String s) { return s == null ? "" : s.replace("|", "\\|"); }

    private static String abbreviate(String s, int n) { return s.length() <= n ? s : s.substring(0, n) + "..."; }

    // ------------------------------------------------------------------ the results file

    /** benchmarks/results' name for a run: YYYY-MM-DD-&lt;gpu&gt;.md, e.g. 2026-12-01-h100-80gb-hbm3.md. */
    static String resultsFileName(JsonNode tenfold) {
        String date = tenfold.path("env").path("date").asText("");
        String day = date.length() >= 10 ? date.substring(0, 10) : java.time.LocalDate.now().toString();
        return day + "-" + gpuSlug(tenfold.path("env").path("gpu").asText("gpu")) + ".md";
    }

    /** "NVIDIA H100 80GB HBM3" -> "h100-80gb-hbm3". */
    static String gpuSlug(String name) {
        String s = name.replaceFirst("(?i)^nvidia\\s+", "").toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("^-+|-+$", "");
        return s.isEmpty() ? "gpu" : s;
    }

    /** The draft of the results file: environment, the comparison, tenfold's whole table, and places for the reader's notes. */
    static String resultsDraft(JsonNode tenfold, PeerData peers, String comparison, String fullReport, String buildInfo) {
        StringBuilder sb = new StringBuilder();
        JsonNode env = tenfold.path("env");
        sb.append("# GPU benchmarks: ").append(env.path("gpu").asText("?")).append(", ").append(env.path("date").asText("?")).append("\n\n");
        sb.append("Measured with the bundle's `run.sh` (`./tenfold bundle`; see benchmarks/results/README.md): tenfold's GpuReport and the"
                + " PyTorch peers, one after the other on the same GPU in the same session.\n\n");
        if (buildInfo != null) sb.append("Bundle: ").append(buildInfo.replace("\n", "; ")).append("\n\n");
        sb.append("Environment (tenfold):\n\n");
        env.fields().forEachRemaining(e -> sb.append("- ").append(e.getKey()).append(": ").append(e.getValue().asText()).append('\n'));
        if (!peers.envs().isEmpty()) {
            sb.append("\nEnvironment (peers):\n\n");
            for (JsonNode e : peers.envs()) sb.append("- ").append(e.toString()).append('\n');
        }
        sb.append('\n').append(comparison).append('\n');
        if (fullReport != null) {
            sb.append("## Every tenfold figure (gpu-report.md)\n\n");
            String body = fullReport.startsWith("# ") ? fullReport.substring(fullReport.indexOf('\n') + 1) : fullReport;
            sb.append(body.strip()).append("\n\n");
        }
        sb.append("## What these figures say\n\n(to be written by whoever ran this: which targets are met, where tenfold trails its peer"
                + " and why, anything odd in the logs.)\n");
        return sb.toString();
    }
}
