package dev.tenfold.engine.cuda;

import java.util.Locale;

/**
 * The message of a {@link CudaOutOfMemoryException}: what was asked, what the device has, what tenfold
 * holds, and which settings would make the run fit. A pure function of its arguments.
 */
public final class OutOfMemoryMessage {
    private OutOfMemoryMessage() {}

    /**
     * @param device     e.g. cuda:0
     * @param requested  bytes the failed allocation asked for
     * @param free       bytes the device reported free after the cache was emptied (-1 when unknown)
     * @param total      the device's bytes (-1 when unknown)
     * @param stats      the allocator's state after emptying its cache
     */
    public static String describe(String device, long requested, long free, long total, CudaAllocator.Stats stats) {
        StringBuilder sb = new StringBuilder();
        sb.append(device).append(" is out of memory: asked for ").append(bytes(requested));
        if (free >= 0 && total > 0) {
            sb.append(", the GPU has ").append(bytes(free)).append(" free of ").append(bytes(total));
        }
        sb.append(" (tenfold returned its cached blocks to the driver and tried again; it holds ")
                .append(bytes(stats.inUseBytes())).append(" in ").append(stats.liveBlocks()).append(" live tensors)");
        sb.append(". ");
        if (total > 0 && requested > total) {
            sb.append("This one tensor is larger than the whole GPU: lower --max-length or --micro-batch-size. ");
        }
        long others = total > 0 && free >= 0 ? total - free - stats.reservedBytes() : 0;
        if (others > (1L << 30)) {
            sb.append("Other processes (or CUDA's own context) hold about ").append(bytes(others))
                    .append(" of this GPU; nvidia-smi lists them. ");
        }
        sb.append("To fit: lower --max-length (activation memory grows with the sequence length), use --micro-batch-size 1,"
                + " keep gradient checkpointing on, and keep the base weights in NF4 (--quantize nf4).");
        return sb.toString();
    }

    /** 1.50 GiB, 12.0 MiB, 3.0 KiB or 100 bytes. */
    public static String bytes(long b) {
        if (b < 0) return "unknown";
        if (b >= 1L << 30) return String.format(Locale.ROOT, "%.2f GiB", b / (double) (1L << 30));
        if (b >= 1L << 20) return String.format(Locale.ROOT, "%.1f MiB", b / (double) (1L << 20));
        if (b >= 1L << 10) return String.format(Locale.ROOT, "%.1f KiB", b / (double) (1L << 10));
        return b + " bytes";
    }
}
