package dev.tenfold.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.Backend;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Perplexity;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Evaluations of a model. */
@Command(name = "eval", mixinStandardHelpOptions = true, description = "Evaluate a model.",
        subcommands = {EvalCommand.Ppl.class, LongContextEvals.PasskeyCommand.class, LongContextEvals.NiahCommand.class,
                LongContextEvals.RulerNiahCommand.class, LongContextEvals.TopicsCommand.class})
final class EvalCommand implements Runnable {
    @Override
    public void run() {
        throw new IllegalArgumentException("choose an evaluation: tenfold eval ppl|passkey|niah|ruler-niah|topics ...");
    }

    @Command(name = "ppl", mixinStandardHelpOptions = true, description = "Sliding-window perplexity over the records of a JSONL file ({\"text\": ...} or {\"input_ids\": [...]}).")
    static final class Ppl implements Callable<Integer> {
        @Mixin ModelOptions model;

        @Option(names = "--data", required = true, paramLabel = "FILE.jsonl") Path data;

        @Option(names = "--max-length", defaultValue = "2048", paramLabel = "N", description = "Window length (default ${DEFAULT-VALUE}).")
        int maxLength;

        @Option(names = "--stride", paramLabel = "N", description = "Window step (default: max length / 2).") Integer stride;

        @Option(names = "--json", description = "Print one JSON object {loss, perplexity, tokens} on standard output.") boolean json;

        @Override
        public Integer call() throws IOException {
            Tokenizer tok = null;
            List<int[]> sequences = new ArrayList<>();
            ObjectMapper mapper = new ObjectMapper();
            try (BufferedReader r = Files.newBufferedReader(data, StandardCharsets.UTF_8)) {
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
            } catch (NoSuchFileException e) {
                throw new IllegalArgumentException("--data " + data + ": no such file");
            }
            if (sequences.isEmpty()) throw new IllegalArgumentException(data + ": no records");
            int s = stride != null ? stride : Math.max(1, maxLength / 2);
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
