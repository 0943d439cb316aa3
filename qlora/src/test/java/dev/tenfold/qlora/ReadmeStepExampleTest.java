package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Quantization;
import dev.tenfold.llama.longcontext.GreedyAnswer;
import dev.tenfold.llama.longcontext.Passkey;
import dev.tenfold.llama.longcontext.PasskeyDocs;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's step-by-step example, line for line, on a tiny model: attach LoRA, a few steps, pass-key evaluation, save. */
class ReadmeStepExampleTest {
    @Test
    void attachStepEvaluateSave(@TempDir Path tmp) throws Exception {
        Path dir = TinyLlama.writeWithTokenizer(tmp.resolve("Meta-Llama-3-8B-Instruct"), 21);
        Path saved = tmp.resolve("passkey-adapter");
        List<Trainer.StepMetrics> steps = new ArrayList<>();
        Passkey.Result result;

        Tokenizer tok = Tokenizer.load(dir.resolve("tokenizer.json"));
        try (LlamaModel model = LlamaLoader.load(dir, LoadSpec.defaults().ropeTheta(200e6).quantization(Quantization.NF4))) {
            Lora.attach(model, LoraConfig.of(8, 16f).targets("q,k,v,o"));
            Trainer trainer = new Trainer(model, TrainingSettings.defaults().lr(1e-3).maxSteps(3));
            PasskeyDocs docs = new PasskeyDocs(tok);                                // the pass-key evaluation's own texts
            SplittableRandom rng = new SplittableRandom(0);
            for (int i = 0; i < trainer.totalSteps(); i++) {
                var batch = List.of(Trainer.Example.nextTokens(docs.passkey(rng, 512).tokens(), null));
                Trainer.StepMetrics m = trainer.step(batch);                        // forward, backward, clipping, AdamW
                System.out.println(m);                                              // step 1/3: loss ..., lr ..., grad norm ...
                steps.add(m);
            }
            Passkey.Result r = Passkey.run(tok, false, new int[] {512, 1024}, 2, 0, GreedyAnswer.of(model, tok, 8), null);
            System.out.println(r.toJson());                                         // accuracy per length, and every answer
            PeftAdapter.save(saved, model);                                         // adapter_config.json derived from the model
            result = r;
        }

        assertEquals(3, steps.size());
        for (Trainer.StepMetrics m : steps) assertTrue(Double.isFinite(m.loss()) && !m.diverged(), m.toString());
        assertEquals(List.of(512, 1024), result.lengths().stream().map(Passkey.LengthResult::length).toList());
        assertTrue(Files.readString(saved.resolve(PeftAdapter.CONFIG)).contains("\"tenfold_rope_theta\" : 2.0E8"));
        assertEquals(8, PeftAdapter.readConfig(saved).lora().rank());
    }
}
