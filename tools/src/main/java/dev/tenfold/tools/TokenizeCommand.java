package dev.tenfold.tools;

import dev.tenfold.llama.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Text on standard input to token ids (a JSON array) on standard output. */
@Command(name = "tokenize", mixinStandardHelpOptions = true, description = "Read text on standard input and print its token ids as a JSON array (no BOS/EOS added).")
final class TokenizeCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    @Option(names = "--special", description = "Recognise special-token text such as <|eot_id|> (otherwise it is plain text).")
    boolean special;

    @Override
    public Integer call() throws IOException {
        Tokenizer tok = model.tokenizer();
        String text = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        int[] ids = tok.encode(text, special);
        StringBuilder sb = new StringBuilder(ids.length * 6 + 2).append('[');
        for (int i = 0; i < ids.length; i++) {
            if (i > 0) sb.append(", ");
            sb.append(ids[i]);
        }
        System.out.println(sb.append(']'));
        return 0;
    }
}
