package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Perplexity;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.data.JsonlDataset;
import dev.tenfold.qlora.data.LengthGroupedBatches;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's training example, line for line, on a tiny model: it must keep compiling and running. */
class ReadmeTrainingExampleTest {
    @Test
    void loadAttachTrainEvaluate(@TempDir Path tmp) throws Exception {
        Path dir = TinyLlama.writeWithTokenizer(tmp.resolve("Meta-Llama-3-8B-Instruct"), 12);
        Path jsonl = tmp.resolve("long-qa.jsonl");
        Files.writeString(jsonl, "{\"conversations\": [{\"role\": \"user\", \"content\": \"hello cat?\"}, {\"role\": \"assistant\", \"content\": \"hello world\"}]}\n"
                .repeat(4));
        Path out = tmp.resolve("my-adapter");
        String text = "hello world, hello cat";

        Tokenizer tok = Tokenizer.load(dir.resolve("tokenizer.json"));
        Recipe recipe = Recipes.LLAMA3_80K;
        try (LlamaModel model = LlamaLoader.load(dir, recipe.load())) {             // RoPE base 200M, NF4
            Lora.attach(model, recipe.lora());                                      // r 32, alpha 16 on q,k,v,o; embedding trained
            JsonlDataset data = JsonlDataset.load(tok, new JsonlDataset.Options().maxLength(recipe.maxLength()), jsonl);
            LengthGroupedBatches batches = LengthGroupedBatches.grouped(data.lengths(), recipe.batchSize(), 42);
            Trainer trainer = new Trainer(model, recipe.training(), Trainer.examples(data), batches::plan);
            trainer.addListener(RunFolder.create(out));                             // metrics.jsonl, checkpoints, the PEFT adapter
            trainer.fit();
            double ppl = Math.exp(Perplexity.evaluate(model, List.of(tok.encode(text)), 8192, 4096).mean());
            assertTrue(ppl > 1 && Double.isFinite(ppl));
        }
        assertTrue(Files.exists(out.resolve("adapter_model.safetensors")));
    }
}
