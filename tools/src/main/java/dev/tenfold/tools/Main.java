package dev.tenfold.tools;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** The {@code tenfold} command line. The launcher handles build, test, bench and bundle itself (they need Maven or JMH). */
@Command(name = "tenfold", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Extends a Llama-3 model's context window by QLoRA fine-tuning, in pure Java.",
        subcommands = {
            TokenizeCommand.class,
            GenerateCommand.class,
            EvalCommand.class,
            TrainCommand.class,
            MergeCommand.class,
            ExportCommand.class,
            QuantizeCommand.class,
            InitCommand.class,
            DataCommand.class,
            PlanCommand.class,
            DoctorCommand.class,
            dev.tenfold.tools.demo.DemoCommand.class,
            Main.BuildCommand.class,
            Main.TestCommand.class,
            Main.BenchCommand.class,
            Main.BundleCommand.class,
            CommandLine.HelpCommand.class,
        })
public final class Main implements Callable<Integer> {
    @Spec CommandSpec spec;

    /** Exit codes: the command did its work; it failed (bad input, a failed run); it was called wrongly (a flag, a missing command). */
    static final int OK = 0, FAILED = 1, USAGE = 2;

    public static void main(String[] args) {
        restoreStderr();
        System.exit(run(args));
    }

    /** Runs one command and returns its exit code (0 ok, 1 failed, 2 bad usage). */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.getSubcommands().get("train").getCommandSpec().usageMessage().description(TrainCommand.description());
        return cli
                // a flag outside its @Range is a usage error, found before the command starts
                .setExecutionStrategy(parsed -> {
                    if (!helpRequested(parsed)) Flags.checkRanges(parsed);
                    return new CommandLine.RunLast().execute(parsed);
                })
                .setParameterExceptionHandler((e, args1) -> {
                    CommandLine cmd = e.getCommandLine();
                    String hint = "";
                    if (e instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()) {
                        hint = " (did you mean " + String.join(" or ", u.getSuggestions()) + "?)";
                    }
                    cmd.getErr().println(prefix(cmd) + e.getMessage() + hint);
                    return USAGE;
                })
                .setExecutionExceptionHandler((e, cmd, parseResult) -> {
                    // Bad input is reported as one clear line, not a stack trace.
                    cmd.getErr().println(prefix(cmd) + messageOf(e));
                    if (System.getenv("TENFOLD_DEBUG") != null) e.printStackTrace(cmd.getErr());
                    return e instanceof Flags.BadFlag ? USAGE : FAILED;
                })
                .execute(args);
    }

    /** "tenfold eval ppl: ", the command as it was typed. */
    private static String prefix(CommandLine cmd) {
        return cmd.getCommandSpec().qualifiedName() + ": ";
    }

    private static boolean helpRequested(CommandLine.ParseResult parsed) {
        for (CommandLine.ParseResult p = parsed; p != null; p = p.subcommand()) {
            if (p.isUsageHelpRequested() || p.isVersionHelpRequested()) return true;
        }
        return false;
    }

    static String messageOf(Throwable e) {
        String m = e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m;
    }

    /** A command group run without one of its commands: its usage on stderr, and the usage-error code. */
    static int chooseACommand(CommandSpec group) {
        group.commandLine().usage(group.commandLine().getErr());
        return USAGE;
    }

    @Override
    public Integer call() {
        return chooseACommand(spec);
    }

    /**
     * The JVM announces the incubating Vector API ("WARNING: Using incubator modules") on stderr
     * before main runs, and no flag silences it. The launcher therefore starts the JVM with stderr
     * through a filter that drops that line, keeping the real stderr as another descriptor, named
     * by -Dtenfold.stderr.fd. Pointing stderr (descriptor 2) back at it here sends everything
     * after start-up straight out, in order, with nothing left in the filter when the JVM exits.
     * If that fails, stderr keeps flowing through the filter, which passes everything else on.
     */
    private static void restoreStderr() {
        String fd = System.getProperty("tenfold.stderr.fd");
        if (fd == null) return;
        try {
            int saved = Integer.parseInt(fd);
            Linker linker = Linker.nativeLinker();
            var intOfInts = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT);
            MethodHandle dup2 = linker.downcallHandle(linker.defaultLookup().find("dup2").orElseThrow(), intOfInts);
            MethodHandle close = linker.downcallHandle(linker.defaultLookup().find("close").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            System.err.flush();
            if ((int) dup2.invokeExact(saved, 2) == 2) {
                int ignored = (int) close.invokeExact(saved);
            }
        } catch (Throwable e) {
            // stderr stays on the filter: every line still arrives
        }
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"tenfold " + (v == null ? "0.1.0-SNAPSHOT" : v) + " on Java " + Runtime.version()};
        }
    }

    @Command(name = "build", mixinStandardHelpOptions = true,
            description = "Build every module (Maven, tests skipped; the log goes to target/build.log). Run through ./tenfold.")
    static final class BuildCommand implements Runnable {
        @Override public void run() { launcherOnly("build"); }
    }

    @Command(name = "test", mixinStandardHelpOptions = true,
            description = "Run the whole test suite (what CI runs); arguments after it go to Maven, e.g. -pl engine. Run through ./tenfold.")
    static final class TestCommand implements Runnable {
        @Override public void run() { launcherOnly("test"); }
    }

    @Command(name = "bench", mixinStandardHelpOptions = true, description = {
            "Run the JMH benchmarks (through the ./tenfold launcher):",
            "  ./tenfold bench MatmulBench -f 1   one benchmark (JMH's options: -h)",
            "  ./tenfold bench report             the CPU kernels beside numpy/OpenBLAS",
            "                                     (benchmarks/results/)",
            "  ./tenfold bench gpu-report         the GPU benchmarks on cuda:0"})
    static final class BenchCommand implements Runnable {
        @Override public void run() { launcherOnly("bench"); }
    }

    @Command(name = "bundle", mixinStandardHelpOptions = true,
            description = {"Write .gpu/ (a Java runtime, the jars, the tests and the GPU benchmarks with their PyTorch peers) for GPU machines without Java. Run through ./tenfold.",
                    "  --kernel-variant NAME=REF   also the CUDA kernels of git commit REF (repeatable), which `.gpu/run.sh variants` times beside the bundle's own"})
    static final class BundleCommand implements Runnable {
        @Override public void run() { launcherOnly("bundle"); }
    }

    private static void launcherOnly(String name) {
        throw new Flags.BadFlag("'" + name + "' is handled by the ./tenfold launcher at the repository root; run ./tenfold " + name);
    }
}
