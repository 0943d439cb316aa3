package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.StepArena;
import dev.tenfold.engine.Tensor;

/**
 * The input of every decoder layer (and the last layer's output), saved by the forward pass for the
 * backward: gradient checkpointing keeps only these and recomputes the rest. Either all on the device
 * (one [tokens, hidden] buffer per layer), or offloaded: the inputs of layers 0..L-1 wait in host
 * memory and the device holds two buffers that take turns. In the forward each input starts its copy
 * to the host ({@link Backend#copyAsync}, a second stream on a GPU) as soon as it is written, while the
 * next layer computes, and a buffer is written again only after its copy is done; in the backward the
 * input of layer l-1 comes back while layer l's backward computes. On the CPU backend the copies are
 * plain copies, so offload on or off gives the same bits.
 */
final class Checkpoints {
    private final Backend b;
    private final int layers;
    private final boolean offload;
    private final Tensor[] onDevice;  // all L+1 (resident), or the two turns (offloaded)
    private final Tensor[] onHost;    // inputs of layers 0..L-1 (offloaded only)
    private final Backend.Pending[] down, up;

    Checkpoints(Backend b, StepArena arena, int layers, long t, long h, DType dtype, boolean offload) {
        this.b = b;
        this.layers = layers;
        this.offload = offload;
        onDevice = new Tensor[offload ? 2 : layers + 1];
        for (int i = 0; i < onDevice.length; i++) onDevice[i] = arena.tensor(dtype, t, h);
        onHost = new Tensor[offload ? layers : 0];
        for (int i = 0; i < onHost.length; i++) onHost[i] = arena.host(dtype, t, h);
        down = new Backend.Pending[layers];
        up = new Backend.Pending[layers];
    }

    private Tensor slot(int l) { return offload ? onDevice[l % 2] : onDevice[l]; }

    /** Forward: where layer l's input (l = 0: the embedding's output; l = L: the last layer's output) is written. */
    Tensor forwardBuffer(int l) {
        if (offload && l >= 2) down[l - 2].await(); // that buffer's earlier input is on its way to the host
        return slot(l);
    }

    /** Forward: layer l's input is queued in full; offloaded, it starts its copy to the host. */
    void written(int l) {
        if (offload && l < layers) down[l] = b.copyAsync(slot(l), onHost[l]);
    }

    /** The last layer's output (on the device either way), for the final norm and the loss. */
    Tensor last() { return slot(layers); }

    /**
     * Backward: layer l's input on the device (its copy back awaited), called for l = L-1 down to 0; starts
     * bringing back layer l-1's input into the other buffer, which layer l+1's backward (queued before) was
     * the last to read.
     */
    Tensor backwardInput(int l) {
        if (offload) {
            if (up[l] != null) up[l].await();
            if (l >= 1) up[l - 1] = b.copyAsync(onHost[l - 1], slot(l - 1));
        }
        return slot(l);
    }

    /** Waits (on the device) for every copy still running: the buffers are free for the next step. */
    void finish() {
        for (Backend.Pending[] ps : new Backend.Pending[][] {down, up}) {
            for (Backend.Pending p : ps) if (p != null) p.await();
        }
    }
}
