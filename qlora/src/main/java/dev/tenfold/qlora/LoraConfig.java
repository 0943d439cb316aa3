package dev.tenfold.qlora;

import dev.tenfold.llama.Range;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.Objects;
import java.util.Set;

/**
 * What LoRA adapters a model gets, as peft's LoraConfig says it: the rank r, lora_alpha,
 * lora_dropout, target_modules, use_rslora and whether the embedding is trained as a whole
 * (modules_to_save), plus the seed of A's initialisation. The single source of these values:
 * {@link Lora#attach} builds the adapters from it, and {@link PeftAdapter#save} derives
 * adapter_config.json from the adapters on the model.
 *
 * <p>Immutable; each wither returns a changed copy and checks its value, naming it as peft does
 * ({@code r must be in [1, 65536], got 0}).
 */
public final class LoraConfig {
    /** Largest rank accepted (peft's own adapters stay far below; r beyond the layer width is pointless). */
    public static final int MAX_RANK = 1 << 16;
    public static final Range LORA_ALPHA = Range.openClosed(0, 1 << 20), LORA_DROPOUT = Range.closedOpen(0, 1);

    private int rank;
    private float alpha;
    private float dropout;
    private Set<String> targetModules = Lora.parseTargets("q,k,v,o");
    private boolean rsLora;
    private boolean trainEmbeddings;
    private long seed;

    private LoraConfig() {}

    /** Rank {@code r} and {@code alpha} on q, k, v and o, no dropout, the embedding frozen, seed 0. */
    public static LoraConfig of(int r, float alpha) {
        return new LoraConfig().rank(r).alpha(alpha);
    }

    /** The rank r of A [r, in] and B [out, r]. */
    public LoraConfig rank(int r) {
        if (r < 1 || r > MAX_RANK) throw new InvalidSettingException("r", "r must be in [1, " + MAX_RANK + "], got " + r);
        return with(c -> c.rank = r);
    }

    /** lora_alpha: the update is scaled by alpha / r (alpha / sqrt(r) with rsLoRA). */
    public LoraConfig alpha(float a) {
        check("lora_alpha", LORA_ALPHA, a);
        return with(c -> c.alpha = a);
    }

    /** lora_dropout: dropout on the adapter's input while training. */
    public LoraConfig dropout(float p) {
        check("lora_dropout", LORA_DROPOUT, p);
        return with(c -> c.dropout = p);
    }

    /** The projections to adapt, as "q,k,v,o" or peft's names ("q_proj,v_proj"); see {@link Lora#TARGETS}. */
    public LoraConfig targets(String list) {
        try {
            return targetModules(Lora.parseTargets(list));
        } catch (IllegalArgumentException e) {
            throw new InvalidSettingException("target_modules", "target_modules: " + e.getMessage());
        }
    }

    /** peft's target_modules: module names ending in one of the projections ("q_proj", or a full module path). */
    public LoraConfig targetModules(Set<String> modules) {
        Set<String> copy = Collections.unmodifiableSet(new LinkedHashSet<>(modules));
        if (copy.isEmpty()) throw new InvalidSettingException("target_modules", "target_modules is empty");
        return with(c -> c.targetModules = copy);
    }

    /** use_rslora: scale by alpha / sqrt(r) (rank-stabilised LoRA). */
    public LoraConfig rsLora(boolean on) { return with(c -> c.rsLora = on); }

    /** Train the input embedding as a whole (peft's modules_to_save ["embed_tokens"]). */
    public LoraConfig trainEmbeddings(boolean on) { return with(c -> c.trainEmbeddings = on); }

    /** The seed of A's initialisation (B starts at zero). */
    public LoraConfig seed(long s) { return with(c -> c.seed = s); }

    public int rank() { return rank; }

    public float alpha() { return alpha; }

    public float dropout() { return dropout; }

    public Set<String> targetModules() { return targetModules; }

    public boolean rsLora() { return rsLora; }

    public boolean trainEmbeddings() { return trainEmbeddings; }

    public long seed() { return seed; }

    /** The factor of the adapter's update: alpha / r, or alpha / sqrt(r) with rsLoRA. */
    public float scale() { return (float) (rsLora ? alpha / Math.sqrt(rank) : alpha / rank); }

    private static void check(String name, Range range, double v) {
        if (!range.contains(v)) throw new InvalidSettingException(name, name + " must be a finite number " + range + ", got " + v);
    }

    private LoraConfig with(java.util.function.Consumer<LoraConfig> change) {
        LoraConfig c = new LoraConfig();
        c.rank = rank;
        c.alpha = alpha;
        c.dropout = dropout;
        c.targetModules = targetModules;
        c.rsLora = rsLora;
        c.trainEmbeddings = trainEmbeddings;
        c.seed = seed;
        change.accept(c);
        return c;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LoraConfig c && rank == c.rank && Float.compare(alpha, c.alpha) == 0 && Float.compare(dropout, c.dropout) == 0
                && targetModules.equals(c.targetModules) && rsLora == c.rsLora && trainEmbeddings == c.trainEmbeddings && seed == c.seed;
    }

    @Override
    public int hashCode() { return Objects.hash(rank, alpha, dropout, targetModules, rsLora, trainEmbeddings, seed); }

    @Override
    public String toString() {
        return "LoRA r=" + rank + " alpha=" + alpha + (rsLora ? " (rsLoRA)" : "") + (dropout > 0 ? " dropout=" + dropout : "") + " on "
                + String.join(",", targetModules) + (trainEmbeddings ? ", trained embedding" : "");
    }
}
