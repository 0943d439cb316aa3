/**
 * QLoRA on tenfold: NF4 ({@code dev.tenfold.qlora.nf4}), LoRA adapters and their PEFT form, the
 * trainer and its settings, recipes, merging ({@code dev.tenfold.qlora}), and training data
 * ({@code dev.tenfold.qlora.data}).
 */
module tenfold.qlora {
    requires transitive tenfold.llama;
    requires com.fasterxml.jackson.databind;

    exports dev.tenfold.qlora;
    exports dev.tenfold.qlora.data;
    exports dev.tenfold.qlora.nf4;
    exports dev.tenfold.qlora.plan;

    provides dev.tenfold.llama.QuantizedLinears with dev.tenfold.qlora.nf4.Nf4Checkpoint.Provider;
}
