/**
 * The CUDA kernels as one fatbin, the resource {@code dev/tenfold/kernels/tenfold.fatbin}, which the
 * engine's CUDA backend reads at run time; no Java code depends on this module.
 */
module tenfold.kernels {
    opens dev.tenfold.kernels;
}
