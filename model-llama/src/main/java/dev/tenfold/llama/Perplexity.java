package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Scratch;
import dev.tenfold.engine.Tensor;
import java.util.List;

/**
 * Sliding-window perplexity as Hugging Face documents it: windows of at most {@code maxLength}
 * tokens, advanced by {@code stride}; each token is scored once, in the first window that reaches
 * it, with as much preceding context as that window holds. The loss is summed over tokens (not
 * averaged per window), so the mean is exact.
 */
public final class Perplexity {
    private Perplexity() {}

    /** Summed loss and token count over all sequences; perplexity = exp(mean). */
    public static Backend.LossSum evaluate(LlamaModel model, List<int[]> sequences, int maxLength, int stride) {
        if (maxLength < 2) throw new IllegalArgumentException("max length must be at least 2, got " + maxLength);
        if (stride < 1 || stride > maxLength) {
            throw new IllegalArgumentException("stride must be in [1, max length], got " + stride);
        }
        double sum = 0;
        long count = 0;
        for (int[] ids : sequences) {
            int prevEnd = 0;
            for (int begin = 0; begin < ids.length; begin += stride) {
                int end = Math.min(begin + maxLength, ids.length);
                Backend.LossSum w = window(model, ids, begin, end, Math.max(prevEnd, 1));
                sum += w.sum();
                count += w.count();
                prevEnd = end;
                if (end == ids.length) break;
            }
        }
        return new Backend.LossSum(sum, count);
    }

    /** Loss of the tokens at absolute indexes [firstScored, end) given the context ids[begin, end). */
    private static Backend.LossSum window(LlamaModel model, int[] ids, int begin, int end, int firstScored) {
        int len = end - begin;
        if (len < 2 || firstScored >= end) return new Backend.LossSum(0, 0);
        int h = model.config().hiddenSize();
        int[] window = java.util.Arrays.copyOfRange(ids, begin, end);
        int[] targets = new int[len - 1];
        for (int i = 0; i < len - 1; i++) {
            int abs = begin + i + 1; // the token predicted from row i
            targets[i] = abs >= firstScored ? ids[abs] : -100;
        }
        try (KvCache cache = new KvCache(model, len); Scratch scratch = new Scratch(model.backend())) {
            Tensor hidden = scratch.tensor(DType.F32, len, h);
            model.forward(window, cache, hidden);
            return model.backend().crossEntropy(hidden.slice(0, len - 1), model.output(), scratch.ints(targets), 0f, null, null);
        }
    }
}
