// Host emulation of the small CUDA subset the tenfold kernels use, so that g++ can compile the
// family files unchanged and run them on a machine without a GPU (kernels_test.cpp).
//
// Model: a launch runs its blocks one after another. The threads of a block are fibers
// (ucontext) on the calling thread, run round-robin; a fiber runs until it reaches
// __syncthreads or a warp shuffle, where it waits until every live thread of its block (or warp)
// has arrived. A thread that returns no longer counts at barriers, as on the GPU. __shared__
// variables become function statics: one copy, used by the block that is running. Because a
// fiber runs alone until its next barrier, a missing __syncthreads shows up deterministically
// (thread 0 reads shared memory before thread 1 has written it), and a barrier some threads never
// reach is reported as a deadlock.
//
// What it does not model: true concurrency and the memory model, nvcc's fma contraction (compile
// with -ffp-contract=off), CUDA's libm (glibc's expf/sincosf are correctly rounded or nearly so;
// CUDA's are within 2 ulp), performance. It checks index arithmetic, alignment paths, reductions
// and semantics, which is what it is for.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <ucontext.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#undef __shared__
#define __shared__ static
#undef __constant__
#define __constant__

inline uint3 threadIdx, blockIdx;  // set by the scheduler before it switches to a fiber
inline dim3 blockDim, gridDim;

namespace emu {

// A barrier among the live threads of a block or a warp.
struct Group {
    int participants = 0, arrived = 0;
    unsigned long generation = 0;
};

struct Fiber {
    ucontext_t ctx;
    bool done = false;
    const Group* waiting = nullptr;  // the barrier it waits at, until that group's generation moves on
    unsigned long wait_generation = 0;
};

constexpr size_t STACK_BYTES = 256 * 1024;
inline ucontext_t scheduler;
inline std::vector<Fiber> fibers;
inline std::vector<std::unique_ptr<char[]>> stacks;
inline std::vector<Group> warp_groups;
inline Group block_group;
inline std::vector<unsigned char> slots;  // 8 bytes per thread, for shuffles
inline int current = 0;
inline std::function<void()> body;

inline void release_if_complete(Group& g) {
    if (g.arrived > 0 && g.arrived >= g.participants) {
        g.arrived = 0;
        g.generation++;
    }
}

inline void arrive(Group& g) {
    const unsigned long gen = g.generation;
    g.arrived++;
    release_if_complete(g);
    if (g.generation != gen) return;
    fibers[current].waiting = &g;
    fibers[current].wait_generation = gen;
    swapcontext(&fibers[current].ctx, &scheduler);  // the scheduler resumes it once g is released
    fibers[current].waiting = nullptr;
}

inline void leave(Group& g) {
    g.participants--;
    release_if_complete(g);
}

inline Group& my_warp() { return warp_groups[threadIdx.x / 32]; }

inline void trampoline() {
    body();
    fibers[current].done = true;
    leave(my_warp());
    leave(block_group);
}  // returns to uc_link: the scheduler

// Runs kernel(args...) on `grid` blocks of `threads` threads (1-D, as all tenfold kernels).
template <class... P, class... A>
void launch(void (*kernel)(P...), unsigned grid, unsigned threads, A... args) {
    body = [&] { kernel(static_cast<P>(args)...); };
    fibers.assign(threads, Fiber{});
    while (stacks.size() < threads) stacks.push_back(std::make_unique<char[]>(STACK_BYTES));
    slots.assign(threads * 8, 0);
    gridDim = dim3(grid, 1, 1);
    blockDim = dim3(threads, 1, 1);
    for (unsigned b = 0; b < grid; b++) {
        blockIdx = uint3{b, 0, 0};
        block_group = Group{static_cast<int>(threads), 0, 0};
        warp_groups.assign((threads + 31) / 32, Group{});
        for (unsigned t = 0; t < threads; t++) warp_groups[t / 32].participants++;
        for (unsigned t = 0; t < threads; t++) {
            Fiber& f = fibers[t];
            f.done = false;
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = stacks[t].get();
            f.ctx.uc_stack.ss_size = STACK_BYTES;
            f.ctx.uc_link = &scheduler;
            makecontext(&f.ctx, trampoline, 0);
        }
        for (bool live = true; live;) {
            live = false;
            bool ran = false;
            for (unsigned t = 0; t < threads; t++) {
                Fiber& f = fibers[t];
                if (f.done) continue;
                live = true;
                if (f.waiting != nullptr && f.waiting->generation == f.wait_generation) continue;  // still blocked
                current = static_cast<int>(t);
                threadIdx = uint3{t, 0, 0};
                swapcontext(&scheduler, &f.ctx);
                ran = true;
            }
            if (live && !ran) {
                std::fprintf(stderr, "emulation: deadlock in block %u: a barrier or shuffle not reached by every live thread\n", b);
                std::abort();
            }
        }
    }
}

}  // namespace emu

inline void __syncthreads() { emu::arrive(emu::block_group); }

template <class T>
T emu_shuffle(T v, int src_lane) {
    static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
    const int warp_base = static_cast<int>(threadIdx.x & ~31u);
    std::memcpy(&emu::slots[threadIdx.x * 8], &v, sizeof(T));
    emu::arrive(emu::my_warp());
    T r;
    std::memcpy(&r, &emu::slots[(warp_base + (src_lane & 31)) * 8], sizeof(T));
    emu::arrive(emu::my_warp());  // nobody overwrites a slot before the whole warp has read
    return r;
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int mask) {
    return emu_shuffle(v, static_cast<int>(threadIdx.x & 31) ^ mask);
}
template <class T>
T __shfl_sync(unsigned, T v, int src) {
    return emu_shuffle(v, src);
}

inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline int atomicCAS(int* p, int expected, int desired) {
    std::atomic_ref<int>(*p).compare_exchange_strong(expected, desired);
    return expected;  // the old value, whether or not it was swapped
}

inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float __fmul_rn(float a, float b) { return a * b; }  // with -ffp-contract=off: never fused
inline float __fadd_rn(float a, float b) { return a + b; }
inline int min(int a, int b) { return a < b ? a : b; }
using std::signbit;
