#!/usr/bin/env bash
# Compiles the kernel family files with g++ against cuda_emulation.h (CUDA mapped onto fibers on
# the host) and runs kernels_test.cpp, which checks every family against double references.
# No GPU needed; needs g++ (C++20) and the CUDA headers (cuda_bf16.h, cuda_fp16.h).
#   src/test/emulation/run.sh [WORK_DIR]     (default native-kernels/target/emulation)
# Exit status: 0 all checks pass, 1 a check failed or the build broke, 77 skipped (no g++ or no
# CUDA headers; the reason is printed). HostEmulationTest runs this during `mvn test`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULE="$(cd "$HERE/../../.." && pwd)"
WORK="${1:-$MODULE/target/emulation}"
CXX="${CXX:-g++}"

command -v "$CXX" >/dev/null 2>&1 || { echo "skipped: no C++ compiler ($CXX) on PATH"; exit 77; }
inc=""
for d in ${CUDA_HOME:+"$CUDA_HOME/include"} "$(dirname "$(command -v nvcc 2>/dev/null || echo /x/bin/nvcc)")/../include" \
         /usr/local/cuda/include; do
    if [[ -f "$d/cuda_bf16.h" ]]; then inc="$d"; break; fi
done
[[ -n "$inc" ]] || { echo "skipped: CUDA headers (cuda_bf16.h) not found in \$CUDA_HOME/include, beside nvcc or in /usr/local/cuda/include"; exit 77; }

mkdir -p "$WORK"
BIN="$WORK/kernels_test"
# Rebuild when a kernel, the harness or this script is newer than the binary.
if [[ ! -x "$BIN" || -n "$(find "$MODULE/src/main/cuda" "$HERE" -newer "$BIN" -type f -print -quit)" ]]; then
    start=$SECONDS
    "$CXX" -std=c++20 -O1 -ffp-contract=off -Wall -Wno-unknown-pragmas \
        -I"$HERE" -I"$MODULE/src/main/cuda" -I"$inc" "$HERE/kernels_test.cpp" -o "$BIN.tmp"
    mv "$BIN.tmp" "$BIN"
    echo "compiled the kernels for host emulation in $((SECONDS - start)) s"
fi
"$BIN"
