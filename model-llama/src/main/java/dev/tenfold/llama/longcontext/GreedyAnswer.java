package dev.tenfold.llama.longcontext;

import dev.tenfold.llama.GenerationSettings;
import dev.tenfold.llama.Generator;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.util.List;
import java.util.function.Function;
import java.util.stream.IntStream;

/** The model's answer to a prompt: greedy decoding up to a token budget, stopping at end-of-text or end-of-turn. */
public final class GreedyAnswer {
    private GreedyAnswer() {}

    public static Function<int[], String> of(LlamaModel model, Tokenizer tok, int maxNewTokens) {
        // the model's eos ids, and <|eot_id|>: an instruct model ends its turn with it even where config.json names only <|end_of_text|>
        GenerationSettings settings = GenerationSettings.greedy(maxNewTokens)
                .alsoStopAt(IntStream.concat(tok.findTokenId(Tokenizer.EOT_ID).stream(), tok.findTokenId(Tokenizer.END_OF_TEXT).stream()).toArray());
        return ids -> {
            List<Integer> out = Generator.generate(model, ids, settings);
            return tok.decode(out, true);
        };
    }
}
