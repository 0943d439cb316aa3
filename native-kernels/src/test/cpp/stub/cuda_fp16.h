// Stand-in for the CUDA toolkit's cuda_fp16.h (see cuda_bf16.h here).
#pragma once
struct __half {
    unsigned short x;
};
