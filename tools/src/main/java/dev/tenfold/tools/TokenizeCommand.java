package dev.tenfold.tools;

import dev.tenfold.engine.io.TextFiles;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Text on standard input to token ids (a JSON array) on standard output. Only the tokenizer is read: no weights, no device. */
@Command(name = "tokenize", mixinStandardHelpOptions = true, description = "Read UTF-8 text on standard input and print its token ids as a JSON array (no BOS/EOS added).")
final class TokenizeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "A Hugging Face model folder (its tokenizer.json is used).")
    Path model;

    @Option(names = "--special", description = "Recognise special-token text such as <|eot_id|> (otherwise it is plain text).")
    boolean special;

    @Override
    public Integer call() throws IOException {
        Tokenizer tok = ModelOptions.tokenizerOf(model);
        String text = TextFiles.decodeUtf8(System.in.readAllBytes(), "standard input");
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
