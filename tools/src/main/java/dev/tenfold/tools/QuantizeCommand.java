package dev.tenfold.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.qlora.nf4.Nf4Checkpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Writes a bitsandbytes NF4 checkpoint of a dense Llama folder (what QLoRA trains on). */
@Command(name = "quantize", mixinStandardHelpOptions = true, description = "Write a bitsandbytes-compatible NF4 checkpoint (double quantization) of a dense Llama folder.")
final class QuantizeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "A dense Hugging Face Llama folder (config.json, *.safetensors, tokenizer files).")
    Path model;

    @Option(names = "--output", required = true, paramLabel = "DIR", description = "Where to write the NF4 checkpoint.")
    Path output;

    @Option(names = "--force", description = "Replace the contents of a non-empty output folder.")
    boolean force;

    @Option(names = "--json", description = "Print one JSON object {output, quantized, copied, bytes, seconds} on standard output.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (!Files.isDirectory(model)) throw new IllegalArgumentException("--model " + model + ": not a folder");
        if (Outputs.sameFile(output, model)) throw new IllegalArgumentException("--output " + output + " is the --model folder; choose another");
        // the writer refuses a non-empty folder too; checking here says so before any weight is read
        if (force) Outputs.checkWritableFolder("--output", output);
        else Outputs.checkNewFolder("--output", output, ", or use --force to replace the model files in it");
        long t0 = System.nanoTime();
        var options = new Nf4Checkpoint.WriteOptions(force, Nf4Checkpoint.DEFAULT_MAX_SHARD_BYTES,
                line -> System.err.println("tenfold: " + line));
        Nf4Checkpoint.WriteResult r = Nf4Checkpoint.write(output, model, options);
        double s = (System.nanoTime() - t0) / 1e9;
        if (json) {
            ObjectNode o = new ObjectMapper().createObjectNode()
                    .put("output", output.toString()).put("quantized", r.quantized()).put("copied", r.copied())
                    .put("bytes", r.bytes()).put("seconds", s);
            System.out.println(o);
        }
        System.err.printf("tenfold: quantized %d projections to NF4 in %.1f s; %s%n", r.quantized(), s, output);
        return 0;
    }
}
