package dev.tenfold.qlora;

import dev.tenfold.llama.LoadSpec;
import java.util.Objects;

/**
 * A fine-tuning recipe as one value, as torchtune's recipes are: how the base model is loaded (the
 * RoPE base, NF4), the LoRA adapters, the training settings, the longest training sequence and the
 * sequences per optimizer step. {@link Recipes} holds the named ones; a caller changes a piece with
 * the withers (e.g. {@code recipe.withTraining(recipe.training().maxSteps(100))}).
 */
public record Recipe(LoadSpec load, LoraConfig lora, TrainingSettings training, int maxLength, int batchSize) {
    public Recipe {
        Objects.requireNonNull(load, "load");
        Objects.requireNonNull(lora, "lora");
        Objects.requireNonNull(training, "training");
        if (maxLength < 2) throw new InvalidSettingException("maxLength", "maxLength must be >= 2, got " + maxLength);
        if (batchSize < 1) throw new InvalidSettingException("batchSize", "batchSize must be >= 1, got " + batchSize);
    }

    public Recipe withLoad(LoadSpec l) { return new Recipe(l, lora, training, maxLength, batchSize); }

    public Recipe withLora(LoraConfig l) { return new Recipe(load, l, training, maxLength, batchSize); }

    public Recipe withTraining(TrainingSettings t) { return new Recipe(load, lora, t, maxLength, batchSize); }

    public Recipe withMaxLength(int n) { return new Recipe(load, lora, training, n, batchSize); }

    public Recipe withBatchSize(int n) { return new Recipe(load, lora, training, maxLength, n); }

    @Override
    public String toString() {
        return (load.ropeTheta() == null ? "" : "rope_theta " + plain(load.ropeTheta()) + ", ") + load.quantization().name() + " base, " + lora
                + ", " + training + ", batch " + batchSize + ", max length " + maxLength;
    }

    private static String plain(double v) { return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v); }
}
