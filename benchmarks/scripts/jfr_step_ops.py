#!/usr/bin/env python3
"""Where tenfold's CPU training step spends its wall time, op by op, from a JFR recording.

    java ... -XX:StartFlightRecording=filename=step.jfr,settings=profile -cp ... \\
        dev.tenfold.benchmarks.StepPeer tenfold target/step-peer/h512 1024 30
    jfr print --events jdk.ExecutionSample --stack-depth 64 step.jfr > step.txt
    python3 jfr_step_ops.py step.txt [--skip-seconds 3] [--step-seconds 0.5]

The calling ("main") thread runs every op and takes a share of each parallel loop, so its samples, grouped by
the CpuBackend method they are in, give each op's share of the step's wall time. Samples inside the warm-up
and in the first --skip-seconds after it (the first step allocates its buffers) are left out. With
--step-seconds (the steady step time the run printed) each share is also given in ms per step. The peer's
side: cpu_step_peer.py profile.
"""
import argparse
import collections
import re
import sys


def samples(lines):
    """(time in seconds of the day, thread name, [frames, leaf first]) of each jdk.ExecutionSample."""
    when, thread, frames = None, None, []
    for line in lines:
        if line.startswith("jdk.ExecutionSample"):
            if frames:
                yield when, thread, frames
            when, thread, frames = None, None, []
            continue
        m = re.match(r"\s+startTime = (\d+):(\d+):([\d.]+)", line)
        if m:
            when = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
            continue
        m = re.match(r'\s+sampledThread = "([^"]+)"', line)
        if m:
            thread = m.group(1)
            continue
        m = re.match(r"\s+([\w.$<>]+)\(", line)
        if m:
            frames.append(m.group(1))
    if frames:
        yield when, thread, frames


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="the output of jfr print --events jdk.ExecutionSample --stack-depth 64")
    ap.add_argument("--skip-seconds", type=float, default=3.0, help="left out after the warm-up (default 3)")
    ap.add_argument("--step-seconds", type=float, help="the steady step time, to print ms per step")
    ap.add_argument("--thread", default="main")
    args = ap.parse_args()
    if not args.skip_seconds >= 0:
        ap.error("--skip-seconds must be >= 0, got %s" % args.skip_seconds)
    if args.step_seconds is not None and not 0 < args.step_seconds < float("inf"):
        ap.error("--step-seconds must be a positive number of seconds, got %s" % args.step_seconds)
    try:
        with open(args.file) as f:
            all_samples = [s for s in samples(f) if s[1] == args.thread]
    except OSError as e:
        sys.exit("jfr_step_ops: cannot read %s: %s" % (args.file, e.strerror or e))
    if not all_samples:
        sys.exit("jfr_step_ops: no samples of thread '%s' in %s" % (args.thread, args.file))
    warm_end = max((t for t, _, fr in all_samples if any(x.endswith("CpuBackend.warmUp") for x in fr)), default=None)
    start = (warm_end if warm_end is not None else min(t for t, _, _ in all_samples)) + args.skip_seconds
    ops = collections.Counter()
    for t, _, frames in all_samples:
        if t is None or t < start:
            continue
        backend = [x for x in frames if ".CpuBackend." in x]
        ops[backend[-1].split(".")[-1] if backend else "(outside the backend's ops)"] += 1
    n = sum(ops.values())
    if n == 0:
        sys.exit("jfr_step_ops: no samples after the warm-up and %.1f s; record a longer run" % args.skip_seconds)
    print("%d samples of thread %s after the warm-up and %.1f s" % (n, args.thread, args.skip_seconds))
    print("| op | share of the step | %s" % ("ms per step |" if args.step_seconds else ""))
    print("|---|---:|%s" % ("---:|" if args.step_seconds else ""))
    for op, c in ops.most_common():
        share = c / n
        if share < 0.005:
            continue
        ms = " %.1f |" % (share * args.step_seconds * 1000) if args.step_seconds else ""
        print("| %s | %.1f %% |%s" % (op, 100 * share, ms))


if __name__ == "__main__":
    main()
