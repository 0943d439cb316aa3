package dev.tenfold.llama.tokenizer;

import dev.tenfold.llama.tokenizer.ChatTemplate.Message;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Known Llama-3 vectors, run only where TENFOLD_LLAMA3_TOKENIZER names a real Llama-3
 * tokenizer.json (the file is not shipped with the project).
 */
class TokenizerRealLlama3Test {
    @Test
    void knownVectors() throws Exception {
        String env = System.getenv("TENFOLD_LLAMA3_TOKENIZER");
        assumeTrue(env != null && !env.isBlank(), "TENFOLD_LLAMA3_TOKENIZER not set");
        Path file = Path.of(env);
        assertTrue(Files.isRegularFile(file), "TENFOLD_LLAMA3_TOKENIZER=" + env + " is not a file");
        Tokenizer tok = Tokenizer.load(file);

        assertArrayEquals(new int[] {9906, 1917, 0}, tok.encode("Hello world!", false));
        assertEquals(128000, tok.bosId());
        assertEquals(128001, tok.eosId());
        assertEquals(128009, tok.eotId());
        assertEquals(128006, tok.tokenId(Tokenizer.START_HEADER_ID));
        assertEquals(128007, tok.tokenId(Tokenizer.END_HEADER_ID));
        assertEquals(128256, tok.vocabSize());

        // Header pieces as Llama-3 chat dumps show them: user 882, assistant 78191, "\n\n" 271.
        ChatTemplate chat = new ChatTemplate(tok);
        int[] ids = chat.render(List.of(Message.user("Hello world!")), true).ids();
        assertArrayEquals(new int[] {128000, 128006, 882, 128007, 271, 9906, 1917, 0, 128009,
                128006, 78191, 128007, 271}, ids);

        for (String s : List.of("naïve café 東京 😀👍🏽", "RTL שלום مرحبا", "x\r\n\t  y  ", "I'LL 1234567")) {
            assertEquals(s, tok.decode(tok.encode(s, false)));
        }
    }
}
