#!/usr/bin/env bash
# Writes .gpu/: a self-contained tenfold for GPU machines that have no Java and no Maven
# (../shared/GPU.md): a jlink runtime, the CLI's and the benchmarks' jars, every module's tests with the
# JUnit console launcher, the PyTorch peer scripts, BUILD (commit and date), and run.sh, which runs
# doctor, the GPU tests, the GPU benchmarks, the peers and the comparison, logging to $OUT (or .gpu/logs).
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

cat > "$OUTDIR.tmp/run.sh" <<'RUN'
#!/usr/bin/env bash
# tenfold on a GPU machine without Java. Logs and results go to $OUT (or ./logs beside this script).
#   ./run.sh                     every step, in order: doctor tests report peers compare
#   ./run.sh report peers        only the steps named (any of: doctor tests report peers compare)
#   ./run.sh --all-tests [ARGS]  doctor, then the whole test suite; ARGS go to the JUnit console launcher
# Steps: doctor   nvidia-smi, then `tenfold doctor` (driver, GPU, cuBLAS, NCCL, every kernel against the CPU)
#        tests    the GPU tests (JUnit, tag "gpu")
#        report   GpuReport: copy bandwidth, cuBLAS, every kernel's GB/s, flash attention, one 8B QLoRA step
#                 -> gpu-report.json, gpu-report.md
#        peers    the PyTorch peers (if python3 imports torch) -> peers/*.jsonl
#        compare  tenfold vs peers table -> comparison.md and YYYY-MM-DD-<gpu>.md (the results file to commit)
# Environment: TENFOLD_CUDA_LIBS (folders holding libcublas/libnccl; searched for when unset and the loader
# has no cuBLAS), REPORT_ARGS (more GpuReport options, e.g. "--quick" or "--no-train"), STEP_TIMEOUT
# (seconds per step, default 1800).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
LOGS="${OUT:-$HERE/logs}"
mkdir -p "$LOGS"
JAVA=("$HERE/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC)
TESTS="$HERE/tests/engine:$HERE/tests/model-llama:$HERE/tests/qlora:$HERE/tests/tools"
STEP_TIMEOUT="${STEP_TIMEOUT:-1800}"
PEERS=(kernel_peers attention_peer qlora_step_peer)

say() { echo "run.sh: $*" | tee -a "$LOGS/run.txt" >&2; }

find_cuda_libs() { # cuBLAS and NCCL may live only inside PyTorch's wheels
    [[ -n "${TENFOLD_CUDA_LIBS:-}" ]] && return 0
    if ldconfig -p 2>/dev/null | grep -qE 'libcublas\.so\.1[23] '; then return 0; fi
    local found dirs pat
    # first the NVIDIA wheels of python3 (where PyTorch gets cuBLAS and NCCL), then a search of the disk
    found="$(python3 - 2>/dev/null <<'PY'
import glob, os
try:
    import nvidia
    for root in list(nvidia.__path__):
        for pattern in ("libcublas.so.1[23]", "libnccl.so.2"):  # nvidia/cublas/lib, or nvidia/cu13/lib in CUDA 13 wheels
            for f in sorted(glob.glob(os.path.join(root, "**", pattern), recursive=True), reverse=True):
                print(f)
except Exception:
    pass
PY
)"
    if ! grep -q 'libcublas' <<<"$found"; then
        found="$(timeout 300 find / \( -path /proc -o -path /sys -o -path /dev -o -path /tmp \) -prune -o \
            \( -name 'libcublas.so.13' -o -name 'libcublas.so.12' -o -name 'libnccl.so.2' \) -print 2>/dev/null)"
    fi
    dirs="$(for pat in 'libcublas\.so\.13$' 'libcublas\.so\.12$' 'libnccl\.so\.2$'; do grep -E "$pat" <<<"$found"; done \
        | xargs -r -n1 dirname | awk '!seen[$0]++' | paste -sd: -)"
    if [[ -n "$dirs" ]]; then
        export TENFOLD_CUDA_LIBS="$dirs"
        say "TENFOLD_CUDA_LIBS=$dirs"
    else
        say "no libcublas.so.13/.12 found: the CUDA backend will say so"
    fi
}

step_doctor() {
    { nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv; } \
        >"$LOGS/nvidia-smi.txt" 2>&1 || true
    cp "$HERE/BUILD" "$LOGS/BUILD.txt" 2>/dev/null || true
    timeout "$STEP_TIMEOUT" "${JAVA[@]}" -cp "$HERE/lib/*" dev.tenfold.tools.Main doctor 2>&1 | tee "$LOGS/doctor.txt"
    return "${PIPESTATUS[0]}"
}

step_tests() {
    timeout "$STEP_TIMEOUT" "${JAVA[@]}" -Xmx16g -Xss8m -cp "$HERE/lib/*:$TESTS:$HERE/tests/junit-console.jar" \
        org.junit.platform.console.ConsoleLauncher execute --scan-class-path="$TESTS" --include-tag=gpu --details=summary \
        --disable-banner --reports-dir="$LOGS/junit-gpu" 2>&1 | tee "$LOGS/tests-gpu.txt"
    return "${PIPESTATUS[0]}"
}

step_report() {
    # shellcheck disable=SC2086 # REPORT_ARGS is a list of options
    timeout "$STEP_TIMEOUT" "${JAVA[@]}" -Xmx8g -cp "$HERE/lib/*" dev.tenfold.benchmarks.GpuReport --out "$LOGS" ${REPORT_ARGS:-} 2>&1 \
        | tee "$LOGS/gpu-report.log"
    return "${PIPESTATUS[0]}"
}

step_peers() {
    mkdir -p "$LOGS/peers"
    local p rc=0 r
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import torch' >/dev/null 2>&1; then
        say "peers skipped: no python3 that imports torch"
        for p in "${PEERS[@]}"; do echo "{\"bench\": \"$p\", \"skipped\": \"no python3 that imports torch here\"}" >"$LOGS/peers/$p.jsonl"; done
        return 0
    fi
    for p in "${PEERS[@]}"; do
        say "peer $p (stderr in peers/$p.log)"
        timeout "$STEP_TIMEOUT" python3 "$HERE/scripts/$p.py" 2>"$LOGS/peers/$p.log" | tee "$LOGS/peers/$p.jsonl"
        r="${PIPESTATUS[0]}"
        if [[ "$r" -ne 0 ]]; then
            rc="$r"
            say "peer $p exited $r"
        fi
    done
    return "$rc"
}

step_compare() {
    local files=() p
    for p in "${PEERS[@]}"; do files+=("$LOGS/peers/$p.jsonl"); done
    "${JAVA[@]}" -cp "$HERE/lib/*" dev.tenfold.benchmarks.GpuComparison --report "$LOGS/gpu-report.json" --peers "${files[@]}" \
        --build "$HERE/BUILD" --out "$LOGS" 2>&1 | tee "$LOGS/compare.log"
    return "${PIPESTATUS[0]}"
}

if [[ "${1:-}" == "--all-tests" ]]; then # the previous behaviour: doctor, then every test (GPU ones included where a GPU is)
    shift
    find_cuda_libs
    step_doctor
    "${JAVA[@]}" -Xmx16g -Xss8m -cp "$HERE/lib/*:$TESTS:$HERE/tests/junit-console.jar" org.junit.platform.console.ConsoleLauncher \
        execute --scan-class-path="$TESTS" --exclude-tag=slow --details=summary --disable-banner \
        --reports-dir="$LOGS/junit" "$@" 2>&1 | tee "$LOGS/tests.txt"
    exit "${PIPESTATUS[0]}"
fi

STEPS=("$@")
[[ ${#STEPS[@]} -eq 0 ]] && STEPS=(doctor tests report peers compare)
for s in "${STEPS[@]}"; do
    case "$s" in
        doctor|tests|report|peers|compare) ;;
        *) echo "run.sh: unknown step '$s' (steps: doctor tests report peers compare; or --all-tests)" >&2; exit 2 ;;
    esac
done
case " ${STEPS[*]} " in *" doctor "*|*" tests "*|*" report "*) find_cuda_libs ;; esac
status=0
summary=()
for s in "${STEPS[@]}"; do
    say "step $s ..."
    t0=$(date +%s)
    "step_$s"
    rc=$?
    summary+=("$s: exit $rc after $(( $(date +%s) - t0 )) s")
    [[ "$rc" -ne 0 ]] && status=1
done
for line in "${summary[@]}"; do say "$line"; done
say "logs in $LOGS"
for f in "$LOGS"/20??-??-??-*.md; do
    [[ -e "$f" ]] && say "the results file to commit: $f (as benchmarks/results/$(basename "$f"))"
done
exit "$status"
RUN
chmod +x "$OUTDIR.tmp/run.sh"
rm -rf "$OUTDIR"
mv "$OUTDIR.tmp" "$OUTDIR"
echo "tenfold: bundle written to .gpu ($(du -sh "$OUTDIR" | cut -f1)); on the GPU machine run .gpu/run.sh" >&2
