package dev.tenfold.engine;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The shared argument checks: both backends' ops give the same messages for the same bad arguments
 * (checked on host tensors: the checks never read data), and device tensors on another device are refused.
 */
class OpChecksTest {
    private static final Backend REF = CpuBackend.reference();
    private final List<Tensor> made = new ArrayList<>();

    private Tensor t(long... shape) { return keep(Tensor.allocate(DType.F32, shape)); }

    private Tensor t(DType dtype, long... shape) { return keep(Tensor.allocate(dtype, shape)); }

    private Tensor keep(Tensor x) {
        made.add(x);
        return x;
    }

    @AfterEach
    void close() { made.forEach(Tensor::close); }

    /** Both calls throw IllegalArgumentException with the same message. */
    private static void same(Executable cpu, Executable cuda) {
        IllegalArgumentException expected = assertThrows(IllegalArgumentException.class, cpu, "the CPU backend accepted it");
        IllegalArgumentException actual = assertThrows(IllegalArgumentException.class, cuda, "the CUDA checks accepted it");
        assertEquals(expected.getMessage(), actual.getMessage());
    }

    @Test
    void matmul() {
        same(() -> REF.matmul(t(2, 3), false, t(4, 5), false, t(2, 5), false),
                () -> OpChecks.matmul(t(2, 3), false, t(4, 5), false, t(2, 5)));
        same(() -> REF.matmul(t(2, 3), false, t(3, 4), false, t(2, 5), false),
                () -> OpChecks.matmul(t(2, 3), false, t(3, 4), false, t(2, 5)));
        same(() -> REF.matmul(t(2, 3), false, t(3, 4), false, t(DType.F16, 2, 4), false),
                () -> OpChecks.matmul(t(2, 3), false, t(3, 4), false, t(DType.F16, 2, 4)));
        same(() -> REF.matmul(t(2, 3), false, t(2, 3, 4), false, t(2, 4), false),
                () -> OpChecks.matmul(t(2, 3), false, t(2, 3, 4), false, t(2, 4)));
        same(() -> REF.matmul(t(DType.I32, 2, 3), false, t(3, 4), false, t(2, 4), false),
                () -> OpChecks.matmul(t(DType.I32, 2, 3), false, t(3, 4), false, t(2, 4)));
        OpChecks.MatmulDims d = OpChecks.matmul(t(5, 3, 2), true, t(DType.BF16, 4, 3), true, t(5, 2, 4));
        assertEquals(new OpChecks.MatmulDims(5, 2, 4, 3, false), d);
    }

    @Test
    void elementwiseAndCast() {
        same(() -> REF.add(t(3), t(4), t(3)), () -> OpChecks.elementwise("add", t(3), t(4), t(3)));
        same(() -> REF.mul(t(3), t(3), t(2)), () -> OpChecks.elementwise("mul", t(3), t(3), t(2)));
        same(() -> REF.scale(t(3), 2f, t(DType.BF16, 3)), () -> OpChecks.elementwise("scale", t(3), null, t(DType.BF16, 3)));
        same(() -> REF.cast(t(DType.I32, 3), t(3)), () -> OpChecks.cast(t(DType.I32, 3), t(3)));
        same(() -> REF.cast(t(3), t(DType.BF16, 4)), () -> OpChecks.cast(t(3), t(DType.BF16, 4)));
    }

    @Test
    void embedding() {
        same(() -> REF.embedding(t(10, 4), t(DType.I32, 3), t(3, 5)),
                () -> OpChecks.embedding("embedding", t(10, 4), t(DType.I32, 3), t(3, 5), false));
        same(() -> REF.embedding(t(10, 4), t(3), t(3, 4)),
                () -> OpChecks.embedding("embedding", t(10, 4), t(3), t(3, 4), false));
        same(() -> REF.embeddingBackward(t(3, 4), t(DType.I32, 3), t(DType.BF16, 10, 4)),
                () -> OpChecks.embedding("embeddingBackward", t(DType.BF16, 10, 4), t(DType.I32, 3), t(3, 4), true));
    }

    @Test
    void rmsnorm() {
        same(() -> REF.rmsnorm(t(2, 4), t(5), 1e-5f, t(2, 4), t(2)),
                () -> OpChecks.rmsnorm("rmsnorm", t(2, 4), t(5), t(2), t(2, 4), "out", null, null));
        same(() -> REF.rmsnorm(t(2, 4), t(4), 1e-5f, t(2, 4), t(3)),
                () -> OpChecks.rmsnorm("rmsnorm", t(2, 4), t(4), t(3), t(2, 4), "out", null, null));
        same(() -> REF.rmsnormBackward(t(2, 4), t(2, 4), t(4), t(2), t(2, 4), t(3)),
                () -> OpChecks.rmsnormBackward(t(2, 4), t(2, 4), t(4), t(2), t(2, 4), t(3)));
        same(() -> REF.rmsnormBackward(t(2, 4), t(2, 4), t(4), t(2), null, null),
                () -> OpChecks.rmsnormBackward(t(2, 4), t(2, 4), t(4), t(2), null, null));
    }

    @Test
    void rope() {
        same(() -> REF.rope(t(2, 3, 5), t(2), t(DType.I32, 2), 1f, t(2, 3, 5)),
                () -> OpChecks.rope("rope", t(2, 3, 5), "x", t(2), t(DType.I32, 2), t(2, 3, 5), "out"));
        same(() -> REF.rope(t(1, 2, 3, 4), t(2), t(DType.I32, 3), 1f, t(1, 2, 3, 4)),
                () -> OpChecks.rope("rope", t(1, 2, 3, 4), "x", t(2), t(DType.I32, 3), t(1, 2, 3, 4), "out"));
        same(() -> REF.ropeBackward(t(2, 3, 4), t(2), t(DType.I32, 2), 1f, t(2, 3, 2)),
                () -> OpChecks.rope("ropeBackward", t(2, 3, 4), "dOut", t(2), t(DType.I32, 2), t(2, 3, 2), "dx"));
        same(() -> REF.rope(t(2, 4), t(2), t(DType.I32, 2), 1f, t(2, 4)),
                () -> OpChecks.rope("rope", t(2, 4), "x", t(2), t(DType.I32, 2), t(2, 4), "out"));
    }

    @Test
    void swigluAndSoftmax() {
        same(() -> REF.swiglu(t(3), t(4), t(3)), () -> OpChecks.swiglu("swiglu", t(3), new String[] {"up", "out"}, t(4), t(3)));
        same(() -> REF.swigluBackward(t(3), t(3), t(3), t(3), t(2)),
                () -> OpChecks.swiglu("swigluBackward", t(3), new String[] {"dOut", "up", "dGate", "dUp"}, t(3), t(3), t(3), t(2)));
        same(() -> REF.softmax(t(DType.BF16, 2, 3), t(2, 3)),
                () -> OpChecks.softmax("softmax", new String[] {"x", "out"}, t(DType.BF16, 2, 3), t(2, 3)));
        same(() -> REF.softmaxBackward(t(2, 3), t(2, 3), t(3, 2)),
                () -> OpChecks.softmax("softmaxBackward", new String[] {"dOut", "y", "dx"}, t(2, 3), t(2, 3), t(3, 2)));
    }

    @Test
    void attention() {
        same(() -> REF.attention(t(1, 5, 4, 8), t(1, 3, 2, 8), t(1, 3, 2, 8), 1f, t(1, 5, 4, 8), t(1, 4, 5)),
                () -> OpChecks.attentionForward(t(1, 5, 4, 8), t(1, 3, 2, 8), t(1, 3, 2, 8), t(1, 5, 4, 8), t(1, 4, 5)));
        same(() -> REF.attention(t(1, 5, 3, 8), t(1, 5, 2, 8), t(1, 5, 2, 8), 1f, t(1, 5, 3, 8), t(1, 3, 5)),
                () -> OpChecks.attentionForward(t(1, 5, 3, 8), t(1, 5, 2, 8), t(1, 5, 2, 8), t(1, 5, 3, 8), t(1, 3, 5)));
        same(() -> REF.attention(t(1, 5, 4, 8), t(1, 5, 2, 8), t(1, 5, 2, 8), 1f, t(1, 5, 4, 8), t(1, 5, 4)),
                () -> OpChecks.attentionForward(t(1, 5, 4, 8), t(1, 5, 2, 8), t(1, 5, 2, 8), t(1, 5, 4, 8), t(1, 5, 4)));
        same(() -> REF.attention(t(1, 5, 4, 8), t(1, 5, 2, 8), t(1, 6, 2, 8), 1f, t(1, 5, 4, 8), t(1, 4, 5)),
                () -> OpChecks.attentionForward(t(1, 5, 4, 8), t(1, 5, 2, 8), t(1, 6, 2, 8), t(1, 5, 4, 8), t(1, 4, 5)));
        same(() -> REF.attentionBackward(t(1, 5, 4, 8), t(1, 5, 4, 8), t(1, 5, 2, 8), t(1, 5, 2, 8), t(1, 5, 4, 8), t(1, 4, 5), 1f,
                        t(1, 5, 4, 8), t(1, 5, 2, 9), t(1, 5, 2, 8)),
                () -> OpChecks.attentionBackward(t(1, 5, 4, 8), t(1, 5, 4, 8), t(1, 5, 2, 8), t(1, 5, 2, 8), t(1, 5, 4, 8), t(1, 4, 5),
                        t(1, 5, 4, 8), t(1, 5, 2, 9), t(1, 5, 2, 8)));
    }

    @Test
    void crossEntropyAdamwReductionsNf4() {
        same(() -> REF.crossEntropy(t(3, 4), t(10, 5), t(DType.I32, 3), 1f, null, null),
                () -> OpChecks.crossEntropy(t(3, 4), t(10, 5), t(DType.I32, 3), null, null));
        same(() -> REF.crossEntropy(t(3, 4), t(10, 4), t(DType.I32, 2), 1f, null, null),
                () -> OpChecks.crossEntropy(t(3, 4), t(10, 4), t(DType.I32, 2), null, null));
        same(() -> REF.crossEntropy(t(3, 4), t(10, 4), t(DType.I32, 3), 1f, t(3, 4), t(10, 5)),
                () -> OpChecks.crossEntropy(t(3, 4), t(10, 4), t(DType.I32, 3), t(3, 4), t(10, 5)));
        Backend.AdamW hp = new Backend.AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0f);
        same(() -> REF.adamw(t(3), t(3), t(3), t(3), hp, 0), () -> OpChecks.adamw(t(3), t(3), t(3), t(3), hp, 0));
        same(() -> REF.adamw(t(3), t(3), t(3), t(4), hp, 1), () -> OpChecks.adamw(t(3), t(3), t(3), t(4), hp, 1));
        same(() -> REF.adamw(t(3), t(3), t(3), t(3), null, 1), () -> OpChecks.adamw(t(3), t(3), t(3), t(3), null, 1));
        same(() -> REF.sum(t(DType.BF16, 3)), () -> OpChecks.reduction("sum", t(DType.BF16, 3)));
        same(() -> REF.max(t(DType.I32, 3)), () -> OpChecks.reduction("max", t(DType.I32, 3)));
        same(() -> REF.dequantizeNf4(t(DType.U8, 64), t(3), null, null, 0f, t(128)),
                () -> OpChecks.nf4(t(DType.U8, 64), t(3), null, null, t(128)));
        same(() -> REF.dequantizeNf4(t(DType.U8, 64), t(DType.U8, 2), null, null, 0f, t(128)),
                () -> OpChecks.nf4(t(DType.U8, 64), t(DType.U8, 2), null, null, t(128)));
        same(() -> REF.dequantizeNf4(t(DType.U8, 64), t(2), t(1), t(256), 0f, t(128)),
                () -> OpChecks.nf4(t(DType.U8, 64), t(2), t(1), t(256), t(128)));
        same(() -> REF.dequantizeNf4(t(DType.U8, 60), t(2), null, null, 0f, t(128)),
                () -> OpChecks.nf4(t(DType.U8, 60), t(2), null, null, t(128)));
    }

    @Test
    void tensorsOnAnotherDeviceAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OpChecks.onDevice("add", Device.cuda(0), new String[] {"a", "b", "out"}, t(3), null, t(3)));
        assertEquals("add: a must be on cuda:0 (copy it there with Backend.copy) (got F32[3])", e.getMessage());
    }
}
