package dev.tenfold.tools;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code tenfold} command line. The launcher handles build, test and bench itself (they need Maven or JMH). */
@Command(name = "tenfold", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Extends a Llama-3 model's context window by QLoRA fine-tuning, in pure Java.",
        subcommands = {
            TokenizeCommand.class,
            GenerateCommand.class,
            EvalCommand.class,
            TrainCommand.class,
            MergeCommand.class,
            QuantizeCommand.class,
            InitCommand.class,
            DataCommand.class,
            DoctorCommand.class,
            dev.tenfold.tools.demo.DemoCommand.class,
            Main.BuildCommand.class,
            Main.TestCommand.class,
            Main.BenchCommand.class,
            Main.BundleCommand.class,
            CommandLine.HelpCommand.class,
        })
public final class Main implements Runnable {

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs one command and returns its exit code (0 ok, 1 failed, 2 bad usage). */
    public static int run(String... args) {
        return new CommandLine(new Main())
                .setExecutionExceptionHandler((e, cmd, parseResult) -> {
                    // Bad input is reported as one clear line, not a stack trace.
                    cmd.getErr().println("tenfold " + cmd.getCommandName() + ": " + messageOf(e));
                    if (System.getenv("TENFOLD_DEBUG") != null) e.printStackTrace(cmd.getErr());
                    return 1;
                })
                .execute(args);
    }

    static String messageOf(Throwable e) {
        String m = e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m;
    }

    @Override
    public void run() {
        new CommandLine(this).usage(System.err);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"tenfold " + (v == null ? "0.1.0-SNAPSHOT" : v) + " on Java " + Runtime.version()};
        }
    }

    @Command(name = "build", description = "Build every module (Maven, tests skipped). Run through ./tenfold.")
    static final class BuildCommand implements Runnable {
        @Override public void run() { launcherOnly("build"); }
    }

    @Command(name = "test", description = "Run the whole test suite (what CI runs). Run through ./tenfold.")
    static final class TestCommand implements Runnable {
        @Override public void run() { launcherOnly("test"); }
    }

    @Command(name = "bench", description = "Run the JMH benchmarks, e.g. './tenfold bench MatmulBench'; 'report' (CPU) and 'gpu-report' (GPU) write benchmark reports. Run through ./tenfold.")
    static final class BenchCommand implements Runnable {
        @Override public void run() { launcherOnly("bench"); }
    }

    @Command(name = "bundle", description = "Write .gpu/ (a Java runtime, the jars, the tests and the GPU benchmarks with their PyTorch peers) for GPU machines without Java. Run through ./tenfold.")
    static final class BundleCommand implements Runnable {
        @Override public void run() { launcherOnly("bundle"); }
    }

    private static void launcherOnly(String name) {
        throw new CommandLine.ParameterException(new CommandLine(new Main()),
                "'" + name + "' is handled by the ./tenfold launcher at the repository root; run ./tenfold " + name);
    }
}
