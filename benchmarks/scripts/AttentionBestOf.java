// Best-of wall time of one causal attention forward + backward on the fast CPU backend, for a
// before/after comparison of two builds on a shared, loaded machine (the best run is the one the
// load disturbed least). Runs from source against any build's jars:
//   java --add-modules jdk.incubator.vector -cp "benchmarks/target/lib/*" benchmarks/scripts/AttentionBestOf.java T HQ HKV D [SECONDS]
// e.g. T=1024, 8 query heads, 2 kv heads, head dim 64, for 40 s. Prints one line.
import dev.tenfold.engine.*;
import dev.tenfold.engine.cpu.CpuBackend;
public class AttentionBestOf {
    public static void main(String[] x) {
        Backend b = CpuBackend.fast();
        int t = Integer.parseInt(x[0]), hq = Integer.parseInt(x[1]), hkv = Integer.parseInt(x[2]), d = Integer.parseInt(x[3]);
        Tensor q = Tensor.allocate(DType.F32, 1, t, hq, d), k = Tensor.allocate(DType.F32, 1, t, hkv, d), v = Tensor.allocate(DType.F32, 1, t, hkv, d);
        Tensor o = Tensor.allocate(DType.F32, 1, t, hq, d), lse = Tensor.allocate(DType.F32, 1, hq, t), dO = Tensor.allocate(DType.F32, 1, t, hq, d);
        Tensor dq = Tensor.allocate(DType.F32, 1, t, hq, d), dk = Tensor.allocate(DType.F32, 1, t, hkv, d), dv = Tensor.allocate(DType.F32, 1, t, hkv, d);
        java.util.Random r = new java.util.Random(1);
        for (Tensor z : new Tensor[]{q, k, v, dO}) for (long i = 0; i < z.numel(); i++) z.setFloat(i, (float) r.nextGaussian());
        double best = 1e9;
        long end = System.nanoTime() + (long) (x.length > 4 ? Double.parseDouble(x[4]) : 40) * 1_000_000_000L;
        int reps = 0;
        while (System.nanoTime() < end) {
            long t0 = System.nanoTime();
            b.attention(q, k, v, 0.1f, o, lse);
            b.attentionBackward(dO, q, k, v, o, lse, 0.1f, dq, dk, dv);
            best = Math.min(best, (System.nanoTime() - t0) / 1e6);
            reps++;
        }
        System.out.printf("T %d, %d/%d heads of %d: best %.1f ms (%d reps)%n", t, hq, hkv, d, best, reps);
    }
}
