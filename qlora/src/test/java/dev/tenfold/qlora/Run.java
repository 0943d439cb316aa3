package dev.tenfold.qlora;

import dev.tenfold.llama.LlamaModel;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** A trainer and the folder its run writes, as the CLI sets them up: a {@link RunFolder} and a listener. */
record Run(Trainer trainer, Path out, Trainer.OutputWriter writer) {
    static Run of(LlamaModel model, List<Trainer.Example> data, Trainer.BatchPlan plan, TrainingSettings settings, Path out) {
        return of(model, data, plan, settings, out, null);
    }

    static Run of(LlamaModel model, List<Trainer.Example> data, Trainer.BatchPlan plan, TrainingSettings settings, Path out,
                  Trainer.OutputWriter writer) {
        return new Run(new Trainer(model, settings, data, plan), out, writer);
    }

    /** Trains (once per Run) into out, resuming its newest checkpoint or not; returns the step it started from. */
    int train(boolean resume, Trainer.Listener listener) throws IOException {
        RunFolder folder = resume ? RunFolder.resume(out) : RunFolder.create(out);
        if (writer != null) folder.output(writer);
        trainer.addListener(folder);
        if (listener != null) trainer.addListener(listener);
        return trainer.fit();
    }

    int totalSteps() { return trainer.totalSteps(); }
}
