package dev.tenfold.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Host memory for {@link Tensor#allocate} of up to {@link #MAX_BLOCK} bytes, reused after a tensor closes.
 *
 * <p>Why: a tensor's memory must be readable from every thread of the fast backend, and closing a shared
 * {@link Arena} makes the JVM stop and check every thread (a handshake). On 2 cores that cost 40-120 us
 * per allocate and close, and a LoRA training step makes about 130 such temporaries (the adapters' merged
 * weights and rank-r products, the loss's chunks): 13-23 ms of a 0.3 s step, with the other core idle.
 *
 * <p>Blocks come in powers of two from 4 KiB, each from an automatic arena (freed by the garbage collector
 * once the pool drops it), so taking and giving back costs a queue operation and the zero fill. At most
 * {@link #MAX_IDLE} bytes wait in the pool; a block given back past that is dropped. Idle blocks are not
 * counted by {@link HostMemory}, which counts what tensors hold.
 *
 * <p>Larger tensors (the loss's logits of a token chunk: 32 MiB at 1,024 tokens and a vocabulary of 8,192,
 * 128 MiB at 4,096) are kept too, whole, each with an arena of its own, at most {@link #MAX_LARGE_IDLE} bytes
 * of them idle (the oldest closed first). A fresh one costs its page faults, the zero fill and the arena's close:
 * 3 % of a 1K-token training step at hidden 512, where the reused one costs a zero fill of warm memory.
 */
final class HostPool {
    private HostPool() {}

    /** Larger tensors get an arena of their own: their allocate and close cost little beside their use. */
    static final long MAX_BLOCK = 16L << 20;
    /** The most bytes kept for reuse. */
    static final long MAX_IDLE = 64L << 20;
    private static final int MIN_SHIFT = 12, MAX_SHIFT = Long.numberOfTrailingZeros(MAX_BLOCK);

    @SuppressWarnings("unchecked")
    private static final ConcurrentLinkedDeque<MemorySegment>[] FREE = new ConcurrentLinkedDeque[MAX_SHIFT + 1];
    private static final AtomicLong IDLE = new AtomicLong();

    static {
        for (int s = MIN_SHIFT; s <= MAX_SHIFT; s++) FREE[s] = new ConcurrentLinkedDeque<>();
    }

    /** The power of two a block for this many bytes has (at least 4 KiB), or -1 when bytes is above MAX_BLOCK. */
    static int shift(long bytes) {
        if (bytes > MAX_BLOCK) return -1;
        return Math.max(MIN_SHIFT, 64 - Long.numberOfLeadingZeros(Math.max(1, bytes) - 1));
    }

    /** A block of 2^shift bytes, 64-byte aligned, whose first {@code bytes} bytes are zero. */
    static MemorySegment take(int shift, long bytes) {
        MemorySegment block = FREE[shift].pollFirst();
        if (block == null) return Arena.ofAuto().allocate(1L << shift, 64); // zero-filled by the arena
        IDLE.addAndGet(-block.byteSize());
        block.asSlice(0, bytes).fill((byte) 0);
        return block;
    }

    /** Gives a block from {@link #take} back; past MAX_IDLE it is dropped for the collector to free. */
    static void give(MemorySegment block) {
        long size = block.byteSize();
        if (IDLE.addAndGet(size) > MAX_IDLE) {
            IDLE.addAndGet(-size);
            return;
        }
        FREE[Long.numberOfTrailingZeros(size)].addFirst(block); // last in, first out: the warmest block next
    }

    /** Bytes waiting for reuse now (tests). */
    static long idle() { return IDLE.get(); }

    /** The most bytes of blocks above MAX_BLOCK kept for reuse. */
    static final long MAX_LARGE_IDLE = 256L << 20;

    /** A block above MAX_BLOCK and the arena it came from (closed when the pool drops it). */
    record Large(Arena arena, MemorySegment block) {}

    private static final ConcurrentLinkedDeque<Large> LARGE = new ConcurrentLinkedDeque<>();
    private static final AtomicLong LARGE_IDLE = new AtomicLong();

    /**
     * A block of at least {@code bytes} bytes (above MAX_BLOCK), 64-byte aligned, its first {@code bytes} zero: the
     * smallest idle one that is no more than twice as large, else a new one.
     */
    static Large takeLarge(long bytes) {
        Large best = null;
        for (Large l : LARGE) {
            long size = l.block().byteSize();
            if (size >= bytes && size / 2 <= bytes && (best == null || size < best.block().byteSize())) best = l;
        }
        if (best != null && LARGE.remove(best)) {
            LARGE_IDLE.addAndGet(-best.block().byteSize());
            best.block().asSlice(0, bytes).fill((byte) 0);
            return best;
        }
        Arena arena = Arena.ofShared(); // shared: the fast backend reads it from several threads
        try {
            return new Large(arena, arena.allocate(bytes, 64)); // zero-filled by the arena
        } catch (OutOfMemoryError | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Gives a block from {@link #takeLarge} back; the oldest idle ones are closed while more than MAX_LARGE_IDLE wait. */
    static void giveLarge(Large large) {
        if (large.block().byteSize() > MAX_LARGE_IDLE) { // kept, it would push every other block out, then itself
            large.arena().close();
            return;
        }
        LARGE.addFirst(large);
        LARGE_IDLE.addAndGet(large.block().byteSize());
        while (LARGE_IDLE.get() > MAX_LARGE_IDLE) {
            Large oldest = LARGE.pollLast();
            if (oldest == null) break;
            LARGE_IDLE.addAndGet(-oldest.block().byteSize());
            oldest.arena().close();
        }
    }

    /** Bytes of blocks above MAX_BLOCK waiting for reuse now (tests). */
    static long largeIdle() { return LARGE_IDLE.get(); }

    /** Closes every idle block above MAX_BLOCK (tests: a known start). */
    static void dropLarge() {
        for (Large l; (l = LARGE.pollFirst()) != null; ) {
            LARGE_IDLE.addAndGet(-l.block().byteSize());
            l.arena().close();
        }
    }
}
