#!/usr/bin/env bash
# Builds and runs the flash attention emulator test: the CUDA kernels of
# native-kernels/src/main/cuda/flash_attention_*.cu, unchanged, on a host warp emulator, against a
# double-precision reference. Needs g++ (C++17, x86-64) and nothing else: the CUDA toolkit's
# headers are used when present, else the stand-ins in stub/.
#   native-kernels/src/test/cpp/run_flash_emu.sh [--quick]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
inc=${CUDA_HOME:-/usr/local/cuda}/include
[ -f "$inc/cuda_bf16.h" ] || inc="$here/stub"
out=${TMPDIR:-/tmp}/flash_emu_test
g++ -std=c++17 -O2 -Wall -Wno-unknown-pragmas -I"$inc" -o "$out" "$here/flash_emu_test.cpp"
exec "$out" "$@"
