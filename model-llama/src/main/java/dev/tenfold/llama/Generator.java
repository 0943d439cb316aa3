package dev.tenfold.llama;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.IntConsumer;

/** Autoregressive generation with a KV cache: prefill the prompt once, then one token per step. */
public final class Generator {
    private Generator() {}

    /** The tokens after {@code prompt} as {@code settings} say (see {@link GenerationSettings}). */
    public static List<Integer> generate(LlamaModel model, int[] prompt, GenerationSettings settings) {
        return generate(model, prompt, settings, null);
    }

    /** As {@link #generate(LlamaModel, int[], GenerationSettings)}; {@code onToken} sees each token as it is produced. */
    public static List<Integer> generate(LlamaModel model, int[] prompt, GenerationSettings settings, IntConsumer onToken) {
        return generate(model, prompt, settings.maxNewTokens(), settings.minNewTokens(), settings.sampler(), settings.stopIdsFor(model), onToken);
    }

    private static List<Integer> generate(LlamaModel model, int[] prompt, int maxNewTokens, int minNewTokens, Sampler sampler, Set<Integer> stopIds,
                                          IntConsumer onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("generate: empty prompt");
        if (maxNewTokens < 0) throw new IllegalArgumentException("generate: max new tokens must be >= 0");
        List<Integer> out = new ArrayList<>();
        if (maxNewTokens == 0) return out;
        try (KvCache cache = new KvCache(model, prompt.length + maxNewTokens)) {
            float[] logits = model.forward(prompt, cache, null);
            for (int step = 0; step < maxNewTokens; step++) {
                if (step < minNewTokens) {
                    for (int id : stopIds) if (id >= 0 && id < logits.length) logits[id] = Float.NEGATIVE_INFINITY;
                }
                int next = sampler.sample(logits);
                if (stopIds.contains(next)) break;
                out.add(next);
                if (onToken != null) onToken.accept(next);
                if (step + 1 < maxNewTokens) logits = model.forward(new int[] {next}, cache, null);
            }
        }
        return out;
    }
}
