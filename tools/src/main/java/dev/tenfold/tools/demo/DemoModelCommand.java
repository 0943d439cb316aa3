package dev.tenfold.tools.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.longcontext.PasskeyDocs;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.FullTraining;
import dev.tenfold.qlora.LrSchedule;
import dev.tenfold.qlora.RunFolder;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.TrainingSettings;
import dev.tenfold.qlora.data.LengthGroupedBatches;
import dev.tenfold.tools.ProgressBar;
import dev.tenfold.tools.Range;
import dev.tenfold.tools.charts.LossCurve;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Reproduces the shipped demo model: a Llama-architecture model pre-trained from scratch by tenfold
 * (full training, every weight) on pass-key documents of up to 256 tokens, half of them "dense"
 * documents with many keys, which teach copying quickly.
 */
@Command(name = "model", mixinStandardHelpOptions = true,
        description = "Pre-train the demo's small model from scratch, as the shipped one was made (four stages, 3,500 steps; "
                + "about 20 minutes on 2 cores). The result goes to --output (work files, metrics and loss curves beside it, in "
                + "OUTPUT.work); copy its three files into tools/src/main/resources/dev/tenfold/tools/demo/model/ to ship it.")
public final class DemoModelCommand implements Callable<Integer> {
    /** The shipped model's shape and context. */
    static final int HIDDEN = 128, LAYERS = 4, HEAD_DIM = 32, CONTEXT = 256;

    /**
     * One stage of pre-training: documents up to {@code maxLength} tokens, a share of them dense
     * many-key documents, and its own warm-up and cosine decay of the learning rate.
     */
    record Stage(double denseShare, int maxLength, int steps) {}

    /**
     * The recipe that made the shipped model. Copying forms first on short dense documents; then
     * pass-key documents up to the full context teach the question; the later stages restart the
     * learning rate, which kept improving retrieval (100% at 256 tokens after the last stage).
     */
    static final List<Stage> STAGES = List.of(new Stage(1.0, 128, 400), new Stage(0.5, CONTEXT, 600), new Stage(0.3, CONTEXT, 1000),
            new Stage(0.3, CONTEXT, 1500));

    @Option(names = "--output", paramLabel = "DIR", required = true, description = "A new folder for the model.") Path output;
    @Option(names = "--batch-size", paramLabel = "N", defaultValue = "8", description = "Documents per step (default 8).")
    @Range(min = 1, max = 100_000) int batchSize;
    @Option(names = "--lr", paramLabel = "LR", defaultValue = "1e-3", description = "Peak learning rate of every stage (default 1e-3).")
    @Range(min = 0, minExclusive = true) double lr;
    @Option(names = "--steps-scale", paramLabel = "X", defaultValue = "1", description = "Multiply every stage's steps (tests use less).")
    @Range(min = 0, minExclusive = true, max = 1000) double stepsScale;
    @Option(names = "--seed", defaultValue = "1", description = "Seed of the initial weights, the data and the batches (default 1).")
    long seed;

    @Override
    public Integer call() throws Exception {
        if (Files.exists(output.resolve("config.json"))) {
            throw new IllegalArgumentException(output + " already holds a model (config.json); choose another --output");
        }
        Path work = output.resolveSibling(output.getFileName() + ".work");
        Files.createDirectories(work);
        ObjectMapper json = new ObjectMapper();
        Path tokenizer = work.resolve("tokenizer.json");
        AtomicFiles.write(tokenizer, json.writerWithDefaultPrettyPrinter().writeValueAsBytes(DemoTokenizer.json()));
        Path config = work.resolve("config.json");
        AtomicFiles.write(config, json.writerWithDefaultPrettyPrinter().writeValueAsBytes(config()));
        Path init = work.resolve("init");
        if (!Files.exists(init.resolve("config.json"))) FullTraining.init(config, init, seed, DType.F32, tokenizer);

        Tokenizer tok = Tokenizer.load(tokenizer);
        PasskeyDocs docs = new PasskeyDocs(tok);
        SplittableRandom rng = new SplittableRandom(seed * 31 + 7);
        Path from = init;
        for (int k = 0; k < STAGES.size(); k++) {
            Stage st = STAGES.get(k);
            int steps = Math.max(1, (int) Math.round(st.steps() * stepsScale));
            List<Trainer.Example> examples = new ArrayList<>();
            int[] lengths = new int[steps * batchSize];
            for (int i = 0; i < lengths.length; i++) {
                int len = docs.minLength() + rng.nextInt(st.maxLength() - docs.minLength() + 1);
                PasskeyDocs.Doc doc = rng.nextDouble() < st.denseShare() ? docs.denseKeys(rng, len) : docs.passkey(rng, len);
                examples.add(Trainer.Example.nextTokens(doc.tokens(), doc.positions()));
                lengths[i] = examples.get(i).ids().length;
            }
            Path stageDir = work.resolve("stage" + (k + 1));
            Path base = from;
            DType saveAs = k + 1 == STAGES.size() ? DType.BF16 : DType.F32;
            try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
                FullTraining.makeTrainable(m);
                TrainingSettings s = TrainingSettings.defaults().lr(lr).schedule(LrSchedule.Kind.COSINE).warmupSteps(Math.min(50, steps / 10))
                        .maxSteps(steps).beta2(0.95f).keepCheckpoints(1).seed(seed + k);
                Trainer t = new Trainer(m, s, examples, LengthGroupedBatches.shuffled(lengths, batchSize, seed + k)::plan);
                t.addListener(RunFolder.create(stageDir).output((dir, mm) -> FullTraining.save(dir, mm, base, saveAs)))
                        .addListener(LossCurve.listener(stageDir)).addListener(new ProgressBar(System.err));
                System.err.printf("tenfold demo model: stage %d/%d: %d steps of %d documents (%d to %d tokens, %.0f%% dense)%n", k + 1,
                        STAGES.size(), steps, batchSize, docs.minLength(), st.maxLength(), 100 * st.denseShare());
                t.fit();
            }
            from = stageDir;
        }
        // the last stage's folder holds the model plus training metrics; ship only the model's three files
        Files.createDirectories(output);
        for (String f : DemoCommand.MODEL_FILES) Files.copy(from.resolve(f), output.resolve(f));
        System.err.println("tenfold demo model: written to " + output + " (work files, metrics and loss curves in " + work + ")");
        return 0;
    }

    /** config.json of the demo model: Llama-3's architecture (GQA, SwiGLU, RMSNorm, RoPE), tiny. */
    static ObjectNode config() {
        ObjectNode c = new ObjectMapper().createObjectNode();
        int vocab = DemoTokenizer.vocabSize();
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("model_type", "llama").put("hidden_size", HIDDEN).put("intermediate_size", 3 * HIDDEN).put("num_hidden_layers", LAYERS)
                .put("num_attention_heads", HIDDEN / HEAD_DIM).put("num_key_value_heads", HIDDEN / HEAD_DIM / 2).put("head_dim", HEAD_DIM)
                .put("vocab_size", vocab).put("max_position_embeddings", CONTEXT).put("rope_theta", 10000.0).put("rms_norm_eps", 1e-5)
                .put("tie_word_embeddings", false).put("bos_token_id", vocab - DemoTokenizer.SPECIALS.length)
                .put("eos_token_id", vocab - DemoTokenizer.SPECIALS.length + 1).put("hidden_act", "silu").put("initializer_range", 0.02)
                .put("attention_bias", false).put("torch_dtype", "bfloat16");
        return c;
    }
}
