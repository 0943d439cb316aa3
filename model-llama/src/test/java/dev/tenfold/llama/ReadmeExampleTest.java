package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Backends;
import dev.tenfold.engine.Device;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's library example, line for line, on a tiny model: it must keep compiling and running. */
class ReadmeExampleTest {
    @Test
    void generatesWithTheChatTemplate(@TempDir Path tmp) throws Exception {
        Path dir = TinyLlama.writeWithTokenizer(tmp.resolve("Meta-Llama-3-8B-Instruct"), 4);
        Tokenizer tok = Tokenizer.load(dir.resolve("tokenizer.json"));
        Backend backend = Backends.forDevice(Device.parse("cpu"));   // or "cuda", "cuda:1"
        try (LlamaModel model = LlamaLoader.load(dir, backend)) {
            int[] prompt = new ChatTemplate(tok).render(List.of(ChatTemplate.Message.user("Hi!")), true).ids();
            List<Integer> reply = Generator.generate(model, prompt, 64, Sampler.greedy(), Set.of(128001, 128009), null);
            assertEquals(64, reply.size()); // a random model never says a stop id it does not have
            assertNotNull(tok.decode(reply));
        }
    }
}
