package dev.tenfold.tools;

import dev.tenfold.llama.GenerationSettings;
import dev.tenfold.llama.Generator;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
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

    @Option(names = "--max-new-tokens", defaultValue = "128", paramLabel = "N", description = "At most N tokens after the prompt (default: ${DEFAULT-VALUE}).")
    @Range(min = 1, max = Flags.MAX_TOKENS) int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T", description = "0 = greedy (default).")
    @Range(min = 0, max = 100) float temperature;

    @Option(names = "--top-p", defaultValue = "1.0", paramLabel = "P", description = "Sample from the smallest set of tokens whose probability reaches P (default: ${DEFAULT-VALUE}).")
    @Range(min = 0, minExclusive = true, max = 1) float topP;

    @Option(names = "--seed", defaultValue = "0") long seed;

    @Override
    public Integer call() throws Exception {
        Tokenizer tok = model.tokenizer();
        int[] ids = chat
                ? new ChatTemplate(tok).render(List.of(ChatTemplate.Message.user(prompt)), true).ids()
                : withBos(tok, tok.encode(prompt, false));
        if ((long) ids.length + maxNewTokens > Flags.MAX_TOKENS) {
            throw new Flags.BadFlag("--max-new-tokens " + maxNewTokens + " after a prompt of " + ids.length + " tokens passes "
                    + Flags.MAX_TOKENS + " positions, the most RoPE tells apart in F32");
        }
        LlamaConfig c = model.config();
        new MemoryCheck("generate with --max-new-tokens " + maxNewTokens + " after " + ids.length + " prompt tokens", model.onHost())
                .tensors("weights", model.weightBytes(c, false))
                .tensors("KV cache", MemoryCheck.kvCache(c, (long) ids.length + maxNewTokens))
                .tensors("activations", MemoryCheck.inferenceScratch(c, ids.length))
                .check();
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        // Where the text does not stream to a terminal, a long generation says how far it is on stderr.
        boolean showProgress = maxNewTokens >= PROGRESS_FROM && !(System.console() != null && System.console().isTerminal());
        int progressEvery = Math.max(1, maxNewTokens / 10);
        try (LlamaModel m = model.load()) {
            // the model's eos ids, and a chat turn's end
            GenerationSettings settings = GenerationSettings.greedy(maxNewTokens).sampling(temperature, topP, seed);
            if (chat) settings = settings.alsoStopAt(tok.findTokenId("<|eot_id|>").stream().toArray());
            // the tokens not printed yet: a token may end inside a multi-byte character, so they wait
            // until they decode to whole characters (decoding only these keeps each step O(1), not O(tokens))
            List<Integer> pending = new ArrayList<>();
            int[] count = {0};
            long t0 = System.nanoTime();
            List<Integer> all = Generator.generate(m, ids, settings, id -> {
                count[0]++;
                if (showProgress && count[0] % progressEvery == 0) {
                    double seconds = (System.nanoTime() - t0) / 1e9;
                    System.err.printf(Locale.ROOT, "tenfold: generated %,d of at most %,d tokens (%.1f tokens/s)%n", count[0],
                            maxNewTokens, count[0] / Math.max(seconds, 1e-9));
                }
                pending.add(id);
                String text = tok.decode(pending);
                if (!text.endsWith("\uFFFD")) {
                    out.print(text);
                    pending.clear();
                }
            });
            if (!pending.isEmpty()) out.print(tok.decode(pending));
            out.println();
            double s = (System.nanoTime() - t0) / 1e9;
            System.err.printf("tenfold: %d prompt tokens, %d generated in %.1f s%n", ids.length, all.size(), s);
        }
        return 0;
    }

    /** Generations of at least this many tokens show progress on stderr. */
    static final int PROGRESS_FROM = 1000;

    static int[] withBos(Tokenizer tok, int[] ids) {
        var bos = tok.findTokenId("<|begin_of_text|>");
        if (bos.isEmpty()) return ids;
        int[] out = new int[ids.length + 1];
        out[0] = bos.getAsInt();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }
}
