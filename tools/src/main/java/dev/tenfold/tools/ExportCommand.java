package dev.tenfold.tools;

import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Writes a model in another program's format: GGUF for llama.cpp (and Ollama, LM Studio, ...). */
@Command(name = "export", mixinStandardHelpOptions = true, description = "Write the model for other programs to run.",
        subcommands = {ExportCommand.Gguf.class})
final class ExportCommand implements Callable<Integer> {
    @Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        return Main.chooseACommand(spec);
    }

    @Command(name = "gguf", mixinStandardHelpOptions = true, description = {
            "Write the model, with --adapter merged in, as one GGUF file for llama.cpp and the programs built on it (Ollama,"
                    + " LM Studio): the llama architecture's metadata with the trained context length and RoPE base, every tensor"
                    + " under llama.cpp's name and layout (q/k rows in its rotation order), and the byte-level BPE tokenizer"
                    + " (tokens, merges, token types, pre-tokenizer llama-bpe, BOS/EOS/EOT, chat template).",
            "Norms stay F32; with q8_0 a weight whose rows are not whole blocks of 32 is written F16.",
            "Example: tenfold export gguf --model base --adapter run/adapter --context-length 80k --output model.gguf"})
    static final class Gguf implements Callable<Integer> {
        @Mixin ModelOptions model;

        @Option(names = "--output", required = true, paramLabel = "FILE.gguf", description = "The GGUF file to write (replaced if it exists).")
        Path output;

        @Option(names = "--type", defaultValue = "bf16", paramLabel = "bf16|f16|f32|q8_0",
                description = "The type of the weight matrices (default: ${DEFAULT-VALUE}).")
        String type;

        @Option(names = "--context-length", paramLabel = "N",
                description = "llama.context_length: the context the model was trained to, e.g. 80k (default: config.json's"
                        + " max_position_embeddings, the base's unless a merge changed it).")
        String contextLength;

        @Option(names = "--name", paramLabel = "TEXT", description = "general.name (default: the model folder's name).")
        String name;

        @Override
        public Integer call() throws Exception {
            GgufExport.Type t = GgufExport.Type.parse(type);
            if (!output.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".gguf")) {
                throw new Flags.BadFlag("--output " + output + ": give a file name ending in .gguf");
            }
            if (Files.isDirectory(output)) throw new Flags.BadFlag("--output " + output + " is a folder; give a file name ending in .gguf");
            Path parent = output.toAbsolutePath().getParent();
            if (!Files.isDirectory(parent)) throw new Flags.BadFlag("--output " + output + ": folder " + parent + " does not exist");
            if (!model.onHost()) throw new Flags.BadFlag("--device " + model.device + ": export runs on the CPU (--device cpu)");
            Integer ctxFlag = contextLength == null ? null : Flags.parseLengths("--context-length", java.util.List.of(contextLength))[0];
            LlamaConfig c = model.config();
            int ctx = ctxFlag != null ? ctxFlag : c.maxPositionEmbeddings();
            long t0 = System.nanoTime();
            GgufExport.Summary s;
            try (LlamaModel m = model.load()) {
                String n = name != null ? name : model.model.toAbsolutePath().normalize().getFileName().toString();
                s = GgufExport.write(model.model, m, n, t, ctx, output);
            }
            for (String note : s.notes()) System.err.println("tenfold: note: " + note);
            if (ctxFlag == null && model.adapter != null) {
                // the adapter does not record the length it was trained at
                System.err.println("tenfold: note: llama.context_length is config.json's " + ctx + "; give --context-length with the"
                        + " length the adapter was trained to (llama.cpp reads it as the model's context)");
            }
            System.err.printf(Locale.ROOT, "tenfold: wrote %s (%s, %d tensors, context %d, rope_theta %s, rope scaling %s) in %.1f s%n",
                    output, t.name().toLowerCase(Locale.ROOT), s.tensors(), s.contextLength(), s.ropeTheta(), s.ropeScaling(),
                    (System.nanoTime() - t0) / 1e9);
            return 0;
        }
    }
}
