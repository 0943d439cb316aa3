#!/usr/bin/env bash
# Writes .gpu/: a self-contained tenfold for GPU machines that have no Java and no Maven
# (../shared/GPU.md): a jlink runtime, the CLI's and the benchmarks' jars, every module's tests with the
# JUnit console launcher, the PyTorch peer scripts, BUILD (commit and date), and run.sh (tools/gpu-run.sh):
# `run.sh first-light` first (8 minutes at most), then the longer steps it names, logging to $OUT (or .gpu/logs).
# The runtime leaves out java.desktop (AWT) to stay well under 64 MB: charts (loss.png, heatmaps)
# are skipped there, with a note; their numbers are in metrics.jsonl and report.json.
# Called by `./tenfold bundle` after a build; JAVA_HOME is the JDK the launcher picked.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="$ROOT/.gpu"
JUNIT_CONSOLE="org.junit.platform:junit-platform-console-standalone:1.14.1"

rm -rf "$OUTDIR.tmp"
mkdir -p "$OUTDIR.tmp/lib" "$OUTDIR.tmp/tests"
"$JAVA_HOME/bin/jlink" --add-modules java.base,jdk.incubator.vector,jdk.unsupported,java.management,jdk.management,java.logging,java.xml \
    --strip-java-debug-attributes --strip-native-debug-symbols=objcopy=/usr/bin/objcopy --no-header-files --no-man-pages --compress=zip-9 \
    --output "$OUTDIR.tmp/jre"
# jlink's objcopy pass leaves libjvm.so's symbol table (5 MB): without stripping it, the bundle and the
# tracked tree together pass the device tool's 64 MiB
if command -v strip >/dev/null 2>&1; then
    strip --strip-unneeded "$OUTDIR.tmp/jre/lib/server/libjvm.so"
else
    echo "tenfold bundle: no strip (binutils) here: libjvm.so keeps 5 MB of symbols and the bundle may pass 64 MiB" >&2
fi
cp "$ROOT"/tools/target/tenfold-tools-*.jar "$ROOT"/tools/target/lib/*.jar "$OUTDIR.tmp/lib/"
# the benchmarks' own jar only (GpuReport, GpuComparison): JMH and the tokenizer bench's test data stay behind
cp "$ROOT"/benchmarks/target/tenfold-benchmarks-*.jar "$OUTDIR.tmp/lib/"
rm -f "$OUTDIR.tmp"/lib/*-tests.jar
mkdir -p "$OUTDIR.tmp/scripts"
PEERS=(kernel_peers.py attention_peer.py qlora_step_peer.py)
for p in "${PEERS[@]}"; do cp "$ROOT/benchmarks/scripts/$p" "$OUTDIR.tmp/scripts/"; done
if command -v python3 >/dev/null 2>&1; then # a syntax error would only show on the GPU machine: catch it here
    (cd "$OUTDIR.tmp/scripts" && python3 -c 'import sys; [compile(open(f).read(), f, "exec") for f in sys.argv[1:]]' "${PEERS[@]}")
fi
{
    echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "bundled $(date -u +%Y-%m-%dT%H:%M:%SZ) with $("$JAVA_HOME/bin/java" -version 2>&1 | head -1)"
    sed -n 's/^nvcc=/kernels nvcc /p' "$ROOT/native-kernels/target/classes/dev/tenfold/kernels/build.properties" 2>/dev/null || true
} > "$OUTDIR.tmp/BUILD"
for m in engine model-llama qlora tools; do
    cp -r "$ROOT/$m/target/test-classes" "$OUTDIR.tmp/tests/$m"
done
(cd "$ROOT" && mvn -B -ntp -q dependency:copy -Dartifact="$JUNIT_CONSOLE" -DoutputDirectory="$OUTDIR.tmp/tests" >/dev/null 2>&1)
mv "$OUTDIR.tmp"/tests/junit-platform-console-standalone-*.jar "$OUTDIR.tmp/tests/junit-console.jar"

cp "$ROOT/tools/gpu-run.sh" "$OUTDIR.tmp/run.sh"
chmod +x "$OUTDIR.tmp/run.sh"
rm -rf "$OUTDIR"
mv "$OUTDIR.tmp" "$OUTDIR"
echo "tenfold: bundle written to .gpu ($(du -sh "$OUTDIR" | cut -f1)); on the GPU machine run .gpu/run.sh first-light" >&2
