package dev.tenfold.engine.testing;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.discovery.ClassNameFilter;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TagFilter;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

/**
 * Runs the tests tagged "gpu" (or {@code --tag}) found in folders of test classes, for a GPU machine without Maven
 * (.gpu/run.sh): one line per test as it ends, then one summary line that run.sh reads:
 * {@code gpu-tests: N run, P passed, F failed, S skipped; first failure: TEST: MESSAGE}.
 *
 * <p>The per-test limit is a watchdog rather than JUnit's timeouts: those cannot stop a test blocked in native code
 * (a hung kernel), and do not apply to dynamic tests at all. A test that runs past the limit is reported as timed
 * out and the process ends (exit 3): the hung call still holds the GPU and the backend's lock, so no later GPU
 * test could run anyway.
 */
public final class GpuTestRunner {
    static final String USAGE = """
            usage: GpuTestRunner [--tag NAME] [--include REGEX] [--timeout SECONDS] [--skips-fail] FOLDER...
              FOLDER            a folder of compiled test classes, scanned for tests with the tag
              --tag NAME        the tag to run (default gpu)
              --include REGEX   only test classes whose fully qualified name matches
              --timeout S       per-test limit in seconds: past it the test is reported and the run stops (exit 3)
              --skips-fail      a skipped or aborted test, or no test at all, fails the run
            exit: 0 all passed, 1 a test failed (or was skipped, with --skips-fail), 2 bad arguments, 3 a test timed out
            """;
    static final int TIMED_OUT = 3;

    private GpuTestRunner() {}

    public static void main(String[] args) {
        int code = run(args, System.out);
        System.out.flush();
        System.exit(code);
    }

    /** Runs the tests; returns the exit code (a timed-out test halts the process instead). */
    static int run(String[] args, PrintStream out) {
        String tag = "gpu", include = null;
        long timeoutMs = 0;
        boolean skipsFail = false;
        Set<Path> roots = new LinkedHashSet<>();
        try {
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--tag" -> tag = value(args, ++i);
                    case "--include" -> include = value(args, ++i);
                    case "--timeout" -> timeoutMs = Math.round(1000 * Double.parseDouble(value(args, ++i)));
                    case "--skips-fail" -> skipsFail = true;
                    default -> {
                        if (args[i].startsWith("--")) throw new IllegalArgumentException("unknown option " + args[i]);
                        Path p = Path.of(args[i]);
                        // a module without test classes has no folder; a linked folder is scanned where it points
                        if (Files.isDirectory(p)) roots.add(p.toRealPath());
                    }
                }
            }
            if (timeoutMs < 0) throw new IllegalArgumentException("--timeout must be >= 0");
        } catch (IllegalArgumentException | java.io.IOException e) {
            out.println("gpu-tests: " + e.getMessage());
            out.print(USAGE);
            return 2;
        }
        LauncherDiscoveryRequestBuilder request = LauncherDiscoveryRequestBuilder.request()
                .selectors(DiscoverySelectors.selectClasspathRoots(roots)).filters(TagFilter.includeTags(tag));
        if (include != null) request.filters(ClassNameFilter.includeClassNamePatterns(include));
        LauncherDiscoveryRequest discovery = request.build();
        Listener listener = new Listener(out);
        Thread watchdog = null;
        if (timeoutMs > 0) watchdog = Thread.ofPlatform().daemon().name("gpu-tests watchdog").start(watchdog(listener, timeoutMs, out));
        LauncherFactory.create().execute(discovery, listener);
        if (watchdog != null) watchdog.interrupt();
        String first = listener.firstFailure != null ? listener.firstFailure
                : listener.run == 0 ? "no test tagged " + tag + " found in " + roots
                : skipsFail && listener.skipped > 0 ? listener.firstSkip + " (skipped: a skip counts as a failure here)" : "-";
        out.println(String.format(Locale.ROOT, "gpu-tests: %d run, %d passed, %d failed, %d skipped; first failure: %s",
                listener.run, listener.passed, listener.failed, listener.skipped, first));
        boolean ok = listener.failed == 0 && (!skipsFail || (listener.skipped == 0 && listener.run > 0));
        return ok ? 0 : 1;
    }

    private static String value(String[] args, int i) {
        if (i >= args.length) throw new IllegalArgumentException(args[i - 1] + " needs a value");
        return args[i];
    }

    /** Ends the process when the running test exceeds the limit, after saying which test it was. */
    private static Runnable watchdog(Listener l, long timeoutMs, PrintStream out) {
        return () -> {
            try {
                while (true) {
                    Thread.sleep(Math.min(200, Math.max(10, timeoutMs / 10)));
                    Running r = l.running.get();
                    if (r != null && System.nanoTime() - r.startNanos() > timeoutMs * 1_000_000) {
                        String seconds = String.format(Locale.ROOT, "%.0f s", timeoutMs / 1000.0);
                        out.println("  TIMED OUT " + r.name() + " after " + seconds + ": still running (a hung kernel, or a wait that"
                                + " never ends); the tests after it were not run");
                        out.println(String.format(Locale.ROOT, "gpu-tests: %d run, %d passed, %d failed, %d skipped, 1 timed out;"
                                + " first failure: %s", l.run + 1, l.passed, l.failed + 1, l.skipped,
                                l.firstFailure != null ? l.firstFailure : r.name() + ": timed out after " + seconds));
                        out.flush();
                        Runtime.getRuntime().halt(TIMED_OUT);
                    }
                }
            } catch (InterruptedException e) {
                // the tests ended
            }
        };
    }

    private record Running(String name, long startNanos) {}

    /** Prints each test as it ends and counts; remembers the first failure and the first skip. */
    private static final class Listener implements TestExecutionListener {
        final PrintStream out;
        final AtomicReference<Running> running = new AtomicReference<>();
        private TestPlan plan;
        private final Set<String> skippedIds = new HashSet<>();
        volatile int run, passed, failed, skipped;
        volatile String firstFailure, firstSkip;

        Listener(PrintStream out) { this.out = out; }

        @Override public void testPlanExecutionStarted(TestPlan plan) { this.plan = plan; }

        @Override public void executionStarted(TestIdentifier id) {
            if (id.isTest()) running.set(new Running(name(id), System.nanoTime()));
        }

        @Override public void executionSkipped(TestIdentifier id, String reason) {
            // a skipped container (a @Disabled class) counts as one skip
            if (!skippedIds.add(id.getUniqueId())) return;
            skipped++;
            line("SKIPPED", name(id), null, reason);
            if (firstSkip == null) firstSkip = name(id) + ": " + reason;
        }

        @Override public void executionFinished(TestIdentifier id, TestExecutionResult result) {
            boolean test = id.isTest();
            Running r = test ? running.getAndSet(null) : null;
            Double seconds = r != null ? (System.nanoTime() - r.startNanos()) / 1e9 : null;
            String why = result.getThrowable().map(GpuTestRunner::firstLine).orElse("");
            switch (result.getStatus()) {
                case SUCCESSFUL -> {
                    if (!test) return;
                    run++;
                    passed++;
                    line("ok", name(id), seconds, null);
                }
                case ABORTED -> {
                    if (test) run++;
                    skipped++;
                    line("SKIPPED", name(id), seconds, why);
                    if (firstSkip == null) firstSkip = name(id) + ": " + why;
                }
                case FAILED -> { // a failing container (@BeforeAll) counts once
                    if (test) run++;
                    failed++;
                    line("FAILED", name(id), seconds, why);
                    if (firstFailure == null) firstFailure = name(id) + ": " + why;
                }
            }
        }

        private void line(String status, String name, Double seconds, String why) {
            out.println(String.format(Locale.ROOT, "  %-8s %s%s%s", status, name, seconds != null ? String.format(Locale.ROOT, " (%.2f s)", seconds) : "",
                    why != null && !why.isEmpty() ? ": " + why : ""));
            out.flush();
        }

        /** "Class > method() > dynamic test", without the engine's name. */
        private String name(TestIdentifier id) {
            List<String> parts = new ArrayList<>();
            for (Optional<TestIdentifier> t = Optional.of(id); t.isPresent(); t = plan.getParent(t.get())) {
                if (t.get().getParentId().isPresent()) parts.addFirst(t.get().getDisplayName());
            }
            return String.join(" > ", parts);
        }
    }

    /** The throwable's class and the first line of its message, at most 300 characters. */
    static String firstLine(Throwable t) {
        String s = t.getClass().getSimpleName() + (t.getMessage() != null ? ": " + t.getMessage().strip() : "");
        int nl = s.indexOf('\n');
        if (nl >= 0) s = s.substring(0, nl);
        return s.length() > 300 ? s.substring(0, 297) + "..." : s;
    }
}
