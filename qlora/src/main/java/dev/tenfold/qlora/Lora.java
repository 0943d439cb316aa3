package dev.tenfold.qlora;

import dev.tenfold.llama.HfSchema;
import dev.tenfold.llama.LlamaModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/** Attaches LoRA adapters to a model's projections by their PEFT target names. */
public final class Lora {
    private Lora() {}

    /** The projections LoRA can target, by the short names the CLI takes and PEFT's module names. */
    public static final List<String> TARGETS = Arrays.stream(HfSchema.Projection.values()).map(HfSchema.Projection::shortName).toList();

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

    /** Sets the dropout probability of every adapter (tests change it on a model they already built). */
    static void setDropout(LlamaModel model, float p) {
        model.mapLinears((module, linear) -> {
            if (linear instanceof LoraLinear lora) lora.setDropout(p);
            return linear;
        });
    }

    /** Parses "q,k,v,o" (or PEFT's "q_proj,k_proj,...") into PEFT module names, in a fixed order. */
    public static Set<String> parseTargets(String list) {
        Set<String> out = new LinkedHashSet<>();
        for (String raw : list.split(",")) {
            String t = raw.trim();
            if (t.isEmpty()) continue;
            HfSchema.Projection p = HfSchema.Projection.named(t);
            if (p == null) {
                throw new IllegalArgumentException("unknown LoRA target '" + t + "' (choose among " + String.join(", ", TARGETS) + ")");
            }
            out.add(p.leaf());
        }
        if (out.isEmpty()) throw new IllegalArgumentException("no LoRA targets given");
        return out;
    }

    /**
     * Wraps every projection that {@code config} targets (module names ending in one of its
     * target_modules' last parts, e.g. "q_proj") in a {@link LoraLinear}, and makes the embedding
     * trainable when it says so; the adapters are closed with the model and live where it
     * computes. Initialisation is deterministic for the config's seed.
     */
    public static List<LoraLinear> attach(LlamaModel model, LoraConfig config) {
        Set<String> leaves = new LinkedHashSet<>();
        for (String t : config.targetModules()) leaves.add(t.substring(t.lastIndexOf('.') + 1));
        SplittableRandom rng = new SplittableRandom(config.seed());
        List<LoraLinear> added = new ArrayList<>();
        model.mapLinears((module, linear) -> {
            String leaf = module.substring(module.lastIndexOf('.') + 1);
            if (!leaves.contains(leaf)) return linear;
            LoraLinear lora = new LoraLinear(model.backend(), module, linear, config, rng);
            model.own(lora.a());
            model.own(lora.b());
            added.add(lora);
            return lora;
        });
        if (config.trainEmbeddings()) model.trainEmbedding();
        return added;
    }
}
