package dev.tenfold.qlora;

import dev.tenfold.llama.LlamaModel;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;

/** Attaches LoRA adapters to a model's projections by their PEFT target names. */
public final class Lora {
    private Lora() {}

    /** The projections LoRA can target, by the short names the CLI takes and PEFT's module names. */
    public static final List<String> TARGETS = List.of("q", "k", "v", "o", "gate", "up", "down");

    /** Sets the dropout seed of every adapter (one per sequence and step, while training), or clears it (null). */
    public static void setDropoutSeed(LlamaModel model, Long seed) {
        model.mapLinears((module, linear) -> {
            if (linear instanceof LoraLinear lora) {
                if (seed == null) lora.clearDropoutSeed();
                else lora.setDropoutSeed(seed);
            }
            return linear;
        });
    }

    /** Sets the dropout probability of every adapter. */
    public static void setDropout(LlamaModel model, float p) {
        model.mapLinears((module, linear) -> {
            if (linear instanceof LoraLinear lora) lora.setDropout(p);
            return linear;
        });
    }

    /** Parses "q,k,v,o" (or PEFT's "q_proj,k_proj,...") into PEFT module names, in a fixed order. */
    public static Set<String> parseTargets(String list) {
        Set<String> out = new LinkedHashSet<>();
        for (String raw : list.split(",")) {
            String t = raw.trim().toLowerCase(Locale.ROOT);
            if (t.isEmpty()) continue;
            if (t.endsWith("_proj")) t = t.substring(0, t.length() - 5);
            if (!TARGETS.contains(t)) {
                throw new IllegalArgumentException("unknown LoRA target '" + raw.trim() + "' (choose among " + String.join(", ", TARGETS) + ")");
            }
            out.add(t + "_proj");
        }
        if (out.isEmpty()) throw new IllegalArgumentException("no LoRA targets given");
        return out;
    }

    /**
     * Wraps every targeted projection (module names ending in one of {@code targetModules}, e.g.
     * "q_proj") in a {@link LoraLinear}; the adapters are closed with the model and live where it
     * computes. Initialisation is deterministic for a seed.
     */
    public static List<LoraLinear> attach(LlamaModel model, Set<String> targetModules, int rank, float alpha, boolean rsLora,
                                          long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<LoraLinear> added = new ArrayList<>();
        model.mapLinears((module, linear) -> {
            String leaf = module.substring(module.lastIndexOf('.') + 1);
            if (!targetModules.contains(leaf)) return linear;
            LoraLinear lora = new LoraLinear(model.backend(), module, linear, rank, alpha, rsLora, rng);
            model.own(lora.a());
            model.own(lora.b());
            added.add(lora);
            return lora;
        });
        return added;
    }
}
