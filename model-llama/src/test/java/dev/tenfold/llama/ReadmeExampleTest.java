package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Device;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's library example, line for line, on a tiny model: it must keep compiling and running. */
class ReadmeExampleTest {
    @Test
    void generatesWithTheChatTemplate(@TempDir Path tmp) throws Exception {
        Path dir = TinyLlama.writeWithTokenizer(tmp.resolve("Meta-Llama-3-8B-Instruct"), 4);
        Tokenizer tok = Tokenizer.load(dir.resolve("tokenizer.json"));
        LoadSpec spec = LoadSpec.defaults().device(Device.parse("cpu"));   // or "cuda", "cuda:1"
        try (LlamaModel model = LlamaLoader.load(dir, spec)) {
            int[] prompt = new ChatTemplate(tok).render(List.of(ChatTemplate.Message.user("Hi!")), true).ids();
            List<Integer> reply = Generator.generate(model, prompt, GenerationSettings.greedy(64));   // stops at config.json's eos ids
            assertTrue(reply.size() <= 64 && !reply.contains(2) && !reply.contains(3)); // the tiny model's eos ids: 2, 3
            assertNotNull(tok.decode(reply));
        }
    }
}
