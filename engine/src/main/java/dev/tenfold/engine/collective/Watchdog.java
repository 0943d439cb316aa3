package dev.tenfold.engine.collective;

import java.time.Duration;

/**
 * Ends the process when a collective runs past its timeout. MPI and NCCL calls cannot be
 * interrupted: a rank whose peer died would wait in them for ever, so a daemon thread watches the
 * collective in progress and, past the deadline, prints who and what and halts the process with
 * {@link #EXIT_CODE} (the launcher then ends the other ranks).
 */
public final class Watchdog {
    /** The exit status of a process the watchdog ended. */
    public static final int EXIT_CODE = 75;

    private final Duration timeout;
    private final String who;
    private volatile long deadline; // System.nanoTime(); 0 when no collective is in progress
    private volatile String op;

    /** Watches the collectives of {@code who} (e.g. "rank 3 of 8"), each given {@code timeout}. */
    public Watchdog(String who, Duration timeout) {
        if (timeout.isNegative() || timeout.isZero()) throw new IllegalArgumentException("collective timeout must be > 0, got " + timeout);
        this.timeout = timeout;
        this.who = who;
        Thread t = Thread.ofPlatform().daemon().name("tenfold-collective-watchdog").unstarted(this::watch);
        t.start();
    }

    public Duration timeout() { return timeout; }

    /** Marks the start of collective {@code name}; {@link #end} marks its end. */
    void begin(String name) {
        op = name;
        deadline = System.nanoTime() + timeout.toNanos();
    }

    void end() {
        deadline = 0;
    }

    private void watch() {
        while (true) {
            long d = deadline;
            if (d != 0 && System.nanoTime() - d > 0) {
                System.err.println("tenfold: " + who + ": " + op + " did not complete within " + timeout.toSeconds()
                        + " s (--collective-timeout): a rank has died or hangs; ending this rank (exit " + EXIT_CODE + ")");
                System.err.flush();
                Runtime.getRuntime().halt(EXIT_CODE);
            }
            try {
                Thread.sleep(Math.min(1000, Math.max(10, timeout.toMillis() / 10)));
            } catch (InterruptedException e) {
                return;
            }
        }
    }
}
