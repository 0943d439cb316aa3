#!/usr/bin/env bash
# Builds every src/main/cuda/*.cu into ONE fatbin: sm_80 and sm_90 SASS plus compute_90 PTX
# (so newer GPUs JIT it), the classpath resource dev/tenfold/kernels/tenfold.fatbin that the CUDA
# backend loads with cuModuleLoadData. Called by the Maven build (native-kernels/pom.xml, phase
# generate-resources); runnable by hand:
#
#   native-kernels/build-kernels.sh [--out DIR] [--work DIR]
#       --out   where the resources go (default native-kernels/target/classes/dev/tenfold/kernels)
#       --work  scratch folder (default native-kernels/target/kernels)
#   Environment: NVCC (an nvcc to use), CUDA_HOME, TENFOLD_SKIP_KERNELS=true (skip even with nvcc).
#
# One module from many files: cuModuleLoadData takes one module, so the family files are compiled
# as one translation unit, a generated all_kernels.cu that #includes each of them (sorted). No
# relocatable device code and no device link step; the PTX is a single module too.
#
# Per arch, nvcc runs separately (in parallel) with -Xptxas -v; the script prints each kernel's
# registers, static shared memory and stack per arch, and FAILS when any function spills to local
# memory, naming it. Then `fatbinary` packs the two cubins and the PTX, uncompressed (so kernel
# names are visible to the test that checks them; the size is small).
#
# Without nvcc (PATH, then $CUDA_HOME/bin, then /usr/local/cuda/bin) it prints one line saying the
# kernels were skipped and exits 0; the resources then hold build.properties (status=skipped) and
# no fatbin, which the CUDA backend and the tests report.
#
# Rebuilds only when the sources, this script or nvcc changed (a hash in the work folder).
set -euo pipefail
export LC_ALL=C   # sort and join agree on the order

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/src/main/cuda"
OUT="$HERE/target/classes/dev/tenfold/kernels"
WORK="$HERE/target/kernels"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --work) WORK="$2"; shift 2 ;;
        *) echo "build-kernels.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

ARCHS=(80 90)    # SASS; plus PTX for the last one
PTX_ARCH=90
# Never --use_fast_math: the kernels rely on IEEE expf, sincosf and division. Add -lineinfo here to
# see source lines in Nsight Compute (it doubles the fatbin and embeds this checkout's paths).
FLAGS=(-std=c++17 -O3 -I"$SRC")

say() { echo "tenfold kernels: $*"; }

mkdir -p "$OUT" "$WORK"
HEADER="$SRC/tenfold_kernels.h"
mapfile -t CU_FILES < <(cd "$SRC" && ls -1 -- *.cu 2>/dev/null | sort)

# Resources shipped whatever happens: the ABI header (documentation inside the jar) and
# build.properties (status, reason, the family files, the kernels).
cp "$HEADER" "$OUT/tenfold_kernels.h"
write_properties() { # status reason
    local tmp="$OUT/build.properties.tmp"
    {
        echo "# written by native-kernels/build-kernels.sh"
        echo "status=$1"
        echo "reason=$2"
        echo "sources=$(IFS=,; echo "${CU_FILES[*]}")"
        if [[ "$1" == built ]]; then
            echo "nvcc=$NVCC_VERSION"
            echo "archs=$(printf 'sm_%s,' "${ARCHS[@]}")compute_$PTX_ARCH"
            echo "kernels=$(paste -sd, "$WORK/kernels.txt")"
        fi
    } >"$tmp"
    mv "$tmp" "$OUT/build.properties"
}

skip() {
    rm -f "$OUT/tenfold.fatbin" "$OUT/resource-usage.txt"   # never ship a stale fatbin
    write_properties skipped "$1"
    say "SKIPPED: $1; the jar has no fatbin, so the CUDA backend cannot run (the CPU backend is unaffected)."
    exit 0
}

if [[ "${TENFOLD_SKIP_KERNELS:-false}" == true ]]; then skip "TENFOLD_SKIP_KERNELS=true (-Dtenfold.kernels.skip)"; fi

find_nvcc() {
    if [[ -n "${NVCC:-}" && -x "$NVCC" ]]; then echo "$NVCC"; return; fi
    if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return; fi
    if [[ -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/nvcc" ]]; then echo "$CUDA_HOME/bin/nvcc"; return; fi
    if [[ -x /usr/local/cuda/bin/nvcc ]]; then echo /usr/local/cuda/bin/nvcc; return; fi
}
NVCC_BIN="$(find_nvcc || true)"
[[ -n "$NVCC_BIN" ]] || skip "nvcc not found (looked on PATH, in \$CUDA_HOME/bin and /usr/local/cuda/bin)"
FATBINARY="$(dirname "$NVCC_BIN")/fatbinary"
[[ -x "$FATBINARY" ]] || FATBINARY="$(command -v fatbinary || true)"
[[ -n "$FATBINARY" ]] || { say "ERROR: nvcc is at $NVCC_BIN but fatbinary is not beside it or on PATH" >&2; exit 1; }
NVCC_VERSION="$("$NVCC_BIN" --version | sed -n 's/.*release \([0-9.]*\), \(V[0-9.]*\).*/\1 (\2)/p')"
[[ ${#CU_FILES[@]} -gt 0 ]] || { say "ERROR: no .cu files in $SRC" >&2; exit 1; }

# ------------------------------------------------------------------ up to date?
HASH="$( { echo "${FLAGS[*]} ${ARCHS[*]} $PTX_ARCH $NVCC_VERSION"; cat "$0"; cd "$SRC" && ls -1 && cat -- *; } | sha256sum | cut -c1-32)"
if [[ -f "$WORK/hash" && "$(cat "$WORK/hash")" == "$HASH" && -f "$WORK/tenfold.fatbin" && -f "$WORK/resource-usage.txt" ]]; then
    cp "$WORK/tenfold.fatbin" "$WORK/resource-usage.txt" "$OUT/"
    write_properties built "up to date"
    say "up to date ($OUT/tenfold.fatbin, nvcc $NVCC_VERSION)"
    cat "$WORK/resource-usage.txt"
    exit 0
fi
rm -f "$WORK/hash"

# ------------------------------------------------------------------ compile
START=$SECONDS
UNIT="$WORK/all_kernels.cu"
{
    echo "// Generated by build-kernels.sh: every kernel family file in one translation unit (one module)."
    for f in "${CU_FILES[@]}"; do echo "#include \"$f\""; done
} >"$UNIT"

pids=()
for a in "${ARCHS[@]}"; do
    "$NVCC_BIN" "${FLAGS[@]}" -cubin -arch="sm_$a" -Xptxas -v -o "$WORK/sm_$a.cubin" "$UNIT" >"$WORK/sm_$a.log" 2>&1 &
    pids+=($!)
done
"$NVCC_BIN" "${FLAGS[@]}" -ptx -arch="compute_$PTX_ARCH" -o "$WORK/compute_$PTX_ARCH.ptx" "$UNIT" >"$WORK/ptx.log" 2>&1 &
pids+=($!)
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [[ $failed -ne 0 ]]; then
    for log in "$WORK"/sm_*.log "$WORK/ptx.log"; do grep -v '^ptxas info' "$log" | grep -v '^    [0-9]* bytes stack' >&2 || true; done
    say "ERROR: nvcc failed (logs in $WORK)" >&2
    exit 1
fi

# ------------------------------------------------------------------ resource table and spill check
# ptxas -v prints, per function: "Compiling entry function 'k' for 'sm_NN'" (kernels only), then
# "Function properties for f" / "S bytes stack frame, A bytes spill stores, B bytes spill loads" /
# "Used R registers, ... N bytes smem, ...". Non-kernel functions (not inlined) get properties too.
parse() { # log arch -> "kernel regs smem stack" lines, and "SPILL function arch stores loads" lines
    awk -v arch="$2" '
        /Function properties for / { fn = $NF; next }
        /bytes stack frame/ { stack[fn] = $1; if ($5 + 0 > 0 || $9 + 0 > 0) print "SPILL", fn, "sm_" arch, $5, $9; next }
        /Compiling entry function/ { k = $7; gsub("\047", "", k); next }
        /Used [0-9]+ registers/ && k != "" {
            regs = $5; smem = 0
            for (i = 1; i <= NF; i++) if ($(i) == "smem" || $(i) == "smem,") smem = $(i - 2)
            print k, regs, smem, stack[k] + 0; k = ""
        }' "$1"
}
: >"$WORK/spills.txt"
for a in "${ARCHS[@]}"; do
    parse "$WORK/sm_$a.log" "$a" >"$WORK/sm_$a.parsed"
    grep '^SPILL ' "$WORK/sm_$a.parsed" | cut -d' ' -f2- >>"$WORK/spills.txt" || true
    grep -v '^SPILL ' "$WORK/sm_$a.parsed" | sort >"$WORK/sm_$a.table" || true
done
cut -d' ' -f1 "$WORK/sm_${ARCHS[0]}.table" >"$WORK/kernels.txt"

{
    printf '%-28s' "kernel"
    for a in "${ARCHS[@]}"; do printf ' | %-20s' "sm_$a regs smem stack"; done
    echo
    join_tables() { # joins the per-arch tables on the kernel name
        local acc="$WORK/sm_${ARCHS[0]}.table" a
        for a in "${ARCHS[@]:1}"; do join "$acc" "$WORK/sm_$a.table" >"$WORK/joined.tmp"; acc="$WORK/joined.tmp"; done
        cat "$acc"
    }
    join_tables | awk -v n="${#ARCHS[@]}" '{
        printf "%-28s", $1
        for (i = 0; i < n; i++) printf " | %9d %5d %5d", $(2 + 3 * i), $(3 + 3 * i), $(4 + 3 * i)
        printf "\n" }'
} >"$WORK/resource-usage.txt"
rm -f "$WORK/joined.tmp"

if [[ -s "$WORK/spills.txt" ]]; then
    cat "$WORK/resource-usage.txt"
    say "ERROR: register spills to local memory:" >&2
    awk '{ printf "    %s (%s): %s bytes spill stores, %s bytes spill loads\n", $1, $2, $3, $4 }' "$WORK/spills.txt" >&2
    say "fix the kernel(s) above (fewer live values, smaller tiles, __launch_bounds__) so that nothing spills" >&2
    exit 1
fi

# ------------------------------------------------------------------ pack
images=()
for a in "${ARCHS[@]}"; do images+=("--image3=kind=elf,sm=$a,file=$WORK/sm_$a.cubin"); done
images+=("--image3=kind=ptx,sm=$PTX_ARCH,file=$WORK/compute_$PTX_ARCH.ptx")
"$FATBINARY" --create="$WORK/tenfold.fatbin" -64 --compress-mode=none "${images[@]}"
cp "$WORK/tenfold.fatbin" "$WORK/resource-usage.txt" "$OUT/"
write_properties built "compiled"
echo "$HASH" >"$WORK/hash"

say "built $OUT/tenfold.fatbin ($(( $(wc -c <"$WORK/tenfold.fatbin") / 1024 )) KiB: ${#CU_FILES[@]} files, $(wc -l <"$WORK/kernels.txt") kernels, SASS $(printf 'sm_%s ' "${ARCHS[@]}")+ PTX compute_$PTX_ARCH, nvcc $NVCC_VERSION) in $((SECONDS - START)) s"
cat "$WORK/resource-usage.txt"
