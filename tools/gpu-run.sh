#!/usr/bin/env bash
# tenfold on a GPU machine without Java: tools/bundle.sh copies this file to .gpu/run.sh.
# Logs and results go to $OUT (or ./logs beside this script).
#
#   ./run.sh first-light        RUN THIS FIRST on a GPU machine. At most 8 minutes, every step time-limited:
#                               driver     nvidia-smi: GPU, driver, CUDA version; refuses a driver older than CUDA 13's
#                               libs       cuBLAS and NCCL: from the python that has torch (its nvidia wheels), else
#                                          a bounded search (depth 9, 30 s)
#                               doctor     every kernel against the CPU, launches blocking (CUDA_LAUNCH_BLOCKING=1)
#                               gpu-tests  the GPU tests, each at most TEST_TIMEOUT s (flash attention up to 1000 tokens)
#                               smoke      GpuReport --smoke: every benchmark's code path at toy sizes
#                               then a summary table (summary.txt). A skip is a failure here: no backend, no pass.
#   ./run.sh STEP...            only the steps named, in order, each with its own limit; the longer runs:
#                               doctor     nvidia-smi, then `tenfold doctor`                        limit  300 s
#                               tests      every GPU test at full size (flash attention to 4097)    limit  900 s
#                               report     GpuReport; the full one ends with an 8B QLoRA step      limit 1800 s
#                               peers      the PyTorch peers (python3 with torch)                   limit 1800 s
#                               memory     tenfold plan against the caching allocator's measured peak, the recipe's
#                                          8B-shaped step at 16K and 64K tokens, offload off and on (MEMORY_TOKENS),
#                                          with each step's time                                     limit  600 s
#                               compare    tenfold beside the peers -> comparison.md, YYYY-MM-DD-<gpu>.md
#                               variants   the bundle's kernels ("current") and each `--kernel-variant` of the
#                                          bundle, alternately, VARIANT_ROUNDS (2) rounds of GpuReport --quick
#                                          --sections VARIANT_SECTIONS (attention); with VARIANT_TESTS=REGEX also
#                                          the GPU tests it matches, once per variant -> variants.md   limit  600 s
#   ./run.sh window [SECONDS]   a GPU lent for a short while, in one call: first-light, then (only if it passed)
#                               report, peers, compare, tests and memory, in that order, each cut to what is
#                               left of SECONDS (default 540); a step that would get under 30 s is not started
#   ./run.sh --all-tests [ARGS] doctor, then the whole test suite (ARGS go to the JUnit console launcher)
# With no argument it prints this and exits 2: nothing long runs unless asked for.
#
# Environment: TENFOLD_CUDA_LIBS (folders of libcublas/libnccl; found as above when unset), LIB_SEARCH_ROOTS
# (folders of the bounded search), TENFOLD_REQUIRE_GPU (default 1 here: no CUDA backend fails, never skips),
# TEST_TIMEOUT (seconds per test, default 90), TEST_ARGS (more options for the test runner, e.g. --include REGEX),
# SMOKE_ARGS / REPORT_ARGS (more GpuReport options, e.g. REPORT_ARGS="--quick --no-train"), MEMORY_TOKENS (lengths of the
# memory step, default 16384,65536), STEP_TIMEOUT (seconds,
# for every named step), FIRST_LIGHT_BUDGET (seconds for the whole first light, default 470), VARIANT_ROUNDS,
# VARIANT_SECTIONS, VARIANT_TESTS (the variants step).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
LOGS="${OUT:-$HERE/logs}"
mkdir -p "$LOGS"
JAVA=("$HERE/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC)
# doctor runs the CPU reference's plain loops once, in a short-lived JVM: C1 alone gets there in half the time
DOCTOR_JAVA=("${JAVA[@]}" -XX:TieredStopAtLevel=1)
TEST_DIRS=("$HERE/tests/engine" "$HERE/tests/model-llama" "$HERE/tests/qlora" "$HERE/tests/tools")
TESTS="$(IFS=:; echo "${TEST_DIRS[*]}")"
TEST_CP="$HERE/lib/*:$TESTS:$HERE/tests/junit-console.jar"
PEERS=(kernel_peers attention_peer qlora_step_peer)
MIN_DRIVER=580.65.06 # CUDA 13.0's minimum Linux driver: the kernels are built by nvcc 13
KILL_AFTER=5         # seconds between a step's TERM at its limit and its KILL
export TENFOLD_REQUIRE_GPU="${TENFOLD_REQUIRE_GPU:-1}"
TEST_TIMEOUT="${TEST_TIMEOUT:-90}"

say() { echo "run.sh: $*" | tee -a "$LOGS/run.txt" >&2; }

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; }

# ------------------------------------------------------------------ helpers

version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" == "$2" ]]; } # $1 >= $2

# limited SECONDS LOG CMD...: runs CMD with a time limit (TERM, then KILL after KILL_AFTER s), output to LOG and
# the terminal; returns CMD's status, 124 when it was stopped at the limit
limited() {
    local seconds="$1" log="$2"
    shift 2
    timeout -k "$KILL_AFTER" "$seconds" "$@" 2>&1 | tee "$log"
    local rc="${PIPESTATUS[0]}"
    [[ "$rc" -eq 137 ]] && rc=124 # it ignored TERM and was killed
    return "$rc"
}

# Sets TENFOLD_CUDA_LIBS to the folders of cuBLAS and NCCL, unless it is set or the loader has them. Each search is
# bounded by $1 seconds. Prints what it found; returns 1 when no cuBLAS was found anywhere.
find_cuda_libs() {
    local limit="${1:-60}" found="" dirs py roots=() half
    half=$(( limit > 3 ? limit / 2 : 1 )) # each search gets half (0 would mean no limit to timeout)
    if [[ -n "${TENFOLD_CUDA_LIBS:-}" ]]; then
        say "libs: TENFOLD_CUDA_LIBS=$TENFOLD_CUDA_LIBS (as given)"
        return 0
    fi
    if ldconfig -p 2>/dev/null | grep -qE 'libcublas\.so\.1[23] ' && ldconfig -p 2>/dev/null | grep -qE 'libnccl\.so\.2 '; then
        say "libs: cuBLAS and NCCL are on the system loader path"
        return 0
    fi
    # the python that has torch: its NVIDIA wheels (or torch/lib)
    for py in python3 python; do
        command -v "$py" >/dev/null 2>&1 || continue
        timeout -k 2 "$half" "$py" -c 'import torch' >/dev/null 2>&1 || continue
        found="$(timeout -k 2 "$half" "$py" - 2>/dev/null <<'PY'
import glob, os
roots = []
try:
    import nvidia  # the CUDA wheels: nvidia/cublas/lib, nvidia/nccl/lib, nvidia/cu13/lib
    roots += list(nvidia.__path__)
except Exception:
    pass
try:
    import torch  # some builds carry the libraries in torch/lib
    roots.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
except Exception:
    pass
for root in roots:
    for pattern in ("libcublas.so.1[23]", "libnccl.so.2"):
        for f in sorted(glob.glob(os.path.join(root, "**", pattern), recursive=True), reverse=True):
            print(f)
PY
)"
        say "libs: $(command -v "$py") has torch; its NVIDIA wheels hold: $(echo $found)"
        break
    done
    if ! grep -q 'libcublas' <<<"$found"; then
        for d in ${LIB_SEARCH_ROOTS:-/usr/local /usr/lib /usr/lib64 /opt /home /root /workspace}; do [[ -d "$d" ]] && roots+=("$d"); done
        if [[ ${#roots[@]} -gt 0 ]]; then
            say "libs: no cuBLAS from a python with torch; searching ${roots[*]} (depth 9, at most $half s)"
            found+=$'\n'"$(timeout -k 2 "$half" find "${roots[@]}" -maxdepth 9 \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
                \( -name 'libcublas.so.13' -o -name 'libcublas.so.12' -o -name 'libnccl.so.2' \) -print 2>/dev/null)"
        fi
    fi
    dirs="$(for pat in 'libcublas\.so\.13$' 'libcublas\.so\.12$' 'libnccl\.so\.2$'; do grep -E "$pat" <<<"$found"; done \
        | xargs -r -n1 dirname | awk '!seen[$0]++' | paste -sd: -)"
    [[ -n "$dirs" ]] && export TENFOLD_CUDA_LIBS="$dirs"
    say "libs: TENFOLD_CUDA_LIBS=${TENFOLD_CUDA_LIBS:-} (cuBLAS $(grep -qE 'libcublas\.so\.1[23]$' <<<"$found" && echo found || echo NOT FOUND),"\
" NCCL $(grep -qE 'libnccl\.so\.2$' <<<"$found" && echo found || echo NOT FOUND))"
    grep -qE 'libcublas\.so\.1[23]$' <<<"$found" && grep -qE 'libnccl\.so\.2$' <<<"$found"
}

# ------------------------------------------------------------------ steps run when named

step_doctor() {
    { nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv; } \
        >"$LOGS/nvidia-smi.txt" 2>&1 || true
    cp "$HERE/BUILD" "$LOGS/BUILD.txt" 2>/dev/null || true
    limited "${STEP_TIMEOUT:-300}" "$LOGS/doctor.txt" "${DOCTOR_JAVA[@]}" -cp "$HERE/lib/*" dev.tenfold.tools.Main doctor
}

step_tests() {
    # shellcheck disable=SC2086 # TEST_ARGS is a list of options
    limited "${STEP_TIMEOUT:-900}" "$LOGS/tests-gpu.txt" "${JAVA[@]}" -Xmx16g -Xss8m -cp "$TEST_CP" \
        dev.tenfold.engine.testing.GpuTestRunner --timeout "${TEST_TIMEOUT}" --skips-fail ${TEST_ARGS:-} "${TEST_DIRS[@]}"
}

step_report() {
    # shellcheck disable=SC2086 # REPORT_ARGS is a list of options
    limited "${STEP_TIMEOUT:-1800}" "$LOGS/gpu-report.log" "${JAVA[@]}" -Xmx8g -cp "$HERE/lib/*" dev.tenfold.benchmarks.GpuReport \
        --out "$LOGS" ${REPORT_ARGS:-}
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
        timeout -k "$KILL_AFTER" "${STEP_TIMEOUT:-1800}" python3 "$HERE/scripts/$p.py" 2>"$LOGS/peers/$p.log" | tee "$LOGS/peers/$p.jsonl"
        r="${PIPESTATUS[0]}"
        if [[ "$r" -ne 0 ]]; then
            rc="$r"
            say "peer $p exited $r"
        fi
    done
    return "$rc"
}

step_memory() {
    limited "${STEP_TIMEOUT:-600}" "$LOGS/memory-check.txt" "${JAVA[@]}" -Xmx24g -cp "$HERE/lib/*" dev.tenfold.benchmarks.GpuMemoryCheck \
        --out "$LOGS" --tokens "${MEMORY_TOKENS:-16384,65536}"
}

step_compare() {
    local files=() p
    for p in "${PEERS[@]}"; do files+=("$LOGS/peers/$p.jsonl"); done
    limited 120 "$LOGS/compare.log" "${JAVA[@]}" -cp "$HERE/lib/*" dev.tenfold.benchmarks.GpuComparison --report "$LOGS/gpu-report.json" \
        --peers "${files[@]}" --build "$HERE/BUILD" --out "$LOGS"
}

step_variants() {
    local names=(current) d v r rc=0 folders=() order=() start=$SECONDS limit="${STEP_TIMEOUT:-600}" left i
    for d in "$HERE"/variants/*/; do [[ -d "$d" ]] && names+=("$(basename "$d")"); done
    if [[ ${#names[@]} -lt 2 ]]; then
        say "variants: this bundle has no kernel variants (./tenfold bundle --kernel-variant NAME=REF)"
        return 2
    fi
    for v in "${names[@]:1}"; do # the fatbins travel gzipped
        d="$HERE/variants/$v/dev/tenfold/kernels"
        if [[ ! -f "$d/tenfold.fatbin" ]]; then
            gzip -dc "$d/tenfold.fatbin.gz" >"$d/tenfold.fatbin.part" && mv "$d/tenfold.fatbin.part" "$d/tenfold.fatbin" \
                || { rm -f "$d/tenfold.fatbin.part"; say "variants: cannot unpack $v's kernels"; return 1; }
        fi
    done
    mkdir -p "$LOGS/variants"
    # a variant's kernels come first on the class path: the backend loads the first tenfold.fatbin it finds
    classpath_of() { if [[ "$1" == current ]]; then echo "$HERE/lib/*"; else echo "$HERE/variants/$1:$HERE/lib/*"; fi; }
    for v in "${names[@]}"; do
        [[ -n "${VARIANT_TESTS:-}" ]] || break
        left=$(( limit - (SECONDS - start) ))
        (( left > 10 )) || { say "variants: out of time before the tests of $v"; return 124; }
        limited "$left" "$LOGS/variants/tests-$v.txt" "${JAVA[@]}" -Xmx16g -Xss8m -cp "$(classpath_of "$v"):$TESTS:$HERE/tests/junit-console.jar" \
            dev.tenfold.engine.testing.GpuTestRunner --timeout "$TEST_TIMEOUT" --skips-fail --include "$VARIANT_TESTS" "${TEST_DIRS[@]}" >/dev/null
        r=$?
        say "variants: tests of $v: $(grep '^gpu-tests: ' "$LOGS/variants/tests-$v.txt" | tail -1)"
        (( r == 0 )) || rc=1
    done
    for r in $(seq 1 "${VARIANT_ROUNDS:-2}"); do
        order=()  # odd rounds in the given order, even rounds reversed (ABBA): a steady drift falls on all alike
        for (( i = 0; i < ${#names[@]}; i++ )); do
            if (( r % 2 )); then order+=("${names[i]}"); else order+=("${names[${#names[@]} - 1 - i]}"); fi
        done
        for v in "${order[@]}"; do
            left=$(( limit - (SECONDS - start) ))
            (( left > 10 )) || { say "variants: out of time before $v, round $r"; rc=124; break 2; }
            limited "$left" "$LOGS/variants/$v-$r.log" "${JAVA[@]}" -Xmx8g -cp "$(classpath_of "$v")" dev.tenfold.benchmarks.GpuReport \
                --quick --sections "${VARIANT_SECTIONS:-attention}" --out "$LOGS/variants/$v-$r" >/dev/null || rc=1
            [[ -f "$LOGS/variants/$v-$r/gpu-report.json" ]] && folders+=("$LOGS/variants/$v-$r")
            say "variants: $v round $r done"
        done
    done
    [[ ${#folders[@]} -gt 0 ]] || return 1
    "${JAVA[@]}" -cp "$HERE/lib/*" dev.tenfold.benchmarks.GpuVariants --baseline current --out "$LOGS" "${folders[@]}" || rc=1
    return "$rc"
}

# ------------------------------------------------------------------ first light

FL_START=$SECONDS
FL_BUDGET="${FIRST_LIGHT_BUDGET:-470}" # 8 minutes less a margin for the summary: no step may end later
declare -A RESULT RAN PASSED FAILED SKIPPED TIME FIRST
FL_STEPS=(driver libs doctor gpu-tests smoke)

# the limit of a step: its own, cut to what is left of the whole run's budget (less the KILL grace)
limit_for() {
    local own="$1" left=$(( FL_BUDGET - (SECONDS - FL_START) - KILL_AFTER - 1 ))
    (( left < own )) && own="$left"
    (( own < 1 )) && own=1
    echo "$own"
}

record() { # step result ran passed failed skipped seconds first-failure
    RESULT[$1]="$2" RAN[$1]="$3" PASSED[$1]="$4" FAILED[$1]="$5" SKIPPED[$1]="$6" TIME[$1]="$7" FIRST[$1]="$8"
}

fl_driver() {
    local t0=$SECONDS smi="$LOGS/nvidia-smi.txt" line name driver cuda
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        say "driver: no nvidia-smi on PATH: no NVIDIA driver here, nothing to run"
        record driver FAILED 1 0 1 0 $(( SECONDS - t0 )) "no nvidia-smi: no NVIDIA driver"
        return 2
    fi
    { timeout -k 2 "$(limit_for 10)" nvidia-smi; timeout -k 2 "$(limit_for 10)" nvidia-smi \
        --query-gpu=index,name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv; } >"$smi" 2>&1
    line="$(timeout -k 2 "$(limit_for 10)" nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
    name="${line%%,*}"
    driver="$(echo "${line#*,}" | tr -d ' ')"
    cuda="$(grep -o 'CUDA Version: *[0-9.]*' "$smi" | head -1 | grep -o '[0-9.]*$')"
    cp "$HERE/BUILD" "$LOGS/BUILD.txt" 2>/dev/null || true
    if [[ -z "$driver" ]]; then
        say "driver: nvidia-smi names no GPU (see nvidia-smi.txt): nothing to run"
        record driver FAILED 1 0 1 0 $(( SECONDS - t0 )) "nvidia-smi names no GPU"
        return 2
    fi
    GPU_LINE="$name, driver $driver, CUDA ${cuda:-?}"
    if ! version_ge "$driver" "$MIN_DRIVER"; then
        say "driver: NVIDIA driver $driver (CUDA ${cuda:-?}) is too old: tenfold's kernels are built with CUDA 13 and need driver $MIN_DRIVER or newer"
        record driver FAILED 1 0 1 0 $(( SECONDS - t0 )) "driver $driver < $MIN_DRIVER (CUDA 13)"
        return 2
    fi
    say "driver: $GPU_LINE"
    record driver passed 1 1 0 0 $(( SECONDS - t0 )) "-"
}

fl_libs() {
    local t0=$SECONDS
    if find_cuda_libs "$(limit_for 60)"; then
        record libs passed 1 1 0 0 $(( SECONDS - t0 )) "-"
    else
        record libs FAILED 1 0 1 0 $(( SECONDS - t0 )) "cuBLAS or NCCL not found (run.txt says where it looked)"
    fi
}

fl_doctor() {
    local t0=$SECONDS log="$LOGS/doctor.txt" rc last first
    say "doctor: every kernel against the CPU, launches blocking (limit $(limit_for 90) s)"
    CUDA_LAUNCH_BLOCKING=1 limited "$(limit_for 90)" "$log" "${DOCTOR_JAVA[@]}" -cp "$HERE/lib/*" dev.tenfold.tools.Main doctor
    rc=$?
    echo >>"$log"
    local pass fail notrun
    pass=$(grep -cE '  pass$' "$log")
    fail=$(grep -cE '  FAIL( |$)' "$log")
    notrun=$(grep -cE '  not run \(' "$log")
    first="$(sed -n 's/^first fail  //p' "$log" | head -1)"
    if [[ "$rc" -eq 124 ]]; then
        # the row of the case that hung is printed up to its kernels: the last non-empty line
        last="$(grep -v '^$' "$log" | tail -1)"
        if [[ "$last" =~ (pass|FAIL|not\ run) || ${#last} -lt 28 ]]; then
            first="hung after: ${last:0:100}"
        else
            first="hung in $(echo "${last:0:26}" | sed 's/ *$//') ($(echo "${last:27:72}" | sed 's/ *$//'))"
        fi
        record doctor "TIMED OUT" $(( pass + fail + 1 )) "$pass" $(( fail + 1 )) "$notrun" $(( SECONDS - t0 )) "$first"
        return 1
    fi
    if [[ "$rc" -ne 0 ]]; then
        [[ -z "$first" ]] && first="$(grep -E '^backend ' "$log" | head -1)"
        [[ -z "$first" ]] && first="$(grep -v '^$' "$log" | tail -1)"
        record doctor FAILED $(( pass + fail )) "$pass" "$fail" "$notrun" $(( SECONDS - t0 )) "${first:-exit $rc (see doctor.txt)}"
        return 0
    fi
    record doctor passed $(( pass + fail )) "$pass" "$fail" "$notrun" $(( SECONDS - t0 )) "-"
}

fl_gpu_tests() {
    local t0=$SECONDS log="$LOGS/tests-gpu.txt" rc line n p f s first
    say "gpu-tests: each test at most $TEST_TIMEOUT s (limit $(limit_for 240) s)"
    # shellcheck disable=SC2086 # TEST_ARGS is a list of options
    limited "$(limit_for 240)" "$log" "${JAVA[@]}" -Xmx16g -Xss8m -Dtenfold.flash.test.max.length=1000 -cp "$TEST_CP" \
        dev.tenfold.engine.testing.GpuTestRunner --timeout "$TEST_TIMEOUT" --skips-fail ${TEST_ARGS:-} "${TEST_DIRS[@]}"
    rc=$?
    line="$(grep '^gpu-tests: ' "$log" | tail -1)"
    if [[ "$line" =~ ^gpu-tests:\ ([0-9]+)\ run,\ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped ]]; then
        n="${BASH_REMATCH[1]}" p="${BASH_REMATCH[2]}" f="${BASH_REMATCH[3]}" s="${BASH_REMATCH[4]}"
    else
        n=- p=- f=- s=-
    fi
    first="${line#*first failure: }"
    [[ "$line" == *"first failure: "* ]] || first="$(grep -v '^$' "$log" | tail -1)"
    if [[ "$rc" -eq 124 ]]; then
        record gpu-tests "TIMED OUT" "$n" "$p" "$f" "$s" $(( SECONDS - t0 )) "step limit reached; last line: $(grep -v '^$' "$log" | tail -1)"
        return 1
    fi
    if [[ "$rc" -eq 3 ]]; then # the runner's per-test limit
        record gpu-tests "TIMED OUT" "$n" "$p" "$f" "$s" $(( SECONDS - t0 )) "$first"
        return 1
    fi
    if [[ "$rc" -ne 0 ]]; then
        [[ "$s" != "-" && "$s" -gt 0 && "$f" -eq 0 ]] && first="$s skipped (a skip is a failure here): $first"
        record gpu-tests FAILED "$n" "$p" "$f" "$s" $(( SECONDS - t0 )) "${first:-exit $rc}"
        return 0
    fi
    record gpu-tests passed "$n" "$p" "$f" "$s" $(( SECONDS - t0 )) "-"
}

fl_smoke() {
    local t0=$SECONDS log="$LOGS/smoke.log" rc line n m f first
    say "smoke: GpuReport --smoke (limit $(limit_for 75) s)"
    # shellcheck disable=SC2086 # SMOKE_ARGS is a list of options
    limited "$(limit_for 75)" "$log" "${JAVA[@]}" -Xmx8g -cp "$HERE/lib/*" dev.tenfold.benchmarks.GpuReport --smoke \
        --out "$LOGS/smoke" --case-timeout 60 ${SMOKE_ARGS:-} >/dev/null
    rc=$?
    line="$(grep '^gpu-report: [0-9]* rows' "$log" | tail -1)"
    if [[ "$line" =~ ^gpu-report:\ ([0-9]+)\ rows,\ ([0-9]+)\ measured,\ ([0-9]+)\ failed ]]; then
        n="${BASH_REMATCH[1]}" m="${BASH_REMATCH[2]}" f="${BASH_REMATCH[3]}"
        first="${line#*first failure: }"
    else
        n=- m=- f=-
        first="$(grep '^gpu-report: ' "$log" | grep -E 'FAILED|cannot|skipped' | head -1)"
    fi
    if [[ "$rc" -eq 124 ]]; then
        record smoke "TIMED OUT" "$n" "$m" "$f" 0 $(( SECONDS - t0 )) "step limit reached; last line: $(grep -v '^$' "$log" | tail -1)"
        return 1
    fi
    if [[ "$rc" -ne 0 ]]; then
        record smoke FAILED "$n" "$m" "$f" 0 $(( SECONDS - t0 )) "${first:-exit $rc (see smoke.log)}"
        return 0
    fi
    record smoke passed "$n" "$m" "$f" 0 $(( SECONDS - t0 )) "-"
}

summary() {
    local s status=0 out="$LOGS/summary.txt" why=""
    for s in "${FL_STEPS[@]}"; do
        [[ "${RESULT[$s]:-not run}" == passed ]] && continue
        status=1
        [[ -z "$why" ]] && why="$s ${RESULT[$s]:-not run}: ${FIRST[$s]:-$NOT_RUN_WHY}"
    done
    {
        echo "first light: ${GPU_LINE:-no GPU named}; $(head -1 "$HERE/BUILD" 2>/dev/null || echo 'no BUILD'); logs in $LOGS"
        printf '%-10s %-10s %5s %7s %7s %8s %6s  %s\n' step result ran passed failed skipped time "first failure"
        for s in "${FL_STEPS[@]}"; do
            if [[ -z "${RESULT[$s]:-}" ]]; then
                printf '%-10s %-10s %5s %7s %7s %8s %6s  %s\n' "$s" "not run" - - - - - "${NOT_RUN_WHY:-}"
                continue
            fi
            printf '%-10s %-10s %5s %7s %7s %8s %5ss  %s\n' "$s" "${RESULT[$s]}" "${RAN[$s]}" "${PASSED[$s]}" "${FAILED[$s]}" \
                "${SKIPPED[$s]}" "${TIME[$s]}" "${FIRST[$s]:0:160}"
        done
        if [[ "$status" -eq 0 ]]; then
            echo "first light: PASSED in $(( SECONDS - FL_START )) s"
        else
            echo "first light: FAILED in $(( SECONDS - FL_START )) s (${why:0:200})"
        fi
    } | tee "$out"
    return "$status"
}

first_light() {
    say "first light: at most $FL_BUDGET s; logs in $LOGS"
    NOT_RUN_WHY=""
    fl_driver
    if [[ $? -eq 2 ]]; then
        NOT_RUN_WHY="not run: the driver step refused this machine"
        summary
        exit 1
    fi
    fl_libs
    if ! fl_doctor; then
        NOT_RUN_WHY="not run: doctor hung, so the GPU tests would hang in the same kernel; fix that first"
    else
        fl_gpu_tests && fl_smoke
        [[ -z "${RESULT[smoke]:-}" ]] && NOT_RUN_WHY="not run: a GPU test hung (see tests-gpu.txt)"
    fi
    summary
    exit $?
}

# ------------------------------------------------------------------ main

case "${1:-}" in
    "" | -h | --help)
        usage
        exit 2
        ;;
    first-light)
        [[ $# -eq 1 ]] || { echo "run.sh: first-light takes no other argument" >&2; exit 2; }
        first_light
        ;;
    window)
        [[ $# -le 2 && "${2:-540}" =~ ^[0-9]+$ ]] && (( ${2:-540} >= 30 )) \
            || { echo "run.sh: window takes one number of seconds, at least 30, got '${*:2}'" >&2; exit 2; }
        WINDOW="${2:-540}"
        (( WINDOW < FL_BUDGET )) && FL_BUDGET="$WINDOW"
        ( first_light )
        if [[ $? -ne 0 ]]; then
            say "window: first light did not pass; nothing longer runs"
            exit 1
        fi
        find_cuda_libs 60 >/dev/null 2>&1 # first light found them in its own subshell
        status=0
        for s in report peers compare tests memory; do
            left=$(( WINDOW - (SECONDS - FL_START) - KILL_AFTER - 1 ))
            [[ "$s" == peers ]] && left=$(( left / ${#PEERS[@]} )) # each peer script gets the limit
            if (( left < 30 )); then
                say "window: $s not run ($(( WINDOW - (SECONDS - FL_START) )) s left)"
                continue
            fi
            say "window: step $s, limit $left s"
            STEP_TIMEOUT="$left" "step_$s"
            rc=$?
            say "window: $s: $([[ $rc -eq 124 ]] && echo "TIMED OUT" || echo "exit $rc") at $(( SECONDS - FL_START )) s"
            [[ "$rc" -ne 0 ]] && status=1
        done
        say "window: logs in $LOGS"
        exit "$status"
        ;;
    --all-tests) # doctor, then every test (the GPU ones included)
        shift
        find_cuda_libs 60
        step_doctor
        "${JAVA[@]}" -Xmx16g -Xss8m -cp "$TEST_CP" org.junit.platform.console.ConsoleLauncher \
            execute --scan-class-path="$TESTS" --exclude-tag=slow --details=summary --disable-banner \
            --reports-dir="$LOGS/junit" "$@" 2>&1 | tee "$LOGS/tests.txt"
        exit "${PIPESTATUS[0]}"
        ;;
esac

STEPS=("$@")
for s in "${STEPS[@]}"; do
    case "$s" in
        doctor|tests|report|peers|compare|memory|variants) ;;
        *) echo "run.sh: unknown step '$s' (first-light, or steps: doctor tests report peers compare memory variants; or --all-tests)" >&2; exit 2 ;;
    esac
done
case " ${STEPS[*]} " in *" doctor "*|*" tests "*|*" report "*|*" memory "*|*" variants "*) find_cuda_libs 60 ;; esac
status=0
results=()
for s in "${STEPS[@]}"; do
    say "step $s ..."
    t0=$SECONDS
    "step_$s"
    rc=$?
    results+=("$s: $([[ $rc -eq 124 ]] && echo "TIMED OUT" || echo "exit $rc") after $(( SECONDS - t0 )) s")
    [[ "$rc" -ne 0 ]] && status=1
done
for line in "${results[@]}"; do say "$line"; done
say "logs in $LOGS"
for f in "$LOGS"/20??-??-??-*.md; do
    [[ -e "$f" ]] && say "the results file to commit: $f (as benchmarks/results/$(basename "$f"))"
done
exit "$status"
