/**
 * tenfold's tensor engine: tensors and devices ({@code dev.tenfold.engine}), the op set with its CPU
 * backend ({@code dev.tenfold.engine.cpu}) and safetensors I/O ({@code dev.tenfold.engine.io}). The
 * CUDA backend's bindings are internal: {@code Backends.forDevice} gives its backend; the doctor and
 * the GPU benchmarks read its probes.
 */
module tenfold.engine {
    requires transitive jdk.incubator.vector;
    requires com.fasterxml.jackson.databind;
    requires java.management;
    requires jdk.management;

    exports dev.tenfold.engine;
    exports dev.tenfold.engine.cpu;
    exports dev.tenfold.engine.io;
    exports dev.tenfold.engine.plan to tenfold.llama, tenfold.qlora, tenfold.tools, tenfold.benchmarks;
    exports dev.tenfold.engine.collective; // Trainer.dataParallel takes a Communicator: a library user makes one
    exports dev.tenfold.engine.cuda to tenfold.tools, tenfold.benchmarks;
}
