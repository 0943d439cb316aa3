#!/usr/bin/env bash
# Writes .gpu/: a self-contained tenfold for GPU machines that have no Java and no Maven
# (../shared/GPU.md): a jlink runtime, the CLI's and the benchmarks' jars, every module's tests with the
# JUnit console launcher, the PyTorch peer scripts, BUILD (commit and date), and run.sh (tools/gpu-run.sh):
# `run.sh first-light` first (8 minutes at most), then the longer steps it names, logging to $OUT (or .gpu/logs).
# The runtime leaves out java.desktop (AWT) to stay well under 64 MB: charts (loss.png, heatmaps)
# are skipped there, with a note; their numbers are in metrics.jsonl and report.json.
# Called by `./tenfold bundle` after a build; JAVA_HOME is the JDK the launcher picked.
#
#   --kernel-variant NAME=REF (repeatable): also the kernels of git commit REF, built here by that commit's own
#   native-kernels/build-kernels.sh into variants/NAME/ (gzipped: about 0.4 MB each), for `run.sh variants`, which
#   times them beside the bundle's own ("current") on the GPU, alternately, in one call. They run under this
#   build's Java (its launch arguments): a variant whose kernels take other arguments is not comparable, and one
#   from before a new argument value (e.g. the flash backward's deterministic == 2, 8c9ac17) treats it as its own.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="$ROOT/.gpu"
JUNIT_CONSOLE="org.junit.platform:junit-platform-console-standalone:1.14.1"

VARIANTS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --kernel-variant)
            [[ $# -ge 2 && "$2" =~ ^[A-Za-z0-9_]+=.+$ ]] || { echo "tenfold bundle: --kernel-variant takes NAME=REF (NAME in letters, digits, _), got '${2:-}'" >&2; exit 2; }
            [[ "${2%%=*}" != current ]] || { echo "tenfold bundle: --kernel-variant: 'current' names the bundle's own kernels" >&2; exit 2; }
            git -C "$ROOT" rev-parse --verify -q "${2#*=}^{commit}" >/dev/null || { echo "tenfold bundle: --kernel-variant ${2%%=*}: '${2#*=}' is no commit here" >&2; exit 2; }
            for seen in "${VARIANTS[@]}"; do
                [[ "${seen%%=*}" != "${2%%=*}" ]] || { echo "tenfold bundle: --kernel-variant ${2%%=*} is named twice" >&2; exit 2; }
            done
            VARIANTS+=("$2")
            shift 2
            ;;
        *) echo "tenfold bundle: unknown argument '$1' (--kernel-variant NAME=REF)" >&2; exit 2 ;;
    esac
done

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

work=""
trap 'rm -rf "$work" "$OUTDIR.tmp"' ERR
for v in "${VARIANTS[@]}"; do
    name="${v%%=*}" ref="${v#*=}" work="$(mktemp -d)"
    if ! git -C "$ROOT" archive "$ref" native-kernels | tar -x -C "$work"; then
        echo "tenfold bundle: --kernel-variant $v: $ref has no native-kernels folder to build" >&2
        rm -rf "$work" "$OUTDIR.tmp"
        exit 1
    fi
    kernels="$OUTDIR.tmp/variants/$name/dev/tenfold/kernels"
    mkdir -p "$kernels"
    if ! bash "$work/native-kernels/build-kernels.sh" --out "$kernels" --work "$work/build" >"$work/build.log" 2>&1 \
        || [[ ! -f "$kernels/tenfold.fatbin" ]]; then
        tail -20 "$work/build.log" >&2
        echo "tenfold bundle: the kernels of --kernel-variant $v did not build (nvcc needed, TENFOLD_SKIP_KERNELS unset)" >&2
        rm -rf "$work" "$OUTDIR.tmp"
        exit 1
    fi
    gzip -9 "$kernels/tenfold.fatbin"
    echo "variant $name = $ref ($(git -C "$ROOT" rev-parse --short "$ref^{commit}"))" >>"$OUTDIR.tmp/BUILD"
    rm -rf "$work"
done

cp "$ROOT/tools/gpu-run.sh" "$OUTDIR.tmp/run.sh"
chmod +x "$OUTDIR.tmp/run.sh"
rm -rf "$OUTDIR"
mv "$OUTDIR.tmp" "$OUTDIR"
echo "tenfold: bundle written to .gpu ($(du -sh "$OUTDIR" | cut -f1)); on the GPU machine run .gpu/run.sh first-light" >&2
