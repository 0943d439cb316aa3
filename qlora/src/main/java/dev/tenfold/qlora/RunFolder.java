package dev.tenfold.qlora;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.engine.io.SafeTensorsFile;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The folder of a training run, kept by a {@link Trainer.Listener}: metrics.jsonl (one line per
 * step), checkpoint-N folders (a usable output, the exact F32 parameters and AdamW state, and
 * trainer_state.json: what the run was started with) every {@link TrainingSettings#saveEvery}
 * steps, the final output (a PEFT adapter unless {@link #output} says otherwise), and last
 * trainer_state.json, which marks the run complete.
 *
 * <p>{@link #resume} continues a run from its newest checkpoint, bit-identical to an uninterrupted
 * run on the CPU, after checking that this run is the one that wrote it (settings, model, data,
 * batch plan, trainable parameters). Either way, temporaries left by an interrupted write are
 * removed first, and no file of the folder is written with non-finite parameters.
 */
public final class RunFolder implements Trainer.Listener {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The file of one JSON line per step. */
    public static final String METRICS = "metrics.jsonl";

    private final Path dir;
    private final boolean resume;
    private Trainer.OutputWriter writer = PeftAdapter::save;
    private Trainer trainer;
    private double lastLoss = Double.NaN, lastNorm = Double.NaN;

    private RunFolder(Path dir, boolean resume) {
        this.dir = dir;
        this.resume = resume;
    }

    /** A new run in {@code dir}: a new or empty folder, or one whose earlier run is complete (its output is replaced). */
    public static RunFolder create(Path dir) { return new RunFolder(dir, false); }

    /** The run in {@code dir}, continued from its newest checkpoint. */
    public static RunFolder resume(Path dir) { return new RunFolder(dir, true); }

    /** What the run writes as its output and in every checkpoint (default: {@link PeftAdapter#save}). */
    public RunFolder output(Trainer.OutputWriter w) {
        writer = w;
        return this;
    }

    public Path dir() { return dir; }

    /**
     * The checks made when the run starts that need only the folder, for a caller to make before it
     * loads a model: to resume, the folder must exist and hold a checkpoint of a run that is not
     * complete; to start afresh, it must not hold an earlier run's checkpoints (which the new run's
     * would mix with). Throws IllegalArgumentException naming the folder and what is wrong.
     */
    public static void check(Path dir, boolean resume) throws IOException {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException(dir + " is not a folder" + (resume ? ": nothing to resume" : ""));
        }
        List<Path> checkpoints = checkpoints(dir);
        if (resume) {
            if (!Files.exists(dir)) throw new IllegalArgumentException(dir + " does not exist: nothing to resume");
            Path finished = dir.resolve(TrainerState.FILE);
            if (Files.exists(finished)) {
                TrainerState done = TrainerState.read(finished);
                throw new IllegalArgumentException(dir + ": the run there is complete (step " + done.step() + " of " + done.totalSteps()
                        + ", its output written): nothing to resume");
            }
            if (checkpoints.isEmpty()) {
                throw new IllegalArgumentException(dir + " holds no checkpoint (checkpoint-N folder) to resume from: nothing to resume");
            }
        } else if (!checkpoints.isEmpty()) {
            throw new IllegalArgumentException(dir + " holds checkpoints of an earlier run (" + checkpoints.get(checkpoints.size() - 1).getFileName()
                    + "): resume that run, or train into another folder");
        }
    }

    // ------------------------------------------------------------------ the listener

    @Override
    public void onStart(Trainer t) throws IOException {
        trainer = t;
        if (Files.isDirectory(dir)) removeOrphanedTemporaries();
        check(dir, resume);
        Files.createDirectories(dir);
        if (resume) t.resumeAt(restoreNewestCheckpoint());
        else Files.deleteIfExists(dir.resolve(TrainerState.FILE)); // an earlier finished run's, whose output this run replaces
        truncateMetrics(t.completedSteps());
    }

    @Override
    public void onStep(Trainer.StepMetrics s) throws IOException {
        ObjectNode line = JSON.createObjectNode().put("step", s.step()).put("epoch", s.epoch()).put("loss", s.loss())
                .put("lr", s.lr()).put("grad_norm", s.gradNorm()).put("tokens", s.tokens()).put("scored_tokens", s.scoredTokens())
                .put("seconds", s.seconds());
        if (s.ranks() > 1) { // data parallel: each rank's seconds of computing, and rank 0's in the all-reduce
            line.put("ranks", s.ranks()).put("comm_seconds", s.communicationSeconds());
            var perRank = line.putArray("rank_seconds");
            for (double d : s.rankSeconds()) perRank.add(d);
        }
        if (s.diverged()) line.put("diverged", true); // the step's values, its update not applied
        Files.writeString(dir.resolve(METRICS), line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        if (s.diverged()) throw new TrainingDivergedException(s.step(), s.totalSteps(), s.loss(), s.gradNorm(), null, newestCheckpoint());
        lastLoss = s.loss();
        lastNorm = s.gradNorm();
        int every = trainer.settings().saveEvery();
        if (every > 0 && s.step() % every == 0 && s.step() < s.totalSteps()) {
            requireFiniteParameters(s.step(), s.loss(), s.gradNorm());
            saveCheckpoint(s.step());
        }
    }

    /** The output, then trainer_state.json: the run is complete. */
    @Override
    public void onEnd(Trainer t) throws IOException {
        requireFiniteParameters(t.totalSteps(), lastLoss, lastNorm);
        writer.write(dir, t.model());
        AtomicFiles.write(dir.resolve(TrainerState.FILE), t.state().atStep(t.totalSteps()).toJson()); // last: the run is complete
    }

    /** Refuses to write parameters that an update made non-finite (possible with a huge rate even from finite gradients). */
    private void requireFiniteParameters(int step, double loss, double norm) throws IOException {
        LlamaModel model = trainer.model();
        for (Parameter p : trainer.parameters()) {
            if (!Double.isFinite(model.backend().sumOfSquares(p.value()))) {
                throw new TrainingDivergedException(step, trainer.totalSteps(), loss, norm, p.name(), newestCheckpoint());
            }
        }
    }

    // ------------------------------------------------------------------ checkpoints

    /**
     * Writes checkpoint-STEP atomically: the output form (usable as it is), the exact F32 parameters
     * and optimizer state, and trainer_state.json; keeps the newest few. A failure removes the
     * unfinished folder.
     */
    void saveCheckpoint(int step) throws IOException {
        Path target = dir.resolve("checkpoint-" + step);
        Path tmp = dir.resolve(".checkpoint-" + step + ".tmp");
        deleteTree(tmp);
        try {
            Files.createDirectories(tmp);
            writeCheckpoint(tmp, step);
            deleteTree(target);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (Throwable t) {
            try {
                deleteTree(tmp);
            } catch (IOException e) {
                t.addSuppressed(e);
            }
            throw t;
        }
        List<Path> all = checkpoints(dir);
        for (int i = 0; i + trainer.settings().keepCheckpoints() < all.size(); i++) deleteTree(all.get(i));
    }

    private void writeCheckpoint(Path tmp, int step) throws IOException {
        writer.write(tmp, trainer.model());
        Backend b = trainer.model().backend();
        List<Parameter> params = trainer.parameters();
        List<Tensor> downloads = new ArrayList<>(); // host copies of device tensors (none on the host)
        try {
            Map<String, Tensor> values = new LinkedHashMap<>();
            for (Parameter p : params) values.put(p.name(), Transfers.onHost(b, p.value(), downloads));
            SafeTensorsWriter.write(tmp.resolve("parameters.safetensors"), values, Map.of());
        } finally {
            downloads.forEach(Tensor::close);
            downloads.clear();
        }
        try {
            Map<String, Tensor> state = new LinkedHashMap<>();
            for (int i = 0; i < params.size(); i++) {
                Tensor[] mv = trainer.moments(i);
                state.put(params.get(i).name() + ".exp_avg", Transfers.onHost(b, mv[0], downloads));
                state.put(params.get(i).name() + ".exp_avg_sq", Transfers.onHost(b, mv[1], downloads));
            }
            SafeTensorsWriter.write(tmp.resolve("optimizer.safetensors"), state, Map.of());
        } finally {
            downloads.forEach(Tensor::close);
        }
        Files.write(tmp.resolve(TrainerState.FILE), trainer.state().atStep(step).toJson());
    }

    /** Checkpoint folders in the run's folder, oldest first. */
    static List<Path> checkpoints(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().matches("checkpoint-\\d{1,9}") && Files.isDirectory(p))
                    .sorted(Comparator.comparingInt(RunFolder::checkpointStep))
                    .toList();
        }
    }

    private static int checkpointStep(Path dir) {
        return Integer.parseInt(dir.getFileName().toString().substring("checkpoint-".length()));
    }

    private Path newestCheckpoint() throws IOException {
        List<Path> all = checkpoints(dir);
        return all.isEmpty() ? null : all.get(all.size() - 1);
    }

    /**
     * Restores parameters and optimizer state from the newest checkpoint (there is one:
     * {@link #check}) and returns its step, after checking that its trainer_state.json is sound and
     * that this run is the one that wrote it.
     */
    private int restoreNewestCheckpoint() throws IOException {
        Path newest = newestCheckpoint();
        TrainerState saved = TrainerState.read(newest.resolve(TrainerState.FILE));
        if (saved.step() != checkpointStep(newest)) {
            throw new IllegalArgumentException(newest.resolve(TrainerState.FILE) + ": corrupt trainer state: step is " + saved.step() + " in folder "
                    + newest.getFileName());
        }
        List<String> differences = saved.differencesFrom(trainer.state());
        if (!differences.isEmpty()) {
            throw new IllegalArgumentException(newest + " was written by a different run: " + String.join("; ", differences)
                    + ". Resume with the data and settings it was started with");
        }
        for (String f : List.of("parameters.safetensors", "optimizer.safetensors")) {
            if (!Files.isRegularFile(newest.resolve(f))) throw new IllegalArgumentException(newest + ": checkpoint lacks " + f);
        }
        try (SafeTensorsFile values = SafeTensorsFile.open(newest.resolve("parameters.safetensors"));
             SafeTensorsFile opt = SafeTensorsFile.open(newest.resolve("optimizer.safetensors"))) {
            Backend b = trainer.model().backend();
            List<Parameter> params = trainer.parameters();
            for (int i = 0; i < params.size(); i++) {
                Parameter p = params.get(i);
                Tensor[] mv = trainer.moments(i);
                restore(b, values, p.name(), p.value(), newest);
                restore(b, opt, p.name() + ".exp_avg", mv[0], newest);
                restore(b, opt, p.name() + ".exp_avg_sq", mv[1], newest);
            }
        }
        return saved.step();
    }

    private static void restore(Backend b, SafeTensorsFile f, String name, Tensor dst, Path dir) {
        if (!f.has(name)) throw new IllegalArgumentException(dir + ": checkpoint lacks " + name + " (different training settings?)");
        Tensor src = f.tensor(name);
        if (src.dtype() != dst.dtype() || !Arrays.equals(src.shape(), dst.shape())) {
            throw new IllegalArgumentException(dir + ": " + name + " is " + src.describe() + ", this run needs " + dst.describe());
        }
        b.copy(src, dst); // uploads to a device
    }

    // ------------------------------------------------------------------ temporaries

    /**
     * Removes what interrupted writes left in the folder, and only that: unfinished checkpoint
     * folders (.checkpoint-N.tmp) and {@link AtomicFiles}' temporaries of the kinds of file a run
     * writes (".NAME.HEX.tmp" for a .safetensors, .json, .jsonl or .png NAME), which a kill leaves
     * behind (gigabytes with a trained embedding).
     */
    private void removeOrphanedTemporaries() throws IOException {
        List<Path> removed = new ArrayList<>();
        long bytes = 0;
        List<Path> entries;
        try (Stream<Path> s = Files.list(dir)) {
            entries = s.toList();
        }
        for (Path p : entries) {
            String name = p.getFileName().toString();
            if (name.matches("\\.checkpoint-\\d+\\.tmp") && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                bytes += treeSize(p);
                deleteTree(p);
                removed.add(p);
            } else if (isTemporaryOfOutput(name) && Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                bytes += Files.size(p);
                Files.delete(p);
                removed.add(p);
            }
        }
        if (!removed.isEmpty()) {
            System.err.printf("tenfold: removed %d unfinished temporar%s (%,d bytes) left in %s by an interrupted run%n", removed.size(),
                    removed.size() == 1 ? "y" : "ies", bytes, dir);
        }
    }

    static boolean isTemporaryOfOutput(String fileName) {
        if (fileName.equals(".loss.png.tmp")) return true; // the loss curve's own temporary before it wrote through AtomicFiles
        String target = AtomicFiles.targetOfTemporary(fileName);
        return target != null && target.matches("[^/\\\\]+\\.(safetensors|json|jsonl|png)");
    }

    private static long treeSize(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            long n = 0;
            for (Path p : s.toList()) if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) n += Files.size(p);
            return n;
        }
    }

    // ------------------------------------------------------------------ metrics

    /** Drops metric lines of steps after {@code step} (left by a killed run) so the file matches the resumed run. */
    private void truncateMetrics(int step) throws IOException {
        Path file = dir.resolve(METRICS);
        if (!Files.exists(file)) return;
        List<String> keep = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            try {
                if (!line.isBlank() && JSON.readTree(line).path("step").asInt(Integer.MAX_VALUE) <= step) keep.add(line);
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                // a line cut by a kill: drop it
            }
        }
        AtomicFiles.write(file, (keep.isEmpty() ? "" : String.join("\n", keep) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
        }
    }
}
