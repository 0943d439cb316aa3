package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Every numeric flag of every command has a range, checked before the command runs: a value outside
 * it (or NaN, or an infinity, or a count that would overflow) is refused with exit code 2 and one
 * line that names the flag and the range. No model is needed: nothing is read before the check.
 */
class FlagsTest {
    static final String M = "no-such-model";

    /** The shortest valid command lines, to which one bad flag is added. */
    static final String[] GENERATE = {"generate", "--model", M, "--prompt", "x"};
    static final String[] TRAIN = {"train", "--model", M, "--data", "d.jsonl", "--output", "o"};
    static final String[] PPL = {"eval", "ppl", "--model", M, "--data", "d.jsonl"};
    static final String[] PASSKEY = {"eval", "passkey", "--model", M};
    static final String[] NIAH = {"eval", "niah", "--model", M};
    static final String[] RULER = {"eval", "ruler-niah", "--model", M, "--variant", "multikey"};
    static final String[] TOPICS = {"eval", "topics", "--model", M, "--topics", "t.txt"};
    static final String[] SYNTH = {"data", "synth", "--task", "passkey", "--model", M, "--lengths", "1k", "--count", "1", "--output", "o.jsonl"};
    static final String[] SYNTH_UNCOUNTED = {"data", "synth", "--task", "passkey", "--model", M, "--lengths", "1k", "--output", "o.jsonl"};
    static final String[] DEMO = {"demo"};
    static final String[] DEMO_MODEL = {"demo", "model", "--output", "o"};

    static Stream<Arguments> badValues() {
        List<Arguments> rows = new ArrayList<>();
        // command, flag, bad value, the range the message must give
        bad(rows, GENERATE, "--max-new-tokens", "0", "an integer in [1, 16777216]");
        bad(rows, GENERATE, "--max-new-tokens", "100000000", "an integer in [1, 16777216]");
        bad(rows, GENERATE, "--max-new-tokens", "-5", "an integer in [1, 16777216]");
        bad(rows, GENERATE, "--temperature", "NaN", "a number in [0, 100]");
        bad(rows, GENERATE, "--temperature", "-1", "a number in [0, 100]");
        bad(rows, GENERATE, "--top-p", "0", "a number in (0, 1]");
        bad(rows, GENERATE, "--top-p", "1.5", "a number in (0, 1]");
        bad(rows, GENERATE, "--rope-theta", "0", "a finite number > 1");
        bad(rows, GENERATE, "--rope-theta", "1e400", "a finite number > 1");
        bad(rows, GENERATE, "--rope-theta", "-Infinity", "a finite number > 1");
        bad(rows, TRAIN, "--lr", "Infinity", "a finite number > 0");
        bad(rows, TRAIN, "--lr", "NaN", "a finite number > 0");
        bad(rows, TRAIN, "--lr", "0", "a finite number > 0");
        bad(rows, TRAIN, "--lr", "-1e-4", "a finite number > 0");
        bad(rows, TRAIN, "--lora-alpha", "NaN", "a finite number > 0");
        bad(rows, TRAIN, "--lora-alpha", "0", "a finite number > 0");
        bad(rows, TRAIN, "--lora-alpha", "1e39", "a finite number > 0"); // Infinity as a float
        bad(rows, TRAIN, "--lora-r", "0", "an integer in [1, 65536]");
        bad(rows, TRAIN, "--lora-r", "100000", "an integer in [1, 65536]");
        bad(rows, TRAIN, "--lora-dropout", "1", "a number in [0, 1)");
        bad(rows, TRAIN, "--lora-dropout", "-0.1", "a number in [0, 1)");
        bad(rows, TRAIN, "--adam-beta1", "1", "a number in [0, 1)");
        bad(rows, TRAIN, "--adam-beta2", "1", "a number in [0, 1)");
        bad(rows, TRAIN, "--adam-beta2", "NaN", "a number in [0, 1)");
        bad(rows, TRAIN, "--adam-eps", "0", "a number in (0, 1]");
        bad(rows, TRAIN, "--adam-eps", "1e-50", "a number in (0, 1]"); // 0 as a float
        bad(rows, TRAIN, "--weight-decay", "-0.01", "a finite number >= 0");
        bad(rows, TRAIN, "--weight-decay", "Infinity", "a finite number >= 0");
        bad(rows, TRAIN, "--max-grad-norm", "-1", "a finite number >= 0");
        bad(rows, TRAIN, "--max-grad-norm", "NaN", "a finite number >= 0");
        bad(rows, TRAIN, "--epochs", "0", "an integer in [1, 1000000]");
        bad(rows, TRAIN, "--epochs", "2000000000", "an integer in [1, 1000000]");
        bad(rows, TRAIN, "--max-steps", "0", "an integer in [1, 2147483647]");
        bad(rows, TRAIN, "--max-steps", "-3", "an integer in [1, 2147483647]");
        bad(rows, TRAIN, "--warmup-steps", "-1", "an integer in [0, 2147483647]");
        bad(rows, TRAIN, "--batch-size", "0", "an integer in [1, 2147483647]");
        bad(rows, TRAIN, "--max-length", "1", "an integer in [2, 16777216]");
        bad(rows, TRAIN, "--max-length", "20000000", "an integer in [2, 16777216]");
        bad(rows, TRAIN, "--save-every", "-1", "an integer in [0, 2147483647]");
        bad(rows, TRAIN, "--rope-theta", "NaN", "a finite number > 1");
        bad(rows, PPL, "--max-length", "1", "an integer in [2, 16777216]");
        bad(rows, PPL, "--stride", "0", "an integer in [1, 16777216]");
        bad(rows, PASSKEY, "--lengths", "0", "an integer in [1, 16777216]");
        bad(rows, PASSKEY, "--lengths", "256,99999999", "an integer in [1, 16777216]");
        bad(rows, PASSKEY, "--trials", "0", "an integer in [1, 1000000]");
        bad(rows, PASSKEY, "--max-new-tokens", "0", "an integer in [1, 16777216]");
        bad(rows, NIAH, "--lengths", "-1024", "an integer in [1, 16777216]");
        bad(rows, NIAH, "--depths", "50,101", "a number in [0, 100]");
        bad(rows, NIAH, "--depths", "NaN", "a number in [0, 100]");
        bad(rows, NIAH, "--depth-count", "0", "an integer in [1, 1000]");
        bad(rows, NIAH, "--max-new-tokens", "0", "an integer in [1, 16777216]");
        bad(rows, RULER, "--lengths", "0", "an integer in [1, 16777216]");
        bad(rows, RULER, "--trials", "-1", "an integer in [1, 1000000]");
        bad(rows, RULER, "--needles", "0", "an integer in [1, 1000]");
        bad(rows, RULER, "--queries", "0", "an integer in [1, 1000]");
        bad(rows, RULER, "--max-new-tokens", "0", "an integer in [1, 16777216]");
        bad(rows, TOPICS, "--counts", "5,0", "an integer in [1, 100000]");
        bad(rows, TOPICS, "--trials", "0", "an integer in [1, 1000000]");
        bad(rows, TOPICS, "--sentences", "-1", "an integer in [0, 1000]");
        bad(rows, TOPICS, "--max-new-tokens", "0", "an integer in [1, 16777216]");
        bad(rows, SYNTH_UNCOUNTED, "--count", "0", "an integer in [1, 10000000]");
        bad(rows, SYNTH, "--tolerance", "0", "a number in (0, 0.5)");
        bad(rows, SYNTH, "--tolerance", "0.5", "a number in (0, 0.5)");
        bad(rows, DEMO, "--steps", "0", "an integer in [1, 10000000]");
        bad(rows, DEMO, "--batch-size", "0", "an integer in [1, 100000]");
        bad(rows, DEMO, "--lr", "Infinity", "a finite number > 0");
        bad(rows, DEMO, "--lora-r", "0", "an integer in [1, 65536]");
        bad(rows, DEMO, "--rope-theta-multiplier", "0", "a finite number > 0");
        bad(rows, DEMO, "--train-length", "1", "an integer in [2, 16777216]");
        bad(rows, DEMO, "--keys", "0", "an integer in [1, 1000]");
        bad(rows, DEMO, "--short-share", "1.5", "a number in [0, 1]");
        bad(rows, DEMO_MODEL, "--batch-size", "0", "an integer in [1, 100000]");
        bad(rows, DEMO_MODEL, "--lr", "NaN", "a finite number > 0");
        bad(rows, DEMO_MODEL, "--steps-scale", "0", "a number in (0, 1000]");
        return rows.stream();
    }

    private static void bad(List<Arguments> rows, String[] base, String flag, String value, String range) {
        rows.add(Arguments.of(base, flag, value, range));
    }

    @ParameterizedTest(name = "{1} {2}")
    @MethodSource("badValues")
    void aValueOutsideItsRangeIsOneLineNamingTheFlagAndTheRange(String[] base, String flag, String value, String range) {
        List<String> args = new ArrayList<>(List.of(base));
        args.addAll(List.of(flag, value));
        CliTest.Result r = CliTest.run("", args.toArray(String[]::new));
        assertEquals(2, r.code(), r.err());
        String command = "tenfold " + String.join(" ", base[0].equals("eval") || base[0].equals("data")
                || (base[0].equals("demo") && base.length > 1 && base[1].equals("model")) ? List.of(base[0], base[1]) : List.of(base[0]));
        String line = r.err().strip();
        assertEquals(1, line.lines().count(), line);
        assertTrue(line.startsWith(command + ": " + flag + " must be " + range + ", got "), line);
        assertEquals("", r.out());
    }

    @Test
    void valuesAtTheEdgesOfTheirRangesAreAccepted() {
        // they pass the check and the command starts (and then finds no model: exit 1, not 2)
        String[][] edges = {
            {"--lora-dropout", "0"}, {"--adam-beta2", "0.999999"}, {"--adam-eps", "1e-30"}, {"--max-grad-norm", "0"},
            {"--epochs", "1000000"}, {"--max-length", "16777216"}, {"--lr", "1e-10"}, {"--warmup-steps", "0"},
        };
        for (String[] e : edges) {
            List<String> args = new ArrayList<>(List.of(TRAIN));
            args.addAll(List.of(e));
            CliTest.Result r = CliTest.run("", args.toArray(String[]::new));
            assertEquals(1, r.code(), e[0] + " " + e[1] + ": " + r.err());
            assertTrue(r.err().contains(M + ": not a folder"), r.err());
        }
        CliTest.Result r = CliTest.run("", NIAH[0], NIAH[1], NIAH[2], NIAH[3], "--depths", "0,100", "--lengths", "1,16777000",
                "--output", "nonexistent-output-folder-of-this-test/x");
        assertEquals(1, r.code(), r.err());
    }

    @Test
    void helpIsAcceptedWhateverTheOtherFlagsSay() {
        CliTest.Result r = CliTest.run("", "train", "--lr", "Infinity", "--help");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("--adam-beta2"), r.out());
    }

    /** Options that are numbers but take every value of their type (seeds), or have their own check. */
    static final Set<String> UNBOUNDED = Set.of("--seed", "--micro-batch-size");

    @Test
    void everyNumericFlagOfEveryCommandHasARange() {
        List<String> missing = new ArrayList<>();
        walk(new CommandLine(new Main()), cmd -> {
            for (OptionSpec o : cmd.getCommandSpec().options()) {
                if (!(o.userObject() instanceof Field f) || UNBOUNDED.contains(o.longestName())) continue;
                Class<?> t = f.getType().isArray() ? f.getType().getComponentType() : f.getType();
                boolean numeric = t.isPrimitive() ? t != boolean.class : Number.class.isAssignableFrom(t);
                if (numeric && f.getAnnotation(Range.class) == null) missing.add(cmd.getCommandSpec().qualifiedName() + " " + o.longestName());
            }
        });
        assertEquals(List.of(), missing, "numeric options without a @Range");
    }

    @Test
    void everyCommandsHelpPrintsCleanly() {
        List<List<String>> paths = new ArrayList<>();
        walk(new CommandLine(new Main()), cmd -> {
            List<String> path = new ArrayList<>();
            for (CommandLine c = cmd; c.getParent() != null; c = c.getParent()) path.addFirst(c.getCommandName());
            paths.add(path);
        });
        assertTrue(paths.size() > 15, paths.toString());
        for (List<String> path : paths) {
            List<String> args = new ArrayList<>(path);
            args.add("--help");
            CliTest.Result r = CliTest.run("", args.toArray(String[]::new));
            assertEquals(0, r.code(), path + ": " + r.err());
            assertTrue(r.out().startsWith("Usage: tenfold"), path + ": " + r.out());
            assertEquals("", r.err(), path + " --help wrote to stderr (picocli warnings?)");
        }
    }

    @Test
    void aCommandGroupWithoutACommandShowsItsUsageAndExits2() {
        for (String[] group : new String[][] {{}, {"data"}, {"eval"}}) {
            CliTest.Result r = CliTest.run("", group);
            assertEquals(2, r.code(), String.join(" ", group));
            assertTrue(r.err().contains("Usage: tenfold") && r.err().contains("Commands:"), r.err());
        }
    }

    @Test
    void theLauncherCommandsGiveHelpAndOtherwisePointToTheLauncher() {
        for (String c : new String[] {"build", "test", "bench", "bundle"}) {
            CliTest.Result help = CliTest.run("", c, "--help");
            assertEquals(0, help.code(), c + ": " + help.err());
            assertTrue(help.out().contains("./tenfold"), help.out());
            CliTest.Result run = CliTest.run("", c);
            assertEquals(2, run.code());
            assertTrue(run.err().startsWith("tenfold " + c + ": '" + c + "' is handled by the ./tenfold launcher"), run.err());
        }
    }

    @Test
    void tokenizeRefusesTheModelFlagsItWouldIgnore() {
        for (String[] f : new String[][] {{"--device", "cuda"}, {"--rope-theta", "1e6"}, {"--adapter", "a"}, {"--rope-scaling", "none"}}) {
            CliTest.Result r = CliTest.run("x", "tokenize", "--model", M, f[0], f[1]);
            assertEquals(2, r.code(), f[0]);
            assertTrue(r.err().startsWith("tenfold tokenize: Unknown option"), r.err());
        }
    }

    private static void walk(CommandLine cmd, java.util.function.Consumer<CommandLine> visit) {
        visit.accept(cmd);
        for (CommandLine sub : cmd.getSubcommands().values()) {
            if (sub.getCommandSpec().userObject() instanceof CommandLine.HelpCommand) continue;
            walk(sub, visit);
        }
    }
}
