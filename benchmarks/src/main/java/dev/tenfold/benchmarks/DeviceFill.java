package dev.tenfold.benchmarks;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cuda.CudaBackend;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * Benchmark inputs on a GPU, made fast: a random pattern of at most {@link #PATTERN} elements is made
 * on the host, uploaded once and tiled over the tensor with device-to-device copies. Speed does not
 * depend on the values; the pattern only keeps them finite and varied (no NaN from uninitialised memory).
 */
final class DeviceFill {
    private DeviceFill() {}

    /** Elements in the host pattern (1 Mi). */
    static final int PATTERN = 1 << 20;

    /** t = uniform values in [-scale, scale) (F32 or BF16), or random bytes (U8); t is on the GPU. */
    static void random(CudaBackend gpu, Tensor t, long seed, float scale) {
        long n = t.numel();
        if (n == 0) return;
        int p = (int) Math.min(n, PATTERN);
        SplittableRandom rng = new SplittableRandom(seed);
        try (Tensor host = pattern(t.dtype(), p, rng, scale); Tensor dev = gpu.toDevice(host)) {
            Tensor flat = t.view(n);
            for (long off = 0; off < n; off += p) {
                long len = Math.min(p, n - off);
                gpu.copy(dev.slice(0, len), flat.slice(off, off + len));
            }
        }
    }

    /** A host tensor of p random elements of dtype. */
    static Tensor pattern(DType dtype, int p, SplittableRandom rng, float scale) {
        switch (dtype) {
            case F32, BF16 -> {
                float[] v = new float[p];
                for (int i = 0; i < p; i++) v[i] = (float) ((rng.nextDouble() * 2 - 1) * scale);
                Tensor t = Tensor.allocate(dtype, p);
                t.copyFrom(v);
                return t;
            }
            case U8 -> {
                byte[] b = new byte[p];
                rng.nextBytes(b);
                Tensor t = Tensor.allocate(DType.U8, p);
                MemorySegment.copy(b, 0, t.data(), ValueLayout.JAVA_BYTE, 0, p);
                return t;
            }
            default -> throw new IllegalArgumentException("DeviceFill: no random pattern for " + dtype);
        }
    }

    /** A new GPU tensor of uniform values in [-scale, scale) (F32, BF16) or random bytes (U8). */
    static Tensor random(CudaBackend gpu, DType dtype, long seed, float scale, long... shape) {
        Tensor t = gpu.allocateUninitialized(dtype, shape);
        try {
            random(gpu, t, seed, scale);
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
        return t;
    }

    /** A new GPU F32 tensor holding {@code value} everywhere. */
    static Tensor constant(CudaBackend gpu, float value, long... shape) {
        Tensor t = gpu.allocateUninitialized(DType.F32, shape);
        gpu.fill(t, value);
        return t;
    }

    /** A new GPU I32 tensor holding {@code values}. */
    static Tensor ints(CudaBackend gpu, int[] values) {
        try (Tensor host = Tensor.ofInts(values)) {
            return gpu.toDevice(host);
        }
    }

    /** A new GPU F32 tensor holding {@code values}. */
    static Tensor floats(CudaBackend gpu, float[] values) {
        try (Tensor host = Tensor.of(values)) {
            return gpu.toDevice(host);
        }
    }

    /** n ids uniform in [0, bound). */
    static int[] randomInts(int n, int bound, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] v = new int[n];
        for (int i = 0; i < n; i++) v[i] = rng.nextInt(bound);
        return v;
    }
}
