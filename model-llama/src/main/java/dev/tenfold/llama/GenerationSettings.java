package dev.tenfold.llama;

import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.Objects;
import java.util.Set;

/**
 * How {@link Generator} continues a prompt, as Hugging Face's GenerationConfig says it: at most
 * {@code maxNewTokens} tokens, greedy or sampled (temperature, top-p, seed), stopping after a stop
 * id. The stop ids are the model's own (config.json's eos_token_id) unless given; more can be
 * added ({@link #alsoStopAt}, e.g. a chat template's end of turn). Immutable; each wither returns a
 * changed copy and checks its value.
 */
public final class GenerationSettings {
    private int maxNewTokens;
    private int minNewTokens;
    private float temperature;
    private float topP = 1;
    private long seed;
    private Set<Integer> stopIds; // null: the model's eos ids
    private Set<Integer> extraStopIds = Set.of();

    private GenerationSettings() {}

    /** Greedy decoding of at most {@code maxNewTokens} tokens, stopping at the model's eos ids. */
    public static GenerationSettings greedy(int maxNewTokens) { return new GenerationSettings().maxNewTokens(maxNewTokens); }

    /** At most this many tokens after the prompt (0: none). */
    public GenerationSettings maxNewTokens(int n) {
        if (n < 0) throw new IllegalArgumentException("maxNewTokens must be >= 0, got " + n);
        return with(s -> s.maxNewTokens = n);
    }

    /**
     * No stop id may end the generation before {@code n} tokens (Hugging Face's min_new_tokens: the
     * stop ids' logits are masked until then), e.g. 1 so that the answer is never empty.
     */
    public GenerationSettings minNewTokens(int n) {
        if (n < 0) throw new IllegalArgumentException("minNewTokens must be >= 0, got " + n);
        return with(s -> s.minNewTokens = n);
    }

    /** Temperature and top-p sampling with a seed (temperature 0: greedy); see {@link Sampler}. */
    public GenerationSettings sampling(float temperature, float topP, long seed) {
        new Sampler(temperature, topP, seed); // checks the values
        return with(s -> {
            s.temperature = temperature;
            s.topP = topP;
            s.seed = seed;
        });
    }

    /** The ids after which generation stops (the stop id itself is not returned), instead of the model's eos ids. */
    public GenerationSettings stopIds(Set<Integer> ids) {
        Set<Integer> copy = Collections.unmodifiableSet(new LinkedHashSet<>(ids));
        return with(s -> s.stopIds = copy);
    }

    /** Ids to stop at besides the others (the model's eos ids, or those given). */
    public GenerationSettings alsoStopAt(int... ids) {
        Set<Integer> more = new LinkedHashSet<>(extraStopIds);
        for (int id : ids) more.add(id);
        Set<Integer> copy = Collections.unmodifiableSet(more);
        return with(s -> s.extraStopIds = copy);
    }

    public int maxNewTokens() { return maxNewTokens; }

    public int minNewTokens() { return minNewTokens; }

    public float temperature() { return temperature; }

    public float topP() { return topP; }

    public long seed() { return seed; }

    /** The ids generation stops at for {@code model}. */
    public Set<Integer> stopIdsFor(LlamaModel model) {
        Set<Integer> out = new LinkedHashSet<>(stopIds != null ? stopIds : model.config().eosTokenIds());
        out.addAll(extraStopIds);
        return out;
    }

    /** A new sampler for one generation (a sampler's random stream is not shared between generations). */
    public Sampler sampler() { return new Sampler(temperature, topP, seed); }

    private GenerationSettings with(java.util.function.Consumer<GenerationSettings> change) {
        GenerationSettings c = new GenerationSettings();
        c.maxNewTokens = maxNewTokens;
        c.minNewTokens = minNewTokens;
        c.temperature = temperature;
        c.topP = topP;
        c.seed = seed;
        c.stopIds = stopIds;
        c.extraStopIds = extraStopIds;
        change.accept(c);
        return c;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerationSettings g && maxNewTokens == g.maxNewTokens && minNewTokens == g.minNewTokens && Float.compare(temperature, g.temperature) == 0
                && Float.compare(topP, g.topP) == 0 && seed == g.seed && Objects.equals(stopIds, g.stopIds) && extraStopIds.equals(g.extraStopIds);
    }

    @Override
    public int hashCode() { return Objects.hash(maxNewTokens, minNewTokens, temperature, topP, seed, stopIds, extraStopIds); }
}
