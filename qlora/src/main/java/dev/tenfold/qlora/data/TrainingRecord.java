package dev.tenfold.qlora.data;

import java.util.Arrays;
import java.util.Objects;

/**
 * One training sequence: token ids and, position by position, their labels.
 *
 * <p>Labels follow the Hugging Face convention: {@code labels[i]} belongs to position {@code i} of
 * {@code inputIds} (usually it is that same token), and the shift happens in the loss. Since the
 * model predicts token {@code t+1} from position {@code t}, the loss at position {@code i} compares
 * the logits there with {@code labels[i+1]}; {@link #targets()} returns exactly those shifted
 * targets, so the trainer never has to think about the offset. A label of {@link #IGNORE} (-100)
 * takes no part in the loss. {@code labels[0]} is never a target (nothing predicts the first token).
 *
 * <p>The arrays are not copied (a record can be 80K tokens long, and a plain-text record uses one
 * array for both ids and labels): treat them as read-only.
 *
 * @param inputIds the token ids, length n >= 1
 * @param labels   length n; each {@link #IGNORE} or a token id (>= 0)
 * @param source   where the record came from, "file:line", for messages
 */
public record TrainingRecord(int[] inputIds, int[] labels, String source) {
    /** The label of a position that takes no part in the loss (PyTorch's ignore_index). */
    public static final int IGNORE = -100;

    public TrainingRecord {
        Objects.requireNonNull(inputIds, "inputIds");
        Objects.requireNonNull(labels, "labels");
        Objects.requireNonNull(source, "source");
        if (inputIds.length == 0) throw new IllegalArgumentException(source + ": empty record");
        if (labels.length != inputIds.length) {
            throw new IllegalArgumentException(source + ": " + inputIds.length + " input ids but "
                    + labels.length + " labels");
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 && labels[i] != IGNORE) {
                throw new IllegalArgumentException(source + ": label " + labels[i] + " at position " + i
                        + " is neither " + IGNORE + " nor a token id");
            }
        }
    }

    /** The number of tokens. */
    public int length() {
        return inputIds.length;
    }

    /**
     * What the model should predict at each position but the last: {@code targets[i] = labels[i+1]},
     * length n-1 ({@link #IGNORE} where no loss is taken). A new array on every call.
     */
    public int[] targets() {
        return Arrays.copyOfRange(labels, 1, labels.length);
    }

    /** How many positions carry a loss: the targets that are not {@link #IGNORE}. */
    public int targetCount() {
        int n = 0;
        for (int i = 1; i < labels.length; i++) if (labels[i] != IGNORE) n++;
        return n;
    }

    // Records compare arrays by identity; compare their contents instead (tests, de-duplication).
    @Override
    public boolean equals(Object o) {
        return o instanceof TrainingRecord r && Arrays.equals(inputIds, r.inputIds)
                && Arrays.equals(labels, r.labels) && source.equals(r.source);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.hashCode(inputIds) + Arrays.hashCode(labels)) + source.hashCode();
    }

    @Override
    public String toString() {
        return "TrainingRecord[" + source + ", " + length() + " tokens, " + targetCount() + " targets]";
    }
}
