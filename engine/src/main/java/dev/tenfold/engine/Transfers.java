package dev.tenfold.engine;

import java.util.List;

/**
 * Copies between the host and a backend's device, for the few places that need one: weights
 * uploaded once at load time, results read back (the last logits row), tensors written to disk.
 * Everything else stays where the backend computes.
 */
public final class Transfers {
    private Transfers() {}

    /** Whether {@code t} must be uploaded to be used by {@code b} (it is not on b's device). */
    public static boolean needsUpload(Backend b, Tensor t) { return !t.device().equals(b.device()); }

    /** A copy of host tensor {@code host} on b's device, owned by the caller. */
    public static Tensor upload(Backend b, Tensor host) {
        Tensor d = b.allocate(host.dtype(), host.shape());
        try {
            b.copy(host, d);
        } catch (RuntimeException e) {
            d.close();
            throw e;
        }
        return d;
    }

    /** A host copy of {@code t} (on the host or b's device), owned by the caller. */
    public static Tensor download(Backend b, Tensor t) {
        Tensor h = Tensor.allocate(t.dtype(), t.shape());
        try {
            b.copy(t, h);
        } catch (RuntimeException e) {
            h.close();
            throw e;
        }
        return h;
    }

    /** The elements of {@code t} as floats: read in place on the host, after one download from a device. */
    public static float[] toFloatArray(Backend b, Tensor t) {
        if (t.device().isCpu()) return t.toFloatArray();
        try (Tensor h = download(b, t)) {
            return h.toFloatArray();
        }
    }

    /**
     * {@code t} itself when it is on the host, else a host copy that is added to
     * {@code temporaries} (the caller closes them): what writers of files need.
     */
    public static Tensor onHost(Backend b, Tensor t, List<Tensor> temporaries) {
        if (t.device().isCpu()) return t;
        Tensor h = download(b, t);
        temporaries.add(h);
        return h;
    }
}
