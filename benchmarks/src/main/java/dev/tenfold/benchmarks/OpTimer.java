package dev.tenfold.benchmarks;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Wall time by backend op: {@link #backend} hands every call to the backend it wraps and, while {@link #start} has it
 * counting, adds up each op's time, calls and the Java heap bytes all threads allocated during it, by the op's name
 * (steady-state garbage in a kernel means boxed vectors: a vector helper the JIT did not inline). The times are exclusive: an op the backend runs inside
 * another (a product inside the loss) never comes through here, only the model's and the trainer's calls do. For a
 * backend that runs each op before it returns (the CPU's): a device backend only queues its ops, so this refuses one.
 * Calls come from one thread, as a training step makes them. Products are also added up by shape ({@link #products}), so
 * that each can be set beside the same shape's product on the peer's side, and beside its rate alone.
 */
final class OpTimer implements InvocationHandler {
    private final Backend target;
    private final Map<String, long[]> totals = new LinkedHashMap<>(); // op -> {nanoseconds, calls, bytes allocated}
    private final Map<String, long[]> products = new LinkedHashMap<>(); // "MxNxK" -> {nanoseconds, calls, flops}
    private final com.sun.management.ThreadMXBean threads =
            (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
    private boolean counting;

    OpTimer(Backend target) {
        if (!target.device().isCpu()) {
            throw new IllegalArgumentException("OpTimer times ops as they run, on the CPU; " + target.name() + " queues them on "
                    + target.device());
        }
        this.target = target;
    }

    /** The backend to give the model: the wrapped one, timed. */
    Backend backend() {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, this);
    }

    /** Forgets what was counted and counts from now. */
    void start() {
        totals.clear();
        products.clear();
        counting = true;
    }

    void stop() { counting = false; }

    /**
     * Each op's {nanoseconds, calls, bytes allocated} since {@link #start}, in the order the ops were first called (bytes
     * -1 where the JVM does not count allocations).
     */
    Map<String, long[]> totals() {
        Map<String, long[]> copy = new LinkedHashMap<>();
        totals.forEach((op, t) -> copy.put(op, t.clone()));
        return copy;
    }

    /**
     * The products since {@link #start} by shape, "MxNxK" (out is M x N, the sum runs over K; a batch of products counts
     * as its rows, M = batch x rows), each {nanoseconds, calls, flops}, in the order first called. Transposed and plain
     * operands of one shape count together, as the peer's profile cannot tell them apart.
     */
    Map<String, long[]> products() {
        Map<String, long[]> copy = new LinkedHashMap<>();
        products.forEach((shape, t) -> copy.put(shape, t.clone()));
        return copy;
    }

    /** {M, N, K} of a matmul call's arguments (a, transA, b, transB, out, accumulate), or null for another op. */
    private static long[] productDims(Method method, Object[] args) {
        if (!method.getName().equals("matmul") || args == null || args.length < 5 || !(args[0] instanceof Tensor a)
                || !(args[4] instanceof Tensor out)) return null;
        long[] as = a.shape(), os = out.shape();
        if (as.length < 2 || os.length < 2) return null;
        long n = os[os.length - 1], k = (Boolean) args[1] ? as[as.length - 2] : as[as.length - 1];
        return new long[] {n == 0 ? 0 : out.numel() / n, n, k};
    }

    /**
     * The name an op's time is added up under: the method's, and for a product with a side of at most
     * {@link #THIN_SIDE} (LoRA's rank-r products, which read and write whole activations for little arithmetic)
     * "matmul, thin" apart from the others.
     */
    private static String key(Method method, long[] mnk) {
        if (mnk != null && Math.min(mnk[0], Math.min(mnk[1], mnk[2])) <= THIN_SIDE) return "matmul, thin";
        return method.getName();
    }

    /** The largest side of a product counted as thin (LoRA's ranks: 8 to 64). */
    static final int THIN_SIDE = 64;

    @Override
    public Object invoke(Object proxy, Method method, Object[] args) throws Throwable {
        if (method.getDeclaringClass() == Object.class) {
            return switch (method.getName()) {
                case "equals" -> proxy == args[0];
                case "hashCode" -> System.identityHashCode(proxy);
                default -> "timed " + target.name();
            };
        }
        long bytes0 = counting ? threads.getTotalThreadAllocatedBytes() : -1;
        long t0 = System.nanoTime();
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause(); // the op's own exception, as the caller would have had it
        } finally {
            if (counting) {
                long t1 = System.nanoTime(), bytes1 = threads.getTotalThreadAllocatedBytes();
                long[] mnk = productDims(method, args);
                long[] t = totals.computeIfAbsent(key(method, mnk), k -> new long[3]);
                t[0] += t1 - t0;
                t[1]++;
                t[2] = bytes0 < 0 || bytes1 < 0 || t[2] < 0 ? -1 : t[2] + bytes1 - bytes0;
                if (mnk != null) {
                    long[] p = products.computeIfAbsent(mnk[0] + "x" + mnk[1] + "x" + mnk[2], k -> new long[3]);
                    p[0] += t1 - t0;
                    p[1]++;
                    p[2] += 2 * mnk[0] * mnk[1] * mnk[2];
                }
            }
        }
    }
}
