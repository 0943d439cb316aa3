package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * One training step's time in the parts both sides can be cut into, ms per step ({@code step-peer --ops}): the products
 * and the loss, attention's forward, its backward, and the rest. Products and loss go together because tenfold's loss
 * holds the output layer's two products (it never materializes the logits), which the peer runs in its {@code mm}.
 */
record OpGroups(double productsAndLoss, double attentionForward, double attentionBackward, double step, double profiledOverPlain) {
    /**
     * Above this profiled step / plain step the profiler slowed the peer's ops unevenly (at 4K tokens its memory-bound
     * ops far more than its products), so one scale no longer fits each op: its parts and per-shape rates are flagged.
     */
    static final double UNEVEN_PROFILE = 1.25;

    /** Everything else: the other ops, and on tenfold's side the time between ops. */
    double rest() { return step - productsAndLoss - attentionForward - attentionBackward; }

    /** The peer's ops that make its products and loss (the base layers, LoRA's, the output layer; the log-softmax and NLL). */
    static final Set<String> PEER_PRODUCTS_AND_LOSS = Set.of("aten::mm", "aten::addmm", "aten::bmm", "aten::_log_softmax",
            "aten::_log_softmax_backward_data", "aten::nll_loss_forward", "aten::nll_loss_backward");

    /**
     * From {@code cpu_step_peer.py profile}'s line: each aten op's self time, scaled so that all of them add up to the step
     * measured without the profiler (whose own cost inflates every op), so that the parts add up to the plain step.
     */
    static OpGroups ofPeer(JsonNode profile) {
        double stepMs = number(profile, "step_seconds") * 1000, scale = stepMs / number(profile, "profiled_ms_per_step");
        double products = 0, forward = 0, backward = 0;
        for (JsonNode op : profile.path("ops")) {
            String name = op.path("op").asText();
            double ms = op.path("self_ms").asDouble() * scale;
            if (name.contains("scaled_dot_product")) {
                if (name.endsWith("_backward")) backward += ms;
                else forward += ms;
            } else if (PEER_PRODUCTS_AND_LOSS.contains(name)) {
                products += ms;
            }
        }
        return new OpGroups(products, forward, backward, stepMs, 1 / scale);
    }

    /** From the line of StepPeer's tenfold side run with ops: the backend ops of its median step, within that step. */
    static OpGroups ofTenfold(JsonNode run) {
        double stepSeconds = run.path("ops_step_seconds").asDouble(Double.NaN);
        if (!run.path("ops").isArray() || !(stepSeconds > 0)) {
            throw new IllegalArgumentException("tenfold's run has no op times (run with ops): " + run);
        }
        double products = 0, forward = 0, backward = 0;
        for (JsonNode op : run.path("ops")) {
            double ms = op.path("ms").asDouble();
            switch (op.path("op").asText()) {
                case "matmul", "matmul, thin", "crossEntropy" -> products += ms;
                case "attention" -> forward += ms;
                case "attentionBackward" -> backward += ms;
                default -> { }
            }
        }
        return new OpGroups(products, forward, backward, stepSeconds * 1000, 1);
    }

    /** The two sides' parts as a markdown table: ms per step, and tenfold's speed against the peer's (peer ms / tenfold ms). */
    static String table(String title, OpGroups peer, OpGroups tenfold) {
        StringBuilder s = new StringBuilder();
        s.append("ops, ").append(title).append(" (ms per step; the peer's profiled ops scaled to its plain step)\n");
        if (peer.profiledOverPlain > UNEVEN_PROFILE) s.append(unevenProfile(peer.profiledOverPlain, "parts"));
        s.append("| part | peer | tenfold | tenfold speed / peer |\n|---|---:|---:|---:|\n");
        row(s, "products and loss (peer: mm, log-softmax, NLL; tenfold: matmul, crossEntropy)", peer.productsAndLoss, tenfold.productsAndLoss);
        row(s, "attention forward", peer.attentionForward, tenfold.attentionForward);
        row(s, "attention backward", peer.attentionBackward, tenfold.attentionBackward);
        row(s, "the rest (other ops; tenfold: and between ops)", peer.rest(), tenfold.rest());
        row(s, "step", peer.step, tenfold.step);
        return s.toString().stripTrailing();
    }

    private static String unevenProfile(double stretch, String what) {
        return String.format(Locale.ROOT, "(the profiler made the peer's step %.2fx longer: its ops did not slow alike, so the peer's "
                + "%s below are not reliable)%n", stretch, what);
    }

    private static void row(StringBuilder s, String part, double peer, double tenfold) {
        s.append(String.format(Locale.ROOT, "| %s | %,.1f | %,.1f | %s |%n", part, peer, tenfold,
                peer > 0 && tenfold > 0 ? String.format(Locale.ROOT, "%.2fx", peer / tenfold) : "-"));
    }

    /** Each side's n longest ops, one line each: name and ms per step (the peer's as profiled, unscaled). */
    static String topOps(JsonNode peerProfile, JsonNode tenfoldRun, int n) {
        StringBuilder peer = new StringBuilder("peer's longest ops (profiled ms per step):"),
                ours = new StringBuilder("tenfold's longest ops (ms per step, and MB of Java heap allocated where any):");
        int i = 0;
        for (JsonNode op : peerProfile.path("ops")) {
            if (i++ == n) break;
            peer.append(String.format(Locale.ROOT, " %s %.1f;", op.path("op").asText(), op.path("self_ms").asDouble()));
        }
        i = 0;
        for (JsonNode op : tenfoldRun.path("ops")) {
            if (i++ == n) break;
            double mb = op.path("allocated_mb").asDouble(0);
            ours.append(String.format(Locale.ROOT, " %s %.1f%s;", op.path("op").asText(), op.path("ms").asDouble(),
                    mb >= 0.05 ? String.format(Locale.ROOT, " (%.1f MB)", mb) : ""));
        }
        return peer + "\n" + ours;
    }

    /**
     * The products of both steps by shape "MxNxK" (out M x N, a sum over K), the n longest (on either side) first: calls,
     * ms and GFLOP/s per step on each side, and tenfold's speed against the peer's where both have the shape. The peer's
     * ms are scaled as in {@link #ofPeer}. tenfold's output layer runs inside its loss, so its two products show on the
     * peer's side only.
     */
    static String productsTable(JsonNode peerProfile, JsonNode tenfoldRun, int n) {
        double scale = number(peerProfile, "step_seconds") * 1000 / number(peerProfile, "profiled_ms_per_step");
        Map<String, double[]> rows = new LinkedHashMap<>(); // shape -> {peer ms, peer calls, tenfold ms, tenfold calls}
        for (JsonNode p : peerProfile.path("products")) {
            double[] r = rows.computeIfAbsent(p.path("shape").asText(), k -> new double[4]);
            r[0] += p.path("self_ms").asDouble() * scale;
            r[1] += p.path("calls").asDouble();
        }
        for (JsonNode p : tenfoldRun.path("products")) {
            double[] r = rows.computeIfAbsent(p.path("shape").asText(), k -> new double[4]);
            r[2] += p.path("ms").asDouble();
            r[3] += p.path("calls").asDouble();
        }
        StringBuilder s = new StringBuilder("products by shape, M x N x K (ms per step and GFLOP/s; tenfold's output layer runs inside "
                + "its loss and is not listed on its side)\n");
        if (1 / scale > UNEVEN_PROFILE) s.append(unevenProfile(1 / scale, "rates"));
        s.append("| M x N x K | peer calls | peer ms | peer GFLOP/s | tenfold calls | tenfold ms | tenfold GFLOP/s | tenfold speed / peer |\n");
        s.append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        rows.entrySet().stream().sorted(Comparator.comparingDouble(e -> -Math.max(e.getValue()[0], e.getValue()[2]))).limit(n).forEach(e -> {
            double[] r = e.getValue();
            double flops = flopsOf(e.getKey());
            s.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s | %s |%n", e.getKey(),
                    r[1] > 0 ? String.format(Locale.ROOT, "%.0f", r[1]) : "-", r[1] > 0 ? String.format(Locale.ROOT, "%.1f", r[0]) : "-",
                    rate(flops * r[1], r[0]), r[3] > 0 ? String.format(Locale.ROOT, "%.0f", r[3]) : "-",
                    r[3] > 0 ? String.format(Locale.ROOT, "%.1f", r[2]) : "-", rate(flops * r[3], r[2]),
                    r[0] > 0 && r[2] > 0 && r[1] > 0 && r[3] > 0 ? String.format(Locale.ROOT, "%.2fx", (r[0] / r[1]) / (r[2] / r[3])) : "-"));
        });
        return s.toString().stripTrailing();
    }

    /** 2 M N K of a shape "MxNxK". */
    static double flopsOf(String shape) {
        String[] d = shape.split("x");
        if (d.length != 3) throw new IllegalArgumentException("a product's shape is M x N x K, got " + shape);
        return 2.0 * Double.parseDouble(d[0]) * Double.parseDouble(d[1]) * Double.parseDouble(d[2]);
    }

    private static String rate(double flops, double ms) {
        return flops > 0 && ms > 0 ? String.format(Locale.ROOT, "%.0f", flops / ms / 1e6) : "-";
    }

    private static double number(JsonNode n, String field) {
        double v = n.path(field).asDouble(Double.NaN);
        if (!(v > 0)) throw new IllegalArgumentException("the peer's profile has no positive " + field + ": " + n);
        return v;
    }
}
