package dev.tenfold.llama;

import java.util.Map;

/**
 * A quantized format of the projections, provided by another module through {@link java.util.ServiceLoader}
 * (tenfold-qlora provides {@link Quantization#NF4}): {@link LlamaLoader} uses it when a {@link LoadSpec}
 * asks for the format, and for a checkpoint whose config.json carries a quantization_config.
 */
public interface QuantizedLinears {
    /** The format this provides. */
    Quantization quantization();

    /**
     * The factory that makes the projections: read as stored from a checkpoint in this format, or
     * quantized on load from dense weights. {@code quantizationConfig} is config.json's
     * quantization_config (null for a dense checkpoint); one this provider cannot read is an error
     * that names it.
     */
    LlamaLoader.LinearFactory linears(Map<String, Object> quantizationConfig);
}
