package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.DenseLinear;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The adapter merged into its base weight for a pass (y = x (W + s B A)^T, dx = dy (W + s B A)) against the
 * unmerged base product plus the adapter's own passes: the same output, input gradient and adapter gradients
 * up to f32 rounding; never merged while dropout is on (dropout applies to the adapter's input alone).
 */
class LoraMergeTest {
    static final int IN = 40, OUT = 24, T = 7;

    /** y, dx, dA and dB of one forward and backward with the merge forced one way. */
    static List<Tensor> pass(Backend backend, DType weightType, LoraLinear.Merge merge, float dropout) {
        SplittableRandom rng = new SplittableRandom(17);
        Tensor w = random(rng, weightType, OUT, IN); // setFloat rounds to BF16 where the weight is BF16
        LoraLinear lora = new LoraLinear(backend, "m", new DenseLinear(w), LoraConfig.of(4, 8f), new SplittableRandom(3));
        Tensor b = lora.b().value();
        for (long i = 0; i < b.numel(); i++) b.setFloat(i, (float) (rng.nextDouble() - 0.5));
        if (dropout > 0) {
            lora.setDropout(dropout);
            lora.setDropoutSeed(11);
        }
        lora.setMerge(merge);
        Tensor x = random(rng, DType.F32, T, IN), dy = random(rng, DType.F32, T, OUT);
        Tensor y = Tensor.allocate(DType.F32, T, OUT), dx = Tensor.allocate(DType.F32, T, IN);
        lora.forward(backend, x, y);
        lora.backward(backend, x, dy, dx);
        return new ArrayList<>(List.of(y, dx, lora.a().grad(), lora.b().grad()));
    }

    static Tensor random(SplittableRandom rng, DType dtype, long... shape) {
        Tensor t = Tensor.allocate(dtype, shape);
        for (long i = 0; i < t.numel(); i++) t.setFloat(i, (float) (rng.nextDouble() * 2 - 1));
        return t;
    }

    @Test
    void mergedMatchesUnmerged() {
        for (Backend backend : List.of(CpuBackend.fast(), CpuBackend.reference())) {
            for (DType weightType : List.of(DType.F32, DType.BF16)) {
                List<Tensor> merged = pass(backend, weightType, LoraLinear.Merge.ALWAYS, 0f);
                List<Tensor> unmerged = pass(backend, weightType, LoraLinear.Merge.NEVER, 0f);
                String[] names = {"y", "dx", "dA", "dB"};
                for (int i = 0; i < names.length; i++) {
                    Tensor m = merged.get(i), u = unmerged.get(i);
                    double max = 0, diff = 0;
                    for (long e = 0; e < u.numel(); e++) {
                        max = Math.max(max, Math.abs(u.getFloat(e)));
                        diff = Math.max(diff, Math.abs(m.getFloat(e) - u.getFloat(e)));
                    }
                    assertTrue(max > 0.1, names[i] + " is not trivially zero");
                    assertTrue(diff <= 1e-5 * max, backend.name() + " " + weightType + " " + names[i] + ": differs by " + diff + " of " + max);
                }
            }
        }
    }

    @Test
    void dropoutIsNeverMerged() {
        // with dropout the merged weight would be wrong (the base must see x, the adapter dropout(x)): forcing the
        // merge must change nothing, bit for bit
        List<Tensor> forced = pass(CpuBackend.fast(), DType.F32, LoraLinear.Merge.ALWAYS, 0.3f);
        List<Tensor> plain = pass(CpuBackend.fast(), DType.F32, LoraLinear.Merge.NEVER, 0.3f);
        for (int i = 0; i < forced.size(); i++) {
            for (long e = 0; e < forced.get(i).numel(); e++) assertEquals(plain.get(i).getFloat(e), forced.get(i).getFloat(e));
        }
    }
}
