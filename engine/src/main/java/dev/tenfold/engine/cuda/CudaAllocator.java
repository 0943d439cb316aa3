package dev.tenfold.engine.cuda;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * A caching allocator for one device, so that a training step at fixed shapes allocates nothing from
 * the driver after its first step (cuMemAlloc and cuMemFree are slow and synchronise the device).
 *
 * <p>Requests are rounded to size classes: multiples of 512 bytes up to 1 MiB, multiples of 2 MiB
 * above. A freed block goes to a free list of its size; a request takes the smallest cached block of
 * at least its class, provided that block wastes at most an eighth (small blocks: exactly its class).
 * When the device is full the allocator returns every cached block to the driver and tries once more,
 * then throws a {@link CudaOutOfMemoryException} that explains what would fit.
 *
 * <p>Blocks are not split or merged: that keeps this small, and fixed shapes reuse exactly. Reuse is
 * safe because all work of a backend runs on one stream, in order: a block freed on the host may still
 * be read by queued kernels, but whatever reuses it is queued after them. (The second stream of
 * {@code copyAsync} copies only buffers that stay allocated until a synchronize: a training step's arena.)
 * Thread-safe.
 */
public final class CudaAllocator {
    static final long SMALL_LIMIT = 1L << 20;
    static final long SMALL_STEP = 512;
    static final long LARGE_STEP = 2L << 20;

    /** A block handed out: its device address, its (rounded) size and the bytes asked for. */
    public record Block(long address, long size, long requested) {}

    /** What the allocator holds. in use + cached = reserved (memory taken from the driver). */
    public record Stats(long inUseBytes, long requestedBytes, long cachedBytes, long reservedBytes, long peakInUseBytes,
                        long peakReservedBytes, long deviceAllocations, long cacheHits, long cacheFlushes, int liveBlocks,
                        int cachedBlocks) {}

    private final DeviceMemory source;
    private final TreeMap<Long, ArrayDeque<Long>> cached = new TreeMap<>();
    private final Map<Long, Block> live = new HashMap<>();
    private long inUse, requested, cachedBytes, peakInUse, peakReserved, deviceAllocations, cacheHits, cacheFlushes;
    private int cachedBlocks;

    public CudaAllocator(DeviceMemory source) { this.source = source; }

    /** The size class of a request: 512-byte steps up to 1 MiB, 2 MiB steps above (0 stays 0). */
    public static long sizeClass(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative allocation " + bytes);
        if (bytes == 0) return 0;
        long step = bytes <= SMALL_LIMIT ? SMALL_STEP : LARGE_STEP;
        return Math.multiplyExact(Math.ceilDiv(bytes, step), step);
    }

    /** The largest cached block a request of class {@code size} may take. */
    static long largestReusable(long size) { return size <= SMALL_LIMIT ? size : size + size / 8; }

    /** A block of at least {@code bytes} bytes (address 0 for 0 bytes: nothing is allocated). */
    public synchronized Block allocate(long bytes) {
        long size = sizeClass(bytes);
        if (size == 0) return new Block(0, 0, 0);
        Block b = fromCache(size, bytes);
        if (b == null) b = fromDevice(size, bytes);
        live.put(b.address(), b);
        inUse += b.size();
        requested += bytes;
        peakInUse = Math.max(peakInUse, inUse);
        peakReserved = Math.max(peakReserved, inUse + cachedBytes);
        return b;
    }

    /** Returns a block to the cache (not to the driver). Freeing a block twice is an error. */
    public synchronized void free(Block b) {
        if (b.size() == 0) return;
        Block known = live.remove(b.address());
        if (known == null || known.size() != b.size()) {
            throw new IllegalStateException("block at 0x" + Long.toHexString(b.address()) + " of " + b.size()
                    + " bytes was freed twice or does not come from this allocator (" + source.name() + ")");
        }
        inUse -= b.size();
        requested -= b.requested();
        cached.computeIfAbsent(b.size(), k -> new ArrayDeque<>()).push(b.address());
        cachedBytes += b.size();
        cachedBlocks++;
    }

    /** Gives every cached block back to the driver; returns the bytes released. */
    public synchronized long emptyCache() {
        if (cachedBlocks == 0) return 0;
        source.quiesce();
        long released = 0;
        for (Map.Entry<Long, ArrayDeque<Long>> e : cached.entrySet()) {
            for (long address : e.getValue()) {
                source.free(address);
                released += e.getKey();
            }
        }
        cached.clear();
        cachedBytes = 0;
        cachedBlocks = 0;
        cacheFlushes++;
        return released;
    }

    public synchronized Stats stats() {
        return new Stats(inUse, requested, cachedBytes, inUse + cachedBytes, peakInUse, peakReserved, deviceAllocations,
                cacheHits, cacheFlushes, live.size(), cachedBlocks);
    }

    /**
     * Starts the peaks afresh from what is held now (in use, and in use + cached), so that
     * {@link #stats()} reports the peaks of the work that follows (a benchmark's step after its set-up).
     */
    public synchronized void resetPeaks() {
        peakInUse = inUse;
        peakReserved = inUse + cachedBytes;
    }

    /** The device this allocator serves, e.g. cuda:0. */
    public String deviceName() { return source.name(); }

    private Block fromCache(long size, long bytes) {
        Map.Entry<Long, ArrayDeque<Long>> e = cached.ceilingEntry(size);
        if (e == null || e.getKey() > largestReusable(size)) return null;
        long address = e.getValue().pop();
        if (e.getValue().isEmpty()) cached.remove(e.getKey());
        cachedBytes -= e.getKey();
        cachedBlocks--;
        cacheHits++;
        return new Block(address, e.getKey(), bytes);
    }

    private Block fromDevice(long size, long bytes) {
        long address;
        try {
            address = source.allocate(size);
        } catch (CudaException e) {
            if (!e.isOutOfMemory()) throw e;
            emptyCache();
            try {
                address = source.allocate(size);
            } catch (CudaException again) {
                if (!again.isOutOfMemory()) throw again;
                CudaDriver.MemoryInfo info;
                try {
                    info = source.info();
                } catch (RuntimeException unknown) {
                    info = new CudaDriver.MemoryInfo(-1, -1);
                }
                CudaOutOfMemoryException oom = new CudaOutOfMemoryException(
                        OutOfMemoryMessage.describe(source.name(), bytes, info.free(), info.total(), stats()), bytes);
                oom.initCause(again);
                throw oom;
            }
        }
        deviceAllocations++;
        return new Block(address, size, bytes);
    }
}
