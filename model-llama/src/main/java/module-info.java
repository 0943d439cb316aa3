/**
 * Llama-3 on tenfold's engine: configuration, loading ({@code LlamaLoader}, {@code LoadSpec}), the
 * model and its training step, generation, the tokenizer and chat template
 * ({@code dev.tenfold.llama.tokenizer}), and the long-context tasks and synthetic data
 * ({@code dev.tenfold.llama.longcontext}). Quantized projections come from a
 * {@link dev.tenfold.llama.QuantizedLinears} provider (tenfold-qlora provides NF4).
 */
module tenfold.llama {
    requires transitive tenfold.engine;
    requires com.fasterxml.jackson.databind;

    exports dev.tenfold.llama;
    exports dev.tenfold.llama.tokenizer;
    exports dev.tenfold.llama.longcontext;

    uses dev.tenfold.llama.QuantizedLinears;
}
