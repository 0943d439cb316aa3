package dev.tenfold.engine.plan;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Widened;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.cuda.CudaAllocator;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.cuda.CudaDriver;
import dev.tenfold.engine.cuda.DeviceMemory;
import dev.tenfold.engine.cuda.KernelAbi;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A backend that computes nothing and records every allocation and free: running the real training step
 * on it gives the exact memory that step needs, for any model size, without the memory. Its tensors are
 * placeholders (an address and a size, no storage: touching one from the host throws
 * {@code IllegalStateException: Already closed}); every op checks its arguments as the real backends do
 * (dtypes, shapes, devices) and then does nothing, except for what it allocates itself on the backend it
 * stands for ({@link Target}): the CUDA backend's temporaries (bf16 copies of f32 flash-attention
 * operands, the loss's logits chunks, reduction partials, the {@link Widened} copies of BF16 activations)
 * in the same order and sizes as {@link CudaBackend}, each from a real {@link CudaAllocator} whose
 * "device" hands out addresses only, so that its size classes, its cache and hence its slack are the
 * allocator's own.
 *
 * <p>Each allocation is put in a category (weights, checkpoints, ...) by the caller's rules: the nearest
 * frame on the allocating thread's stack whose {@code Class.method} or {@code Class} (simple names) has a
 * rule names it; memory an op allocates for itself is "attention scratch", "loss scratch" or "op
 * scratch". At each new peak of memory in use the categories are recorded ({@link #peak}).
 *
 * <p>{@link #allocateHost} memory (pinned host buffers of offloaded checkpoints) is counted apart.
 */
public final class PlanningBackend implements Backend {

    /** The backend whose memory is planned. */
    public enum Target {
        /** The test suite's simulated device: exactly the bytes asked for; ops allocate nothing. */
        SIMULATED,
        /**
         * The fast CPU backend's host memory as {@code HostMemory} counts it: exactly the bytes asked for, plus
         * the loss's logits chunk and the F32 copies of BF16 activations that its ops allocate.
         */
        CPU,
        /** The CUDA backend: its caching allocator's blocks and its ops' own temporaries. */
        CUDA
    }

    /** Memory at one moment: in use (allocator blocks), asked for, and host memory, by category (largest first). */
    public record Usage(long inUse, long requested, long host, Map<String, Long> inUseByCategory, Map<String, Long> requestedByCategory,
                        String site) {
        /** What the allocator's rounding adds to what was asked for. */
        public long slack() { return inUse - requested; }
    }

    private static final long FIRST_ADDRESS = 1L << 40;
    /** Placeholder memory: every address, in a scope that is already closed (the host cannot touch it). */
    private static final MemorySegment NOWHERE;

    static {
        try (Arena gone = Arena.ofConfined()) {
            NOWHERE = MemorySegment.NULL.reinterpret(Long.MAX_VALUE, gone, null);
        }
    }

    private final Target target;
    private final Device device;
    private final Map<String, String> rules;
    private final CudaAllocator allocator; // CUDA only
    private final Widened widened;
    private final Set<Long> seqlens = new HashSet<>();
    private long nextAddress = FIRST_ADDRESS, nextHostAddress = FIRST_ADDRESS;
    private long inUse, requested, host, allocations;
    private final Map<String, long[]> live = new TreeMap<>(); // category -> {in use, requested}
    private Usage peak = usage(null);
    private long peakHost;
    private String op; // the op running now, whose allocations are its own scratch

    /**
     * @param target whose memory to plan
     * @param device the device it stands for (not the host: the model then takes its device code paths)
     * @param rules  category of an allocation by the nearest stack frame's "SimpleClass.method" or "SimpleClass"
     */
    public PlanningBackend(Target target, Device device, Map<String, String> rules) {
        if (device.isCpu()) throw new IllegalArgumentException("a planning backend stands for a device other than the host, got " + device);
        this.target = target;
        this.device = device;
        this.rules = Map.copyOf(rules);
        this.allocator = target == Target.CUDA ? new CudaAllocator(new AddressesOnly()) : null;
        this.widened = target == Target.SIMULATED ? Widened.checksOnly() : Widened.countingOnly(this, this::allocate);
    }

    /** A host tensor of the right dtype and shape with no memory behind it (weights a plan uploads). */
    public static Tensor hostPlaceholder(DType dtype, long... shape) {
        long bytes = dtype.byteSize(Tensor.numelOf(shape));
        return Tensor.wrap(NOWHERE.asSlice(FIRST_ADDRESS, bytes), Device.CPU, dtype, shape);
    }

    /** The CUDA allocator's "device": addresses, never memory, never full. */
    private final class AddressesOnly implements DeviceMemory {
        @Override public long allocate(long bytes) {
            long a = nextAddress;
            nextAddress += Math.max(bytes, CudaAllocator.sizeClass(1));
            return a;
        }

        @Override public void free(long address) {}

        @Override public CudaDriver.MemoryInfo info() { return new CudaDriver.MemoryInfo(Long.MAX_VALUE, Long.MAX_VALUE); }

        @Override public String name() { return device + " (planned)"; }
    }

    public Target target() { return target; }

    @Override public String name() { return "plan-" + target.name().toLowerCase(java.util.Locale.ROOT) + "-" + device; }

    @Override public Device device() { return device; }

    @Override public DType activationDtype() { return target == Target.CUDA ? DType.BF16 : DType.F32; }

    // ------------------------------------------------------------------ accounting

    /** Memory held now. */
    public Usage now() { return usage(null); }

    /** The moment memory in use was highest since the last {@link #resetPeak}, with what held it. */
    public Usage peak() { return peak; }

    /** The most host memory ({@link #allocateHost}) held at once. */
    public long peakHost() { return peakHost; }

    /** Starts the peaks afresh from what is held now. */
    public void resetPeak() {
        peak = usage(null);
        peakHost = host;
    }

    /** Gives the CUDA allocator's cached blocks back (as {@link CudaAllocator#emptyCache} on a GPU); nothing elsewhere. */
    public void emptyCache() { if (allocator != null) allocator.emptyCache(); }

    @Override
    public void releaseCachedMemory() { emptyCache(); }

    /** Allocations so far (calls of allocate, the ops' own included). */
    public long allocations() { return allocations; }

    /**
     * Blocks taken from the device so far: the CUDA allocator's device allocations (a request its cache could
     * not serve); for the other targets every allocation.
     */
    public long deviceAllocations() { return allocator != null ? allocator.stats().deviceAllocations() : allocations; }

    /** The CUDA allocator's statistics (CUDA target only). */
    public CudaAllocator.Stats allocatorStats() {
        if (allocator == null) throw new IllegalStateException("allocator statistics are the CUDA target's");
        return allocator.stats();
    }

    private Usage usage(String site) {
        Map<String, Long> used = new LinkedHashMap<>(), asked = new LinkedHashMap<>();
        live.entrySet().stream().filter(e -> e.getValue()[0] > 0 || e.getValue()[1] > 0)
                .sorted((x, y) -> Long.compare(y.getValue()[0], x.getValue()[0]))
                .forEach(e -> {
                    used.put(e.getKey(), e.getValue()[0]);
                    asked.put(e.getKey(), e.getValue()[1]);
                });
        return new Usage(inUse, requested, host, used, asked, site);
    }

    private void add(String category, long size, long bytes, String site) {
        long[] c = live.computeIfAbsent(category, k -> new long[2]);
        c[0] += size;
        c[1] += bytes;
        inUse += size;
        requested += bytes;
        allocations++;
        if (inUse > peak.inUse()) peak = usage(site);
    }

    private void remove(String category, long size, long bytes) {
        long[] c = live.get(category);
        c[0] -= size;
        c[1] -= bytes;
        inUse -= size;
        requested -= bytes;
    }

    /** The category of an allocation made now, and where it was made. */
    private String[] classify() {
        if (op != null) {
            String c = switch (op) {
                case "attention", "attentionBackward" -> "attention scratch";
                case "crossEntropy" -> "loss scratch";
                default -> "op scratch";
            };
            return new String[] {c, op};
        }
        String self = PlanningBackend.class.getName();
        String[] found = StackWalker.getInstance().walk(frames -> frames
                .filter(f -> !f.getClassName().equals(self) && !f.getClassName().startsWith(self + "$"))
                .map(f -> {
                    String cls = f.getClassName().substring(f.getClassName().lastIndexOf('.') + 1);
                    // a nested class by its own name, then by its outermost one (lambdas have only the latter)
                    String inner = cls.substring(cls.lastIndexOf('$') + 1), outer = cls.contains("$") ? cls.substring(0, cls.indexOf('$')) : cls;
                    for (String name : new String[] {inner, outer}) {
                        String c = rules.get(name + "." + f.getMethodName());
                        if (c != null) return new String[] {c, name + "." + f.getMethodName()};
                        c = rules.get(name);
                        if (c != null) return new String[] {c, name + "." + f.getMethodName()};
                    }
                    return null;
                })
                .filter(java.util.Objects::nonNull)
                .findFirst().orElse(null));
        return found != null ? found : new String[] {"other", "?"};
    }

    // ------------------------------------------------------------------ memory

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        for (long d : shape) if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + java.util.Arrays.toString(shape));
        long bytes = dtype.byteSize(Tensor.numelOf(shape));
        String[] where = classify();
        long address, size;
        Runnable giveBack;
        if (allocator != null) {
            CudaAllocator.Block b = allocator.allocate(bytes);
            address = b.address();
            size = b.size();
            giveBack = () -> allocator.free(b);
        } else {
            address = nextAddress;
            nextAddress += Math.max(bytes, 64);
            size = bytes;
            giveBack = () -> {};
        }
        add(where[0], size, bytes, where[1]);
        return Tensor.owning(NOWHERE.asSlice(address, bytes), device, dtype, () -> {
            giveBack.run();
            remove(where[0], size, bytes);
        }, shape);
    }

    /**
     * Host memory for copies to and from the device: counted apart, as the pinned buffers of offloaded checkpoints
     * (for the CPU target, where it is the same memory, in the memory in use as well).
     */
    @Override
    public Tensor allocateHost(DType dtype, long... shape) {
        long bytes = dtype.byteSize(Tensor.numelOf(shape));
        long address = nextHostAddress;
        nextHostAddress += Math.max(bytes, 64);
        host += bytes;
        peakHost = Math.max(peakHost, host);
        String[] where = target == Target.CPU ? classify() : null;
        if (where != null) add(where[0], bytes, bytes, where[1]);
        return Tensor.owning(NOWHERE.asSlice(address, bytes), Device.CPU, dtype, () -> {
            host -= bytes;
            if (where != null) remove(where[0], bytes, bytes);
        }, shape);
    }

    /** A temporary of an op, as the backend planned for allocates it. */
    private Tensor temp(DType dtype, long... shape) { return allocate(dtype, shape); }

    private void enter(String name) { if (op == null) op = name; }

    private void exit(String name) { if (name.equals(op)) op = null; }

    private void on(String op, String[] names, Tensor... ts) {
        for (int i = 0; i < ts.length; i++) {
            Tensor t = ts[i];
            if (t != null && !t.device().equals(device)) {
                throw Check.fail(op, names[i] + " must be on " + device + " (copy it there with Backend.copy)", t);
            }
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        OpChecks.copy(src, dst);
        for (Tensor t : new Tensor[] {src, dst}) {
            if (!t.device().isCpu() && !t.device().equals(device)) {
                throw new IllegalArgumentException("copy: " + name() + " copies between the host and " + device + " only, got "
                        + src.describe() + " into " + dst.describe());
            }
        }
    }

    @Override
    public Pending copyAsync(Tensor src, Tensor dst) {
        copy(src, dst);
        return Pending.DONE;
    }

    /** Checked as the backend planned for checks it (both tensors on the host or both on its device); moves nothing, allocates nothing. */
    @Override
    public void copy2d(Tensor src, long srcOffsetBytes, long srcPitchBytes, Tensor dst, long dstOffsetBytes, long dstPitchBytes,
                       long widthBytes, long rows) {
        OpChecks.copy2d(src, srcOffsetBytes, srcPitchBytes, dst, dstOffsetBytes, dstPitchBytes, widthBytes, rows);
        boolean bothHost = src.device().isCpu() && dst.device().isCpu();
        if (!bothHost && !(src.device().equals(device) && dst.device().equals(device))) {
            throw new IllegalArgumentException("copy2d: " + name() + " copies within the host or within " + device + ", got "
                    + src.describe() + " into " + dst.describe());
        }
    }

    @Override
    public void fill(Tensor t, float value) {
        Check.dtype("fill", "t", t, DType.F32);
        on("fill", new String[] {"t"}, t);
    }

    // ------------------------------------------------------------------ ops: the checks, then what the target allocates

    @Override
    public void dequantizeNf4(Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode, float offset, Tensor out) {
        OpChecks.nf4(packed, absmax, nestedAbsmax, nestedCode, out);
        on("dequantizeNf4", new String[] {"packed", "absmax", "nestedAbsmax", "nestedCode", "out"}, packed, absmax, nestedAbsmax, nestedCode, out);
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        OpChecks.MatmulDims d = OpChecks.matmul(a, transA, b, transB, out, DType.F32, DType.BF16);
        on("matmul", new String[] {"a", "b", "out"}, a, b, out);
        enter("matmul");
        try {
            boolean bf16Out = out.dtype() == DType.BF16;
            if (target == Target.CPU && bf16Out || target == Target.CUDA && bf16Out && a.dtype() == DType.F32 && b.dtype() == DType.F32) {
                widened.matmul(a, transA, b, transB, out, accumulate);
                return;
            }
            if (target != Target.CUDA || d.batch() == 0 || d.m() == 0 || d.n() == 0 || d.k() == 0) return;
            // CudaBackend.gemm: the f32 operand of a mixed pair is rounded to a bf16 copy
            Tensor a16 = a.dtype() == DType.F32 && b.dtype() == DType.BF16 ? temp(DType.BF16, a.shape()) : null;
            Tensor b16 = b.dtype() == DType.F32 && a.dtype() == DType.BF16 ? temp(DType.BF16, b.shape()) : null;
            if (a16 != null) a16.close();
            if (b16 != null) b16.close();
        } finally {
            exit("matmul");
        }
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) { elementwise("add", a, b, out, true); }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) { elementwise("mul", a, b, out, false); }

    private void elementwise(String name, Tensor a, Tensor b, Tensor out, boolean add) {
        on(name, new String[] {"a", "b", "out"}, a, b, out);
        if (!Widened.any(a, b, out)) {
            OpChecks.elementwise(name, a, b, out);
            return;
        }
        enter(name);
        try {
            if (add) widened.add(a, b, out);
            else widened.mul(a, b, out);
        } finally {
            exit(name);
        }
    }

    @Override
    public void scale(Tensor a, float s, Tensor out) {
        OpChecks.elementwise("scale", a, null, out);
        on("scale", new String[] {"a", "out"}, a, out);
    }

    @Override
    public void cast(Tensor src, Tensor dst) {
        OpChecks.cast(src, dst);
        on("cast", new String[] {"src", "dst"}, src, dst);
    }

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        on("embedding", new String[] {"table", "ids", "out"}, table, ids, out);
        enter("embedding");
        try {
            if (Widened.any(out)) {
                widened.embedding(table, ids, out);
                return;
            }
            int[] d = OpChecks.embedding("embedding", table, ids, out, false);
            if (target == Target.CUDA && d[0] > 0) temp(DType.I32, 1).close(); // the error word
        } finally {
            exit("embedding");
        }
    }

    @Override
    public void embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable) {
        OpChecks.embedding("embeddingBackward", dTable, ids, dOut, true);
        on("embeddingBackward", new String[] {"dOut", "ids", "dTable"}, dOut, ids, dTable);
    }

    @Override
    public void rmsnorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        on("rmsnorm", new String[] {"x", "weight", "out", "rstd"}, x, weight, out, rstd);
        if (!Widened.any(x, out)) {
            OpChecks.rmsnorm("rmsnorm", x, weight, rstd, out, "out", null, null);
            return;
        }
        enter("rmsnorm");
        try {
            widened.rmsnorm(x, weight, eps, out, rstd);
        } finally {
            exit("rmsnorm");
        }
    }

    @Override
    public void rmsnormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        on("rmsnormBackward", new String[] {"dOut", "x", "weight", "rstd", "dx", "dWeight"}, dOut, x, weight, rstd, dx, dWeight);
        if (!Widened.any(dOut, x, dx)) {
            OpChecks.rmsnormBackward(dOut, x, weight, rstd, dx, dWeight);
            return;
        }
        enter("rmsnormBackward");
        try {
            widened.rmsnormBackward(dOut, x, weight, rstd, dx, dWeight);
        } finally {
            exit("rmsnormBackward");
        }
    }

    @Override
    public void rope(Tensor x, Tensor invFreq, Tensor positions, float attnScale, Tensor out) { rope(x, invFreq, positions, attnScale, out, false); }

    @Override
    public void ropeBackward(Tensor dOut, Tensor invFreq, Tensor positions, float attnScale, Tensor dx) {
        rope(dOut, invFreq, positions, attnScale, dx, true);
    }

    private void rope(Tensor x, Tensor invFreq, Tensor positions, float attnScale, Tensor out, boolean backward) {
        String name = backward ? "ropeBackward" : "rope";
        on(name, new String[] {backward ? "dOut" : "x", "invFreq", "positions", backward ? "dx" : "out"}, x, invFreq, positions, out);
        if (!Widened.any(x, out)) {
            OpChecks.rope(name, x, backward ? "dOut" : "x", invFreq, positions, out, backward ? "dx" : "out");
            return;
        }
        enter(name);
        try {
            widened.rope(x, invFreq, positions, attnScale, out, backward);
        } finally {
            exit(name);
        }
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        on("swiglu", new String[] {"gate", "up", "out"}, gate, up, out);
        if (!Widened.any(gate, up, out)) {
            OpChecks.swiglu("swiglu", gate, new String[] {"up", "out"}, up, out);
            return;
        }
        enter("swiglu");
        try {
            widened.swiglu(gate, up, out);
        } finally {
            exit("swiglu");
        }
    }

    @Override
    public void swigluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        on("swigluBackward", new String[] {"dOut", "gate", "up", "dGate", "dUp"}, dOut, gate, up, dGate, dUp);
        if (!Widened.any(dOut, gate, up, dGate, dUp)) {
            OpChecks.swiglu("swigluBackward", gate, new String[] {"dOut", "up", "dGate", "dUp"}, dOut, up, dGate, dUp);
            return;
        }
        enter("swigluBackward");
        try {
            widened.swigluBackward(dOut, gate, up, dGate, dUp);
        } finally {
            exit("swigluBackward");
        }
    }

    @Override
    public void softmax(Tensor x, Tensor out) {
        OpChecks.softmax("softmax", new String[] {"x", "out"}, x, out);
        on("softmax", new String[] {"x", "out"}, x, out);
    }

    @Override
    public void softmaxBackward(Tensor dOut, Tensor y, Tensor dx) {
        OpChecks.softmax("softmaxBackward", new String[] {"dOut", "y", "dx"}, dOut, y, dx);
        on("softmaxBackward", new String[] {"dOut", "y", "dx"}, dOut, y, dx);
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) {
        on("attention", new String[] {"q", "k", "v", "out", "lse"}, q, k, v, out, lse);
        boolean bf16 = allBf16(q, k, v, out);
        enter("attention");
        try {
            // the CPU widens every BF16 attention; CUDA only a mixed one (its kernels are bf16)
            if (Widened.any(q, k, v, out) && (target == Target.CPU || !bf16)) {
                widened.attention(q, k, v, scale, out, lse);
                return;
            }
            OpChecks.AttentionDims g = OpChecks.attentionForward(q, k, v, out, lse, bf16 ? DType.BF16 : DType.F32);
            if (target != Target.CUDA || g.empty()) return;
            flashHeadDim(g);
            Tensor[] copies = bf16 ? new Tensor[0]
                    : new Tensor[] {temp(DType.BF16, q.shape()), temp(DType.BF16, k.shape()), temp(DType.BF16, v.shape()), temp(DType.BF16, q.shape())};
            seqlens(g.tq(), g.tk());
            close(copies);
        } finally {
            exit("attention");
        }
    }

    @Override
    public void attentionBackward(Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, float scale,
                                  Tensor dq, Tensor dk, Tensor dv) {
        on("attention", new String[] {"dOut", "q", "k", "v", "out", "lse", "dq", "dk", "dv"}, dOut, q, k, v, out, lse, dq, dk, dv);
        boolean bf16 = allBf16(dOut, q, k, v, out, dq, dk, dv);
        enter("attentionBackward");
        try {
            if (Widened.any(dOut, q, k, v, out, dq, dk, dv) && (target == Target.CPU || !bf16)) {
                widened.attentionBackward(dOut, q, k, v, out, lse, scale, dq, dk, dv);
                return;
            }
            OpChecks.AttentionDims g = OpChecks.attentionBackward(dOut, q, k, v, out, lse, dq, dk, dv, bf16 ? DType.BF16 : DType.F32);
            if (target != Target.CUDA || g.empty()) return;
            flashHeadDim(g);
            // CudaBackend.attentionBackward's temporaries, in its order
            long qElems = (long) g.tq() * g.hq() * g.d();
            long semWords = KernelAbi.flashBackwardSemaphoreWords(1, g.hq(), g.tk());
            List<Tensor> t = new java.util.ArrayList<>();
            if (!bf16) {
                t.add(temp(DType.BF16, q.shape()));
                t.add(temp(DType.BF16, k.shape()));
                t.add(temp(DType.BF16, v.shape()));
                t.add(temp(DType.BF16, out.shape()));
                t.add(temp(DType.BF16, dOut.shape()));
            }
            t.add(temp(DType.F32, g.batch(), g.hq(), g.tq()));
            t.add(temp(DType.F32, qElems + semWords));
            if (!bf16) {
                t.add(temp(DType.BF16, q.shape()));
                t.add(temp(DType.BF16, k.shape()));
                t.add(temp(DType.BF16, k.shape()));
            }
            t.add(temp(DType.I32, 1));
            seqlens(g.tq(), g.tk());
            close(t.toArray(Tensor[]::new));
        } finally {
            exit("attentionBackward");
        }
    }

    private static boolean allBf16(Tensor... ts) {
        for (Tensor t : ts) if (t == null || t.dtype() != DType.BF16) return false;
        return true;
    }

    /** The CUDA backend's refusal of a head dim its flash kernels do not take, word for word. */
    private static void flashHeadDim(OpChecks.AttentionDims g) {
        if (g.d() != 64 && g.d() != 128) {
            throw new IllegalArgumentException("attention: head dim " + g.d() + " is not supported on CUDA (the"
                    + " flash kernels take 64 or 128); run this model on the CPU backend");
        }
    }

    /** The CUDA backend's cu_seqlens of one (tq, tk): allocated on first use and kept. */
    private void seqlens(int tq, int tk) {
        if (seqlens.add(((long) tq << 32) | tk)) allocate(DType.I32, 4); // never freed, as CudaBackend's cache
    }

    /** Closes in reverse order, as try-with-resources does. */
    private static void close(Tensor... ts) {
        for (int i = ts.length - 1; i >= 0; i--) if (ts[i] != null) ts[i].close();
    }

    @Override
    public LossSum crossEntropy(Tensor hidden, Tensor weight, Tensor targets, float gradScale, Tensor dHidden, Tensor dWeight) {
        on("crossEntropy", new String[] {"hidden", "weight", "targets", "dHidden", "dWeight"}, hidden, weight, targets, dHidden, dWeight);
        enter("crossEntropy");
        try {
            if (Widened.any(hidden, dHidden)) return widened.crossEntropy(hidden, weight, targets, gradScale, dHidden, dWeight);
            int[] d = OpChecks.crossEntropy(hidden, weight, targets, dHidden, dWeight);
            int t = d[0], h = d[1], v = d[2];
            if (target == Target.CPU) temp(DType.F32, CpuBackend.crossEntropyScratchElements(t, v, dHidden != null || dWeight != null)).close();
            if (target != Target.CUDA || t == 0 || v == 0) return new LossSum(0, 0);
            // CudaBackend.crossEntropy's temporaries, in its order
            boolean bf16 = weight.dtype() == DType.BF16;
            int tc = Math.min(CudaBackend.CE_TOKEN_CHUNK, t), vc = Math.min(CudaBackend.CE_VOCAB_CHUNK, v), chunks = Math.ceilDiv(t, tc);
            close(temp(DType.F32, (long) tc * vc),
                    bf16 && dHidden != null ? temp(DType.BF16, (long) tc * vc) : null,
                    bf16 ? temp(DType.BF16, (long) tc * h) : null,
                    temp(DType.F32, tc), temp(DType.F32, tc), temp(DType.F32, tc), temp(DType.F64, chunks), temp(DType.I64, chunks));
            return new LossSum(0, 0);
        } finally {
            exit("crossEntropy");
        }
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp, long step) {
        OpChecks.adamw(param, grad, m, v, hp, step);
        on("adamw", new String[] {"param", "grad", "m", "v"}, param, grad, m, v);
    }

    @Override
    public double sum(Tensor x) { return reduce("sum", x); }

    @Override
    public double sumOfSquares(Tensor x) { return reduce("sumOfSquares", x); }

    private double reduce(String name, Tensor x) {
        long n = OpChecks.reduction(name, x);
        on(name, new String[] {"x"}, x);
        if (target == Target.CUDA && n > 0) {
            enter(name);
            try {
                Tensor result = temp(DType.F64, 1);
                temp(DType.F64, KernelAbi.REDUCE_BLOCKS).close();
                result.close();
            } finally {
                exit(name);
            }
        }
        return 0;
    }

    @Override
    public float max(Tensor x) {
        long n = OpChecks.reduction("max", x);
        on("max", new String[] {"x"}, x);
        if (target == Target.CUDA && n > 0) {
            enter("max");
            try {
                close(temp(DType.F32, KernelAbi.REDUCE_BLOCKS), temp(DType.F32, 1));
            } finally {
                exit("max");
            }
        }
        return 0;
    }

    @Override
    public double globalNorm(List<Tensor> tensors) {
        if (target != Target.CUDA) return Backend.super.globalNorm(tensors);
        for (Tensor t : tensors) {
            OpChecks.reduction("sumOfSquares", t);
            on("sumOfSquares", new String[] {"x"}, t);
        }
        if (tensors.isEmpty()) return 0;
        enter("globalNorm");
        try {
            Tensor results = temp(DType.F64, tensors.size());
            for (Tensor t : tensors) if (t.numel() > 0) temp(DType.F64, KernelAbi.REDUCE_BLOCKS).close();
            results.close();
        } finally {
            exit("globalNorm");
        }
        return 0;
    }

    /** Nothing waits: nothing runs. */
    @Override public void synchronize() {}
}
