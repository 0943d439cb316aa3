package dev.tenfold.qlora;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.engine.io.SafeTensorsFile;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.testing.TinyLlama;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/** What the trainer refuses: bad settings, a diverging run, a resume of nothing or of another run, and what it cleans up. */
class TrainerChecksTest {
    @TempDir static Path dir;
    static Path base;
    static final List<Trainer.Example> DATA = TrainerTest.repeatTask(8, 5, 2);

    @BeforeAll
    static void setUp() throws Exception {
        base = TinyLlama.write(dir.resolve("base"), 8, DType.BF16, false);
    }

    static TrainingSettings settings(double lr, long seed) {
        return TrainingSettings.defaults().lr(lr).warmupSteps(2).epochs(3).saveEvery(2).seed(seed);
    }

    static Run trainer(LlamaModel model, List<Trainer.Example> data, Trainer.BatchPlan plan, TrainingSettings s, Path out) {
        return Run.of(model, data, plan, s, out);
    }

    /** A run of 9 steps killed after step 5: checkpoint-2 and checkpoint-4 on disk. */
    static Path killedRun(String name) throws Exception {
        Path out = dir.resolve(name);
        try (LlamaModel model = TrainerTest.model(base)) {
            Run t = trainer(model, DATA, TrainerTest.plan(DATA.size(), 3), settings(3e-2, 0), out);
            assertThrows(IllegalStateException.class, () -> t.train(false, m -> {
                if (m.step() == 5) throw new IllegalStateException("killed");
            }));
        }
        assertTrue(Files.isDirectory(out.resolve("checkpoint-4")));
        return out;
    }

    static Map<Path, byte[]> snapshot(Path folder) throws IOException {
        Map<Path, byte[]> out = new HashMap<>();
        try (Stream<Path> s = Files.walk(folder)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) out.put(folder.relativize(p), Files.readAllBytes(p));
        }
        return out;
    }

    static void assertSameFiles(Map<Path, byte[]> before, Path folder) throws IOException {
        Map<Path, byte[]> after = snapshot(folder);
        assertEquals(before.keySet(), after.keySet());
        for (Path p : before.keySet()) assertArrayEquals(before.get(p), after.get(p), p.toString());
    }

    static IllegalArgumentException refused(Executable e) {
        return assertThrows(IllegalArgumentException.class, e);
    }

    // ------------------------------------------------------------------ settings

    @Test
    void settingsOutOfRangeAreRefusedNamingTheSetting() {
        record Bad(String setting, Executable make) {}
        LrSchedule.Kind lin = LrSchedule.Kind.LINEAR;
        List<Bad> bad = List.of(
                new Bad("lr", () -> TrainingSettings.defaults().lr(Double.NaN).schedule(lin).keepCheckpoints(1)),
                new Bad("lr", () -> TrainingSettings.defaults().lr(Double.POSITIVE_INFINITY).schedule(lin).keepCheckpoints(1)),
                new Bad("lr", () -> TrainingSettings.defaults().lr(-1e-4).schedule(lin).keepCheckpoints(1)),
                new Bad("lr", () -> TrainingSettings.defaults().lr(0).schedule(lin).keepCheckpoints(1)),
                new Bad("lr", () -> TrainingSettings.defaults().lr(1e300).schedule(lin).keepCheckpoints(1)), // infinite as a float
                new Bad("schedule", () -> TrainingSettings.defaults().lr(1e-4).schedule(null).keepCheckpoints(1)),
                new Bad("warmupSteps", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).warmupSteps(-1).keepCheckpoints(1)),
                new Bad("epochs", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).epochs(0).keepCheckpoints(1)),
                new Bad("maxSteps", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).maxSteps(0).keepCheckpoints(1)),
                new Bad("beta1", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).beta1(1f).keepCheckpoints(1)),
                new Bad("beta1", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).beta1(-0.1f).keepCheckpoints(1)),
                new Bad("beta2", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).beta2(1f).keepCheckpoints(1)),
                new Bad("beta2", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).beta2(Float.NaN).keepCheckpoints(1)),
                new Bad("eps", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).eps(0f).keepCheckpoints(1)),
                new Bad("eps", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).eps(Float.POSITIVE_INFINITY).keepCheckpoints(1)),
                new Bad("weightDecay", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).weightDecay(-0.01f).keepCheckpoints(1)),
                new Bad("weightDecay", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).weightDecay(Float.NaN).keepCheckpoints(1)),
                new Bad("maxGradNorm", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).maxGradNorm(-1).keepCheckpoints(1)),
                new Bad("maxGradNorm", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).maxGradNorm(Double.NaN).keepCheckpoints(1)),
                new Bad("saveEvery", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).saveEvery(-1).keepCheckpoints(1)),
                new Bad("keepCheckpoints", () -> TrainingSettings.defaults().lr(1e-4).schedule(lin).keepCheckpoints(0)));
        for (Bad b : bad) {
            InvalidSettingException e = assertThrows(InvalidSettingException.class, b.make(), b.setting());
            assertEquals(b.setting(), e.setting());
            assertTrue(e.getMessage().startsWith(b.setting() + " must "), e.getMessage());
        }
        // the edges that are allowed
        TrainingSettings.defaults().lr(1e-4).schedule(lin).maxSteps(1).beta1(0f).beta2(0f).eps(Float.MIN_VALUE).maxGradNorm(0).keepCheckpoints(1);
    }

    @Test
    void aRunLongerThanAnIntIsRefused() throws Exception {
        try (LlamaModel model = TrainerTest.model(base)) {
            TrainingSettings s = TrainingSettings.defaults().lr(1e-4).epochs(1 << 30).keepCheckpoints(1);
            InvalidSettingException e = assertThrows(InvalidSettingException.class,
                    () -> trainer(model, DATA, TrainerTest.plan(DATA.size(), 3), s, dir.resolve("never")));
            assertEquals("epochs", e.setting());
            assertTrue(e.getMessage().contains("3221225472 steps"), e.getMessage());
        }
    }

    // ------------------------------------------------------------------ divergence

    @Test
    void aDivergingRunStopsAtTheBadStepBeforeItsUpdateAndKeepsItsCheckpoints() throws Exception {
        Path out = dir.resolve("diverged");
        // the rate ramps from 0 (step 1 changes nothing) to 1e30 / 4 by step 2: then the loss blows up
        TrainingSettings s = TrainingSettings.defaults().lr(4e30).schedule(LrSchedule.Kind.CONSTANT).warmupSteps(4).epochs(3).maxGradNorm(0).saveEvery(1);
        List<Double> losses = new ArrayList<>();
        TrainingDivergedException e;
        Map<Path, byte[]> checkpointsBefore;
        try (LlamaModel model = TrainerTest.model(base)) {
            e = assertThrows(TrainingDivergedException.class,
                    () -> trainer(model, DATA, TrainerTest.plan(DATA.size(), 3), s, out).train(false, m -> losses.add(m.loss())));
            int k = e.step();
            assertTrue(k >= 2, "diverged at step " + k);
            assertFalse(Double.isFinite(e.loss()) && Double.isFinite(e.gradNorm()), e.getMessage());
            assertTrue(e.getMessage().startsWith("training diverged at step " + k + " of 9: loss "), e.getMessage());
            assertEquals(out.resolve("checkpoint-" + (k - 1)), e.lastCheckpoint());
            assertTrue(e.getMessage().contains("the last checkpoint, " + e.lastCheckpoint() + ", is kept"), e.getMessage());
            // the listener saw the bad step too (a progress bar shows it), and every earlier one was finite
            assertEquals(k, losses.size());
            for (int i = 0; i < k - 1; i++) assertTrue(Double.isFinite(losses.get(i)), losses.toString());
            // the update of the bad step was not applied: the parameters are those of the step before, as checkpointed
            try (SafeTensorsFile saved = SafeTensorsFile.open(e.lastCheckpoint().resolve("parameters.safetensors"))) {
                for (Parameter p : model.parameters()) {
                    assertArrayEquals(saved.tensor(p.name()).toFloatArray(), p.value().toFloatArray(), p.name());
                }
            }
            checkpointsBefore = snapshot(e.lastCheckpoint());
        }
        int k = e.step();
        assertFalse(Files.exists(out.resolve("checkpoint-" + k)));
        assertFalse(Files.exists(out.resolve(PeftAdapter.WEIGHTS)), "no final adapter");
        assertFalse(Files.exists(out.resolve("trainer_state.json")), "not marked complete");
        assertFalse(Files.exists(out.resolve("loss.png")));
        List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(k, metrics.size());
        String last = metrics.get(k - 1);
        assertTrue(last.startsWith("{\"step\":" + k + ",") && last.contains("\"diverged\":true"), last);
        assertFalse(metrics.get(k - 2).contains("diverged"));

        // resuming it is the same run: it diverges at the same step, and the checkpoint stays as it was
        try (LlamaModel model = TrainerTest.model(base)) {
            TrainingDivergedException again = assertThrows(TrainingDivergedException.class,
                    () -> trainer(model, DATA, TrainerTest.plan(DATA.size(), 3), s, out).train(true, null));
            assertEquals(k, again.step());
        }
        assertSameFiles(checkpointsBefore, out.resolve("checkpoint-" + (k - 1)));
        assertEquals(k, Files.readAllLines(out.resolve("metrics.jsonl")).size());
    }

    @Test
    void parametersAnUpdateMadeNonFiniteAreNeverWritten() throws Exception {
        Path out = dir.resolve("overflowed");
        // finite loss and gradients, but a decay factor 1 - lr * weightDecay beyond the float range: the update overflows
        TrainingSettings s = TrainingSettings.defaults().lr(3e38).schedule(LrSchedule.Kind.CONSTANT).maxSteps(2).weightDecay(100f).maxGradNorm(0).saveEvery(1);
        try (LlamaModel model = TrainerTest.model(base)) {
            TrainingDivergedException e = assertThrows(TrainingDivergedException.class,
                    () -> trainer(model, DATA, TrainerTest.plan(DATA.size(), 3), s, out).train(false, null));
            assertEquals(1, e.step());
            assertTrue(Double.isFinite(e.loss()) && Double.isFinite(e.gradNorm()), e.getMessage());
            assertTrue(e.getMessage().startsWith("training diverged at step 1 of 2: parameter model.layers.0.self_attn.q_proj.lora_A.weight "
                    + "is not finite after its update"), e.getMessage());
            assertTrue(e.getMessage().contains("no checkpoint had been written"), e.getMessage());
            assertNull(e.lastCheckpoint());
        }
        try (Stream<Path> files = Files.list(out)) {
            assertEquals(List.of("metrics.jsonl"), files.map(p -> p.getFileName().toString()).toList());
        }
    }

    // ------------------------------------------------------------------ resume

    @Test
    void resumeRefusesAnotherRunNamingWhatDiffersAndLeavesTheCheckpoint() throws Exception {
        Path out = killedRun("other-run");
        Map<Path, byte[]> before = snapshot(out);
        Trainer.BatchPlan plan = TrainerTest.plan(DATA.size(), 3);
        List<Trainer.Example> changed = new ArrayList<>(DATA);
        Trainer.Example e0 = DATA.get(0);
        int[] targets = e0.targets().clone();
        targets[targets.length - 1] = 7;
        changed.set(0, new Trainer.Example(e0.ids(), targets, null));
        Trainer.BatchPlan reversed = epoch -> {
            List<int[]> p = new ArrayList<>(plan.plan(epoch));
            java.util.Collections.reverse(p);
            return p;
        };
        record Case(String expected, Executable resume) {}
        List<Case> cases = new ArrayList<>();
        cases.add(new Case("lr: checkpoint 0.03, this run 0.01", () -> {
            try (LlamaModel m = TrainerTest.model(base)) {
                trainer(m, DATA, plan, settings(1e-2, 0), out).train(true, null);
            }
        }));
        cases.add(new Case("seed: checkpoint 0, this run 7", () -> {
            try (LlamaModel m = TrainerTest.model(base)) {
                trainer(m, DATA, plan, settings(3e-2, 7), out).train(true, null);
            }
        }));
        cases.add(new Case("beta2: checkpoint 0.999, this run 0.99", () -> {
            try (LlamaModel m = TrainerTest.model(base)) {
                trainer(m, DATA, plan, TrainingSettings.defaults().lr(3e-2).warmupSteps(2).epochs(3).beta2(0.99f).saveEvery(2), out)
                        .train(true, null);
            }
        }));
        cases.add(new Case("epochs: checkpoint 3, this run 4; total_steps: checkpoint 9, this run 12. Resume", () -> {
            try (LlamaModel m = TrainerTest.model(base)) {
                trainer(m, DATA, plan, TrainingSettings.defaults().lr(3e-2).warmupSteps(2).epochs(4).saveEvery(2), out)
                        .train(true, null);
            }
        }));
        cases.add(new Case("data: checkpoint 8 examples", () -> {
            try (LlamaModel m = TrainerTest.model(base)) {
                trainer(m, changed, plan, settings(3e-2, 0), out).train(true, null);
            }
        }));
        cases.add(new Case("batch plan: the same data batched or ordered differently", () -> {
            try (LlamaModel m = TrainerTest.model(base)) {
                trainer(m, DATA, reversed, settings(3e-2, 0), out).train(true, null);
            }
        }));
        cases.add(new Case("trainable parameters: the checkpoint has 8 (model.layers.0.self_attn.k_proj.lora_A.weight, model.layers.0.self_attn.k_proj.lora_B.weight, model.layers.0.self_attn.o_proj.lora_A.weight, ...) that this run lacks", () -> {
            try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
                Lora.attach(m, LoraConfig.of(8, 16f).targets("q,v").dropout(0.1f).seed(42));
                trainer(m, DATA, plan, settings(3e-2, 0), out).train(true, null);
            }
        }));
        cases.add(new Case("parameter shapes (checkpoint vs this run): 16 (model.layers.0.self_attn.q_proj.lora_A.weight [8, 32] vs [4, 32]", () -> {
            try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
                Lora.attach(m, LoraConfig.of(4, 8f).targets("q,k,v,o").dropout(0.1f).seed(42)); // the same scale, another rank
                trainer(m, DATA, plan, settings(3e-2, 0), out).train(true, null);
            }
        }));
        cases.add(new Case("LoRA dropout: checkpoint [0.1], this run [0.0]", () -> {
            try (LlamaModel m = LlamaLoader.load(base, CpuBackend.fast())) {
                Lora.attach(m, LoraConfig.of(8, 16f).targets("q,k,v,o").seed(42));
                trainer(m, DATA, plan, settings(3e-2, 0), out).train(true, null);
            }
        }));
        cases.add(new Case("rope_theta: checkpoint 10000.0, this run 200000.0", () -> {
            try (LlamaModel m = LlamaLoader.load(base, LoadSpec.defaults().ropeTheta(200000.0))) {
                Lora.attach(m, LoraConfig.of(8, 16f).targets("q,k,v,o").dropout(0.1f).seed(42));
                trainer(m, DATA, plan, settings(3e-2, 0), out).train(true, null);
            }
        }));
        for (Case c : cases) {
            IllegalArgumentException e = refused(c.resume());
            assertTrue(e.getMessage().startsWith(out.resolve("checkpoint-4") + " was written by a different run: "), e.getMessage());
            assertTrue(e.getMessage().contains(c.expected()), c.expected() + " in: " + e.getMessage());
            assertSameFiles(before, out);
        }
        // the same run resumes
        try (LlamaModel m = TrainerTest.model(base)) {
            assertEquals(4, trainer(m, DATA, plan, settings(3e-2, 0), out).train(true, null));
        }
    }

    @Test
    void aDamagedTrainerStateIsNamedWithItsPathAndField() throws Exception {
        Path out = killedRun("damaged");
        Path state = out.resolve("checkpoint-4").resolve("trainer_state.json");
        String good = Files.readString(state);
        assertTrue(good.contains("\"step\" : 4,") && good.contains("\"lr\" : 0.03,"), good);
        Map<String, String> damage = new java.util.LinkedHashMap<>();
        damage.put(good.substring(0, good.length() / 2), "not valid JSON");
        damage.put("[1, 2]", "not a JSON object");
        damage.put(good.replace("\"step\" : 4,", "\"step\" : -4,"), "step must be in [1, 9], got -4");
        damage.put(good.replace("\"step\" : 4,", "\"step\" : 40,"), "step must be in [1, 9], got 40");
        damage.put(good.replace("\"step\" : 4,", "\"step\" : 4.5,"), "step must be an integer, got 4.5");
        damage.put(good.replace("\"step\" : 4,", "\"step\" : 2,"), "step is 2 in folder checkpoint-4");
        damage.put(good.replace("\"lr\" : 0.03,", "\"lr\" : \"abc\","), "settings.lr must be a number, got \"abc\"");
        damage.put(good.replace("\"lr\" : 0.03,", "\"lr\" : -0.03,"), "settings.lr must be a finite number > 0");
        damage.put(good.replace("\"lr\" : 0.03,", "\"lr\" : 1e400,"), "settings.lr must be a finite number > 0");
        damage.put(good.replace("\"beta2\" : 0.999,", "\"beta2\" : 1.0,"), "settings.beta2 must be in [0, 1)");
        damage.put(good.replace("\"total_steps\" : 9,", ""), "missing field total_steps");
        damage.put(good.replace("\"warmup_steps\" : 2,", "\"warmup_steps\" : -2,"), "settings.warmup_steps must be in [0, 2^31-1], got -2");
        damage.put(good.replace("\"seed\" : 0", "\"seed\" : 1e400"), "settings.seed must be an integer, got");
        damage.put(good.replace("\"rope_theta\" : 10000.0,", "\"rope_theta\" : 0,"), "model.rope_theta must be a finite number > 0");
        damage.put(good.replaceFirst("\\[ 8, 32 \\]", "[ 8, -32 ]"), "must be a shape (an array of sizes), got [8,-32]");
        damage.put(good.replace("\"schedule\" : \"linear\",", "\"schedule\" : \"warmup-stable\","), "settings.schedule: unknown learning-rate schedule");
        damage.put(good.replaceFirst("\"sha256\" : \"[0-9a-f]+\"", "\"sha256\" : \"xyz\""), "data.sha256 must be a SHA-256 in hex");
        for (Map.Entry<String, String> d : damage.entrySet()) {
            assertNotEquals(good, d.getKey(), d.getValue());
            Files.writeString(state, d.getKey());
            Map<Path, byte[]> before = snapshot(out);
            IllegalArgumentException e = refused(() -> {
                try (LlamaModel m = TrainerTest.model(base)) {
                    trainer(m, DATA, TrainerTest.plan(DATA.size(), 3), settings(3e-2, 0), out).train(true, null);
                }
            });
            assertTrue(e.getMessage().startsWith(state + ": corrupt trainer state: "), e.getMessage());
            assertTrue(e.getMessage().contains(d.getValue()), d.getValue() + " in: " + e.getMessage());
            assertSameFiles(before, out);
        }
    }

    @Test
    void resumingNothingIsAnError() throws Exception {
        // a mistyped folder: an error, and nothing is created
        Path missing = dir.resolve("no-such-run");
        IllegalArgumentException e = refused(() -> resume(missing));
        assertEquals(missing + " does not exist: nothing to resume", e.getMessage());
        assertFalse(Files.exists(missing));
        // an empty folder
        Path empty = Files.createDirectories(dir.resolve("empty-run"));
        e = refused(() -> resume(empty));
        assertEquals(empty + " holds no checkpoint (checkpoint-N folder) to resume from: nothing to resume", e.getMessage());
        // a run killed while writing its first checkpoint
        Path unfinished = Files.createDirectories(dir.resolve("unfinished-run").resolve(".checkpoint-2.tmp"));
        Files.write(unfinished.resolve("optimizer.safetensors"), new byte[1000]);
        e = refused(() -> resume(unfinished.getParent()));
        assertEquals(unfinished.getParent() + " holds no checkpoint (checkpoint-N folder) to resume from: nothing to resume", e.getMessage());
        assertFalse(Files.exists(unfinished), "the unfinished checkpoint is removed");
        // a file
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        e = refused(() -> resume(file));
        assertEquals(file + " is not a folder: nothing to resume", e.getMessage());
        // the same checks, made before loading a model
        assertEquals(missing + " does not exist: nothing to resume", refused(() -> RunFolder.check(missing, true)).getMessage());
        RunFolder.check(missing, false);
        RunFolder.check(empty, false);
        assertFalse(Files.exists(missing));
        // a finished run, whether or not it kept checkpoints
        for (int saveEvery : new int[] {0, 2}) {
            Path done = dir.resolve("done-" + saveEvery);
            TrainingSettings s = TrainingSettings.defaults().lr(3e-2).warmupSteps(2).epochs(3).saveEvery(saveEvery);
            try (LlamaModel m = TrainerTest.model(base)) {
                trainer(m, DATA, TrainerTest.plan(DATA.size(), 3), s, done).train(false, null);
            }
            Map<Path, byte[]> before = snapshot(done);
            e = refused(() -> {
                try (LlamaModel m = TrainerTest.model(base)) {
                    trainer(m, DATA, TrainerTest.plan(DATA.size(), 3), s, done).train(true, null);
                }
            });
            assertEquals(done + ": the run there is complete (step 9 of 9, its output written): nothing to resume", e.getMessage());
            assertSameFiles(before, done);
            assertEquals(e.getMessage(), refused(() -> RunFolder.check(done, true)).getMessage());
        }
    }

    private static void resume(Path out) throws Exception {
        try (LlamaModel m = TrainerTest.model(base)) {
            trainer(m, DATA, TrainerTest.plan(DATA.size(), 3), settings(3e-2, 0), out).train(true, null);
        }
    }

    @Test
    void aFreshRunRefusesAFolderWithAnEarlierRunsCheckpoints() throws Exception {
        Path out = killedRun("earlier");
        Map<Path, byte[]> before = snapshot(out);
        IllegalArgumentException e = refused(() -> {
            try (LlamaModel m = TrainerTest.model(base)) {
                trainer(m, DATA, TrainerTest.plan(DATA.size(), 3), settings(3e-2, 0), out).train(false, null);
            }
        });
        assertEquals(out + " holds checkpoints of an earlier run (checkpoint-4): resume that run, or train into another folder", e.getMessage());
        assertSameFiles(before, out);
        assertEquals(e.getMessage(), refused(() -> RunFolder.check(out, false)).getMessage());
        RunFolder.check(out, true);
    }

    // ------------------------------------------------------------------ temporaries

    @Test
    void temporariesLeftByAKillAreRemovedOnTheNextRunAndOnlyThose() throws Exception {
        Path out = killedRun("orphans");
        // a real temporary of the atomic writer, as a kill before its rename leaves it
        Path held = dir.resolve("held.tmp");
        AtomicFiles.write(out.resolve(PeftAdapter.WEIGHTS), ch -> {
            ch.write(java.nio.ByteBuffer.wrap(new byte[4096]));
            try (Stream<Path> s = Files.list(out)) {
                Path tmp = s.filter(p -> p.getFileName().toString().startsWith("." + PeftAdapter.WEIGHTS + ".")).findFirst().orElseThrow();
                Files.copy(tmp, held);
                Files.writeString(dir.resolve("held.name"), tmp.getFileName().toString());
            }
        });
        Files.delete(out.resolve(PeftAdapter.WEIGHTS));
        Path orphan = out.resolve(Files.readString(dir.resolve("held.name")));
        Files.move(held, orphan);
        assertEquals(PeftAdapter.WEIGHTS, AtomicFiles.targetOfTemporary(orphan.getFileName().toString()));
        Path unfinishedCheckpoint = Files.createDirectories(out.resolve(".checkpoint-6.tmp"));
        Files.write(unfinishedCheckpoint.resolve("parameters.safetensors"), new byte[100]);
        Path oldLossPng = Files.write(out.resolve(".loss.png.tmp"), new byte[10]);
        // what is not provably tenfold's stays
        Path[] userFiles = {out.resolve(".notes.txt.1f.tmp"), out.resolve("draft.tmp"), out.resolve(".model.safetensors.tmp"),
                out.resolve(".config.json.XYZ.tmp")};
        for (Path p : userFiles) Files.writeString(p, "mine");
        Files.createDirectories(out.resolve(".checkpoint-x.tmp"));

        try (LlamaModel m = TrainerTest.model(base)) {
            assertEquals(4, trainer(m, DATA, TrainerTest.plan(DATA.size(), 3), settings(3e-2, 0), out).train(true, null));
        }
        assertFalse(Files.exists(orphan));
        assertFalse(Files.exists(unfinishedCheckpoint));
        assertFalse(Files.exists(oldLossPng));
        for (Path p : userFiles) assertEquals("mine", Files.readString(p));
        assertTrue(Files.isDirectory(out.resolve(".checkpoint-x.tmp")));
        assertTrue(Files.exists(out.resolve(PeftAdapter.WEIGHTS)));
        try (Stream<Path> s = Files.list(out)) {
            List<String> names = s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".tmp")).sorted().toList();
            assertEquals(List.of(".checkpoint-x.tmp", ".config.json.XYZ.tmp", ".model.safetensors.tmp", ".notes.txt.1f.tmp", "draft.tmp"), names);
        }
    }

    @Test
    void aFailedCheckpointWriteLeavesNoTemporaryFolder() throws Exception {
        Path out = dir.resolve("failing-writer");
        try (LlamaModel m = TrainerTest.model(base)) {
            Run t = Run.of(m, DATA, TrainerTest.plan(DATA.size(), 3), settings(3e-2, 0), out, (folder, model) -> {
                PeftAdapter.save(folder, model);
                if (!folder.equals(out)) throw new IOException("disk full");
            });
            IOException e = assertThrows(IOException.class, () -> t.train(false, null));
            assertEquals("disk full", e.getMessage());
        }
        try (Stream<Path> s = Files.list(out)) {
            assertEquals(List.of("metrics.jsonl"), s.map(p -> p.getFileName().toString()).toList());
        }
    }

    @Test
    void finishedRunsRecordWhatTheyWereStartedWith() throws Exception {
        Path out = dir.resolve("recorded");
        try (LlamaModel m = TrainerTest.model(base)) {
            trainer(m, DATA, TrainerTest.plan(DATA.size(), 3), settings(3e-2, 5), out).train(false, null);
        }
        TrainerState s = TrainerState.read(out.resolve("trainer_state.json"));
        assertEquals(9, s.step());
        assertEquals(9, s.totalSteps());
        assertEquals(3, s.stepsPerEpoch());
        // every value read back bit-identical (checkpoint frequency and count are not recorded)
        assertEquals(TrainingSettings.defaults().lr(3e-2).warmupSteps(2).epochs(3).seed(5), s.settings());
        assertEquals(10000.0, s.ropeTheta());
        assertEquals(List.of("bf16"), s.frozenWeights());
        assertEquals(List.of(2f), s.loraScales());
        assertEquals(List.of(0.1f), s.loraDropouts());
        assertEquals(8, s.examples());
        assertEquals(TrainerState.dataSha256(DATA), s.dataSha256());
        assertEquals(TrainerState.batchPlanSha256(TrainerTest.plan(DATA.size(), 3), 3, 9), s.batchPlanSha256());
        assertEquals(16, s.parameters().size());
        assertArrayEquals(new long[] {8, 32}, s.parameters().get("model.layers.1.self_attn.o_proj.lora_A.weight"));
        // the hashes see a change of one example's positions, and of the batches
        List<Trainer.Example> changed = new ArrayList<>(DATA);
        Trainer.Example e = DATA.get(7);
        changed.set(7, new Trainer.Example(e.ids(), e.targets(), java.util.stream.IntStream.range(1, e.ids().length + 1).toArray()));
        assertNotEquals(s.dataSha256(), TrainerState.dataSha256(changed));
        assertNotEquals(s.batchPlanSha256(), TrainerState.batchPlanSha256(TrainerTest.plan(DATA.size(), 4), 3, 9));
    }
}
