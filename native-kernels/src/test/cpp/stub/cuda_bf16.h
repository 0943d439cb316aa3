// Stand-in for the CUDA toolkit's cuda_bf16.h where the toolkit is not installed: the host
// emulator test (flash_emu_test.cpp) only needs the type names that tenfold_kernels.h uses.
#pragma once
#include "cuda_fp16.h"
struct __nv_bfloat16 {
    unsigned short x;
};
struct uint4 {
    unsigned int x, y, z, w;
};
