package dev.tenfold.qlora;

import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Quantization;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** The named recipes: what {@code tenfold train --recipe NAME} takes. */
public final class Recipes {
    private Recipes() {}

    /**
     * "Extending Llama-3's Context Ten-Fold Overnight" (Llama-3-8B-Instruct from 8K to 80K): the RoPE
     * base raised to 200M, the base in NF4, LoRA r 32 / alpha 16 on q, k, v, o with the embedding
     * trained, lr 5e-5 decaying linearly to 0 over one epoch, 8 sequences per step of up to 81,920
     * tokens.
     */
    public static final Recipe LLAMA3_80K = new Recipe(
            LoadSpec.defaults().ropeTheta(200e6).quantization(Quantization.NF4),
            LoraConfig.of(32, 16f).targets("q,k,v,o").trainEmbeddings(true),
            TrainingSettings.defaults().lr(5e-5).schedule(LrSchedule.Kind.LINEAR).epochs(1),
            81920, 8);

    private static final Map<String, Recipe> BY_NAME = new LinkedHashMap<>();

    static {
        BY_NAME.put("llama3-80k", LLAMA3_80K);
    }

    /** The names {@link #named} knows. */
    public static Set<String> names() { return BY_NAME.keySet(); }

    /** The recipe of that name (any case), or an error that lists the known ones. */
    public static Recipe named(String name) {
        Recipe r = BY_NAME.get(name.strip().toLowerCase(Locale.ROOT));
        if (r == null) throw new IllegalArgumentException("unknown recipe '" + name + "' (known: " + String.join(", ", names()) + ")");
        return r;
    }
}
