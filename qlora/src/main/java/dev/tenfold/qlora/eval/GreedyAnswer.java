package dev.tenfold.qlora.eval;

import dev.tenfold.llama.Generator;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Sampler;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;

/** The model's answer to a prompt: greedy decoding up to a token budget, stopping at end-of-text or end-of-turn. */
public final class GreedyAnswer {
    private GreedyAnswer() {}

    public static Function<int[], String> of(LlamaModel model, Tokenizer tok, int maxNewTokens) {
        Set<Integer> stop = new HashSet<>(model.config().eosTokenIds());
        // an instruct model ends its turn with <|eot_id|> even where config.json names only <|end_of_text|>
        tok.findTokenId(Tokenizer.EOT_ID).ifPresent(stop::add);
        tok.findTokenId(Tokenizer.END_OF_TEXT).ifPresent(stop::add);
        return ids -> {
            List<Integer> out = Generator.generate(model, ids, maxNewTokens, Sampler.greedy(), stop, null);
            return tok.decode(out, true);
        };
    }
}
