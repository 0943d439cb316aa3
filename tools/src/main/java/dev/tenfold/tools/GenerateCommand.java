package dev.tenfold.tools;

import dev.tenfold.llama.Generator;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Sampler;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Generates text after a prompt, streaming it to standard output. */
@Command(name = "generate", mixinStandardHelpOptions = true, description = "Generate text after a prompt (greedy by default; --temperature for sampling).")
final class GenerateCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    @Option(names = "--prompt", required = true, paramLabel = "TEXT") String prompt;

    @Option(names = "--chat", description = "Wrap the prompt as a user message in the Llama-3 chat template.") boolean chat;

    @Option(names = "--max-new-tokens", defaultValue = "128", paramLabel = "N") int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T", description = "0 = greedy (default).") float temperature;

    @Option(names = "--top-p", defaultValue = "1.0", paramLabel = "P") float topP;

    @Option(names = "--seed", defaultValue = "0") long seed;

    @Override
    public Integer call() throws Exception {
        Tokenizer tok = model.tokenizer();
        int[] ids = chat
                ? new ChatTemplate(tok).render(List.of(ChatTemplate.Message.user(prompt)), true).ids()
                : withBos(tok, tok.encode(prompt, false));
        Set<Integer> stop = new HashSet<>();
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (LlamaModel m = model.load()) {
            stop.addAll(m.config().eosTokenIds());
            if (chat) tok.findTokenId("<|eot_id|>").ifPresent(stop::add);
            List<Integer> generated = new ArrayList<>();
            int[] printed = {0};
            long t0 = System.nanoTime();
            List<Integer> all = Generator.generate(m, ids, maxNewTokens, new Sampler(temperature, topP, seed), stop, id -> {
                generated.add(id);
                // decode everything so far and print what is new, holding back an incomplete UTF-8 sequence
                String text = tok.decode(generated);
                if (!text.endsWith("\uFFFD") && text.length() > printed[0]) {
                    out.print(text.substring(printed[0]));
                    printed[0] = text.length();
                }
            });
            String text = tok.decode(all);
            if (text.length() > printed[0]) out.print(text.substring(printed[0]));
            out.println();
            double s = (System.nanoTime() - t0) / 1e9;
            System.err.printf("tenfold: %d prompt tokens, %d generated in %.1f s%n", ids.length, all.size(), s);
        }
        return 0;
    }

    static int[] withBos(Tokenizer tok, int[] ids) {
        var bos = tok.findTokenId("<|begin_of_text|>");
        if (bos.isEmpty()) return ids;
        int[] out = new int[ids.length + 1];
        out[0] = bos.getAsInt();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }
}
