package dev.tenfold.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.Backend;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Perplexity;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Evaluations of a model. */
@Command(name = "eval", mixinStandardHelpOptions = true, description = "Evaluate a model.",
        subcommands = {EvalCommand.Ppl.class, LongContextEvals.PasskeyCommand.class, LongContextEvals.NiahCommand.class,
                LongContextEvals.RulerNiahCommand.class, LongContextEvals.TopicsCommand.class, LongBenchCommand.class})
final class EvalCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
        return Main.chooseACommand(spec);
    }

    @Command(name = "ppl", mixinStandardHelpOptions = true, description = "Sliding-window perplexity over the records of a JSONL file ({\"text\": ...} or {\"input_ids\": [...]}).")
    static final class Ppl implements Callable<Integer> {
        @Mixin ModelOptions model;

        @Option(names = "--data", required = true, paramLabel = "FILE.jsonl") Path data;

        @Option(names = "--max-length", defaultValue = "2048", paramLabel = "N", description = "Window length (default ${DEFAULT-VALUE}).")
        @Range(min = 2, max = Flags.MAX_TOKENS) int maxLength;

        @Option(names = "--stride", paramLabel = "N", description = "Window step, at most the window length (default: max length / 2).")
        @Range(min = 1, max = Flags.MAX_TOKENS) Integer stride;

        @Option(names = "--json", description = "Print one JSON object {loss, perplexity, tokens} on standard output.") boolean json;

        @Override
        public Integer call() throws IOException {
            if (stride != null && stride > maxLength) {
                throw new Flags.BadFlag("--stride must be at most --max-length (" + maxLength + "), got " + stride);
            }
            LlamaConfig c = model.config();
            Tokenizer tok = null;
            List<int[]> sequences = new ArrayList<>();
            ObjectMapper mapper = new ObjectMapper();
            String text = Flags.readText("--data", data);
            try (BufferedReader r = new BufferedReader(new StringReader(text))) {
                String line;
                int lineNo = 0;
                while ((line = r.readLine()) != null) {
                    lineNo++;
                    if (line.isBlank()) continue;
                    JsonNode rec;
                    try {
                        rec = mapper.readTree(line);
                    } catch (com.fasterxml.jackson.core.JacksonException e) {
                        throw new IllegalArgumentException(data + ":" + lineNo + ": not valid JSON: " + e.getOriginalMessage());
                    }
                    if (rec.has("input_ids")) {
                        JsonNode a = rec.get("input_ids");
                        if (!a.isArray()) throw new IllegalArgumentException(data + ":" + lineNo + ": input_ids must be a list of integers");
                        int[] ids = new int[a.size()];
                        for (int i = 0; i < ids.length; i++) {
                            if (!a.get(i).canConvertToInt()) throw new IllegalArgumentException(data + ":" + lineNo + ": input_ids[" + i + "] is not an integer");
                            ids[i] = a.get(i).intValue();
                        }
                        sequences.add(ids);
                    } else if (rec.path("text").isTextual()) {
                        if (tok == null) tok = model.tokenizer();
                        sequences.add(GenerateCommand.withBos(tok, tok.encode(rec.get("text").asText(), false)));
                    } else {
                        throw new IllegalArgumentException(data + ":" + lineNo + ": a record needs \"text\" (a string) or \"input_ids\" (a list)");
                    }
                }
            }
            if (sequences.isEmpty()) throw new IllegalArgumentException(data + ": no records");
            int s = stride != null ? stride : Math.max(1, maxLength / 2);
            int window = 0;
            for (int[] ids : sequences) window = Math.max(window, Math.min(ids.length, maxLength));
            new MemoryCheck("eval ppl with --max-length " + maxLength, model.onHost())
                    .tensors("weights", model.weightBytes(c, false))
                    .tensors("KV cache", MemoryCheck.kvCache(c, window))
                    .tensors("activations", MemoryCheck.add(MemoryCheck.inferenceScratch(c, window), 4L * window * c.hiddenSize()))
                    .check();
            long t0 = System.nanoTime();
            Backend.LossSum loss;
            try (LlamaModel m = model.load()) {
                int vocab = m.config().vocabSize();
                for (int[] ids : sequences) for (int id : ids) {
                    if (id < 0 || id >= vocab) throw new IllegalArgumentException(data + ": token id " + id + " outside the vocabulary [0, " + vocab + ")");
                }
                loss = Perplexity.evaluate(m, sequences, maxLength, s);
            }
            double mean = loss.mean();
            double ppl = Math.exp(mean);
            if (json) {
                System.out.println(mapper.createObjectNode().put("loss", mean).put("perplexity", ppl).put("tokens", loss.count()));
            } else {
                System.out.printf("loss %.4f  perplexity %.3f  tokens %d  (%d records, window %d, stride %d)%n",
                        mean, ppl, loss.count(), sequences.size(), maxLength, s);
            }
            System.err.printf("tenfold: evaluated in %.1f s%n", (System.nanoTime() - t0) / 1e9);
            return 0;
        }
    }
}
