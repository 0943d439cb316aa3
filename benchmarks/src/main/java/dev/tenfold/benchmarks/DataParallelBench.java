package dev.tenfold.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.collective.MpiCommunicator;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.TrainingSettings;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The cost of data parallelism on the CPU: trainer steps on the benchmarks' random model (LoRA r 32
 * on q,k,v,o and the trained embedding, as the recipe) over batches of 4 sequences of 512, 384,
 * 256 and 128 tokens, alone or as the ranks of an MPI world (run under mpirun). Rank 0 prints one
 * JSON object: per step the seconds, the tokens/s of the whole batch, the all-reduce's seconds (rank
 * 0's, waiting for the slowest rank included) and each rank's seconds of computing; the first step
 * (warm-up) is left out of the means; then three all-reduces of the gradients' F64 sums alone,
 * each after a barrier.
 *
 * <pre>java ... DataParallelBench STEPS           (one process)
 * mpirun -n 2 java ... DataParallelBench STEPS    (two ranks)</pre>
 */
public final class DataParallelBench {
    public static void main(String[] args) throws Exception {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 4;
        boolean mpi = System.getenv("OMPI_COMM_WORLD_SIZE") != null;
        Communicator comm = mpi ? MpiCommunicator.world(Duration.ofMinutes(10)) : Communicator.solo();
        int[] lengths = {512, 384, 256, 128};
        SplittableRandom rng = new SplittableRandom(7);
        List<Trainer.Example> batch = new ArrayList<>();
        try (LlamaModel model = RandomLlama.small(1)) {
            int vocab = model.config().vocabSize();
            for (int t : lengths) {
                int[] ids = new int[t], targets = new int[t];
                for (int i = 0; i < t; i++) {
                    ids[i] = rng.nextInt(vocab);
                    targets[i] = rng.nextInt(vocab);
                }
                batch.add(new Trainer.Example(ids, targets, null));
            }
            Lora.attach(model, LoraConfig.of(32, 16f).targets("q,k,v,o").trainEmbeddings(true).seed(3));
            long trainable = model.parameters().stream().mapToLong(p -> p.value().numel()).sum();
            Trainer trainer = new Trainer(model, TrainingSettings.defaults().lr(1e-4).maxSteps(steps)).dataParallel(comm);
            ObjectNode report = new ObjectMapper().createObjectNode();
            report.put("config", RandomLlama.SMALL_DESCRIPTION + ", LoRA r 32 on q,k,v,o + trained embedding");
            String pool = System.getProperty("java.util.concurrent.ForkJoinPool.common.parallelism");
            report.put("ranks", comm.size()).put("threads_per_rank", pool != null ? Integer.parseInt(pool) + 1 : Runtime.getRuntime().availableProcessors());
            report.put("trainable_parameters", trainable).put("allreduce_bytes_per_step", comm.size() > 1 ? 8 * trainable : 0);
            ArrayNode rows = report.putArray("steps");
            double sumSec = 0, sumComm = 0;
            long tokens = 0;
            for (int s = 0; s < steps; s++) {
                Trainer.StepMetrics m = trainer.step(batch);
                ObjectNode row = rows.addObject().put("step", m.step()).put("seconds", m.seconds()).put("tokens_per_s", m.tokens() / m.seconds())
                        .put("comm_seconds", m.communicationSeconds()).put("loss", m.loss());
                ArrayNode per = row.putArray("rank_seconds");
                for (double d : m.rankSeconds()) per.add(d);
                if (s > 0) {
                    sumSec += m.seconds();
                    sumComm += m.communicationSeconds();
                    tokens += m.tokens();
                }
            }
            if (steps > 1) {
                report.put("mean_tokens_per_s", tokens / sumSec).put("mean_step_seconds", sumSec / (steps - 1))
                        .put("mean_comm_seconds", sumComm / (steps - 1)).put("comm_share", sumComm / sumSec);
            }
            if (comm.size() > 1) { // the all-reduce alone, after a barrier: what the step's waiting for the slowest rank hides
                try (dev.tenfold.engine.Tensor sums = dev.tenfold.engine.Tensor.allocate(dev.tenfold.engine.DType.F64, trainable)) {
                    ArrayNode alone = report.putArray("allreduce_alone_seconds");
                    for (int i = 0; i < 3; i++) {
                        comm.barrier();
                        long t0 = System.nanoTime();
                        comm.allReduceSum(List.of(sums));
                        alone.add((System.nanoTime() - t0) / 1e9);
                    }
                }
            }
            float[] first = model.parameters().get(0).value().toFloatArray();
            report.put("first_parameter_checksum", java.util.Arrays.hashCode(first));
            if (comm.rank() == 0) System.out.println(report.toPrettyString());
        } finally {
            comm.close();
        }
    }
}
