package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `tenfold train` on a run that diverges, and `--resume` of nothing or of another run: one line each, exit 1, nothing lost. */
class TrainChecksCliTest {
    @TempDir static Path dir;
    static Path model, data;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 31);
        data = dir.resolve("train.jsonl");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 6; i++) sb.append("{\"text\": \"hello world, hello cat ").append(i).append(" times\"}\n");
        Files.writeString(data, sb.toString());
    }

    static String[] train(Path out, String lr, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--model", model.toString(), "--data", data.toString(), "--output", out.toString(),
                "--batch-size", "2", "--epochs", "2", "--lr", lr, "--save-every", "1", "--max-length", "64", "--lora-r", "4",
                "--lora-alpha", "8"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    @Test
    void aDivergedRunExitsNonZeroKeepingItsLastCheckpoint() throws Exception {
        Path out = dir.resolve("diverged");
        // an enormous rate, reached by step 2 (the warm-up starts at 0): the loss turns NaN soon after
        CliTest.Result r = CliTest.run("", train(out, "1e30", "--warmup-steps", "1", "--lr-schedule", "constant", "--max-grad-norm", "0"));
        assertEquals(1, r.code(), r.err());
        String last = r.err().strip().lines().reduce((a, b) -> b).orElseThrow();
        assertTrue(last.matches("tenfold train: training diverged at step \\d+ of 6: loss .*, gradient norm .*; its update was not applied; "
                + "the output was not written, and the last checkpoint, .*checkpoint-\\d+, is kept .*"), last);
        int step = Integer.parseInt(last.replaceAll(".*diverged at step (\\d+) of.*", "$1"));
        assertTrue(Files.isDirectory(out.resolve("checkpoint-" + (step - 1))), "the last good checkpoint is kept");
        assertTrue(Files.exists(out.resolve("checkpoint-" + (step - 1)).resolve("adapter_model.safetensors")));
        assertFalse(Files.exists(out.resolve("adapter_model.safetensors")), "no NaN adapter");
        assertFalse(r.err().contains("adapter written"), r.err());
        assertTrue(Files.readString(out.resolve("metrics.jsonl")).contains("\"diverged\":true"));
    }

    @Test
    void resumeOfNothingOrOfAnotherRunIsRefused() throws Exception {
        Path missing = dir.resolve("mistyped");
        CliTest.Result r = CliTest.run("", train(missing, "1e-2", "--resume", missing.toString()));
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains(missing + " does not exist: nothing to resume"), r.err());
        assertFalse(Files.exists(missing));

        Path empty = Files.createDirectories(dir.resolve("empty"));
        r = CliTest.run("", train(empty, "1e-2", "--resume", empty.toString()));
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("holds no checkpoint"), r.err());

        // a run killed after its checkpoints, resumed with another --lr and another --lora-targets
        Path out = dir.resolve("killed");
        CliTest.Result full = CliTest.run("", train(out, "1e-2", "--max-steps", "3"));
        assertEquals(0, full.code(), full.err());
        Files.delete(out.resolve("trainer_state.json")); // as if killed before the end, with checkpoint-2 on disk
        assertTrue(Files.isDirectory(out.resolve("checkpoint-2")));
        r = CliTest.run("", train(out, "2e-2", "--max-steps", "3", "--resume", out.toString()));
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("was written by a different run: lr: checkpoint 0.01, this run 0.02"), r.err());
        r = CliTest.run("", train(out, "1e-2", "--max-steps", "3", "--lora-targets", "q,v", "--resume", out.toString()));
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("trainable parameters: the checkpoint has 8"), r.err());
        // the same flags resume it; then it is complete
        r = CliTest.run("", train(out, "1e-2", "--max-steps", "3", "--resume", out.toString()));
        assertEquals(0, r.code(), r.err());
        r = CliTest.run("", train(out, "1e-2", "--max-steps", "3", "--resume", out.toString()));
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("the run there is complete (step 3 of 3, its output written): nothing to resume"), r.err());
    }
}
