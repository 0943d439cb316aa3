// A small CUDA warp emulator for the host, just enough to run the flash attention kernels
// (native-kernels/src/main/cuda/flash_attention_*.cu) unchanged on the CPU, with no GPU:
// every CUDA thread is a fiber (own stack, x86-64 context switch); __syncthreads is a block barrier; the warp-collective
// instructions the kernels use (mma.sync m16n8k16 bf16, ldmatrix .x4 [.trans], shfl.xor) are
// computed from all 32 lanes' operands exactly as the PTX ISA lays out the fragments; cp.async
// either copies at issue or (deferred mode) poisons its destination with NaNs at issue and copies at
// the wait_group that retires it, so a read that is not ordered after the wait sees NaNs.
// Blocks run concurrently, at most `resident` at a time, launched in linear block order (as the
// hardware dispatches them; reverse_dispatch breaks that order on purpose), and warps are
// interleaved in round-robin or random order. A wait with a time bound (the deterministic
// backward's semaphore) is not taken for a deadlock: it ends by itself.
//
// What it checks: fragment layouts, index arithmetic, masking, tails, barriers and cp.async group
// accounting, shared-memory bounds (every shared access is checked against the dynamic size the
// launch gives, i.e. TF_FLASH_*_SMEM) and 16-byte alignment, the deterministic-mode semaphores.
// What it does not: timing, bank conflicts, the hardware's exact rounding inside mma (sums here are
// in double), memory-model subtleties beyond the orders above.
#pragma once

#include <cuda_bf16.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <vector>

// cuda_bf16.h (through host_defines.h) defines these for host compilers already; make them plain.
#undef __device__
#undef __global__
#undef __forceinline__
#undef __launch_bounds__
#undef __align__
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n)

static inline float __uint_as_float(unsigned int u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
static inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    std::memcpy(&u, &f, 4);
    return u;
}

// Minimal x86-64 context switch (glibc's swapcontext makes a sigprocmask system call per switch,
// which dominated the run time): saves the callee-saved registers, MXCSR and the x87 control word
// on the current stack, stores the stack pointer to *save, and resumes the context whose stack
// pointer is `load`.
extern "C" void tf_emu_switch(void** save, void* load);
asm(R"(
    .text
    .globl tf_emu_switch
    .type tf_emu_switch,@function
tf_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tf_emu_switch,.-tf_emu_switch
)");

namespace tf_emu {

typedef unsigned int u32;

struct Dim3 {
    unsigned x, y, z;
};

struct Copy {
    u32 dst;
    const void* src;
    int n, cap;  // bytes read from src; bytes written (the rest zero-filled)
};

struct Block;

struct Fiber {
    void* sp = nullptr;  // saved stack pointer while switched out
    std::vector<char> stack;
    Dim3 tidx;
    int tid = 0;
    Block* blk = nullptr;
    bool done = false;
    int parity = 0;  // which of the warp's two operand slot sets the next collective uses
    std::vector<Copy> open;
    std::deque<std::vector<Copy>> groups;
};

struct Warp {
    int arrived = 0, exited = 0;
    unsigned gen = 0;
    u32 slot[2][32][8];
};

struct Block {
    Dim3 bidx;
    std::vector<unsigned char> smem;
    int arrived = 0, exited = 0, live = 0, nthreads = 0;
    int vote = 0, vote_result = 0;  // __syncthreads_or: the OR so far, and the last barrier's
    int slow_warp = 0;  // random mode: the warp that runs least often
    unsigned gen = 0;
    std::vector<Warp> warps;
    std::vector<Fiber*> fibers;
};

struct State {
    Fiber* cur = nullptr;
    void* sched_sp = nullptr;
    Dim3 grid{1, 1, 1}, block{1, 1, 1};
    std::function<void()> body;
    bool defer_copies = true;
    bool random_order = false;
    bool reverse_dispatch = false;  // launch blocks in reverse linear order (breaks the hardware's order)
    long long bounded_waits = 0;    // spins of waits that end by themselves (not a deadlock)
    unsigned long long wait_ns = 10000000000ull;  // the kernels' TF_FLASH_BWD_WAIT_NS (settable per test)
    std::mt19937_64 rng{1};
    long long progress = 0;
    long long ops = 0;  // collectives executed (statistics)
};
inline State& S() {
    static State s;
    return s;
}

[[noreturn]] inline void fail(const char* what) {
    Fiber* f = S().cur;
    if (f)
        std::fprintf(stderr, "emu: %s (block %u,%u,%u thread %d)\n", what, f->blk->bidx.x, f->blk->bidx.y,
                     f->blk->bidx.z, f->tid);
    else
        std::fprintf(stderr, "emu: %s\n", what);
    std::abort();
}

inline void yield() { tf_emu_switch(&S().cur->sp, S().sched_sp); }

inline Warp& warp() { return S().cur->blk->warps[S().cur->tid >> 5]; }
inline int lane() { return S().cur->tid & 31; }

// All (live) lanes of the warp arrive before any leaves.
inline void warp_barrier() {
    Warp& w = warp();
    const unsigned gen = w.gen;
    if (++w.arrived + w.exited == 32) {
        w.arrived = 0;
        ++w.gen;
        ++S().progress;
    } else {
        while (w.gen == gen) yield();
    }
}

// A collective: deposit this lane's operands, wait for the warp, then read anyone's operands from
// slots(). Two slot sets alternate, so a lane running ahead into the next collective cannot
// overwrite operands that a slower lane is still reading (it would first have to pass a barrier
// that the slow lane has not reached).
inline void collective_begin(const u32* in, int n) {
    Fiber* f = S().cur;
    std::memcpy(warp().slot[f->parity][lane()], in, n * 4);
    warp_barrier();
    ++S().ops;
}
inline const u32* slot(int l) { return warp().slot[S().cur->parity][l]; }
inline void collective_end() { S().cur->parity ^= 1; }

// Releases a block barrier whose last thread has arrived (or exited).
inline void release_block(Block* b) {
    b->arrived = 0;
    b->vote_result = b->vote;
    b->vote = 0;
    ++b->gen;
}

inline void syncthreads() {
    Block* b = S().cur->blk;
    const unsigned gen = b->gen;
    if (++b->arrived + b->exited == b->nthreads) {
        release_block(b);
        ++S().progress;
    } else {
        while (b->gen == gen) yield();
    }
}

// __syncthreads_or: a block barrier that returns whether any thread passed a non-zero flag.
inline bool syncthreads_or(int flag) {
    Block* b = S().cur->blk;
    b->vote |= flag != 0;
    syncthreads();
    return b->vote_result != 0;  // read before this thread can reach the next barrier
}

// %globaltimer: wall-clock nanoseconds.
inline unsigned long long now_ns() {
    return static_cast<unsigned long long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

inline unsigned char* smem_at(u32 addr, int bytes, int align) {
    Block* b = S().cur->blk;
    if (addr % align) fail("misaligned shared-memory access");
    if (static_cast<size_t>(addr) + bytes > b->smem.size()) fail("shared-memory access past the dynamic size");
    return b->smem.data() + addr;
}
inline void sts(u32 addr, const void* v, int bytes) { std::memcpy(smem_at(addr, bytes, bytes), v, bytes); }
inline void lds(u32 addr, void* v, int bytes) { std::memcpy(v, smem_at(addr, bytes, bytes), bytes); }

inline void do_copy(const Copy& c) {
    unsigned char* d = smem_at(c.dst, c.cap, c.cap);
    if (c.n) std::memcpy(d, c.src, c.n);
    if (c.cap > c.n) std::memset(d + c.n, 0, c.cap - c.n);
}
inline void cp_async(u32 dst, const void* src, int n, int cap) {
    if (n && (reinterpret_cast<uintptr_t>(src) % cap)) fail("misaligned cp.async source");
    Copy c{dst, src, n, cap};
    if (!S().defer_copies) {
        do_copy(c);
        return;
    }
    std::memset(smem_at(dst, cap, cap), 0xff, cap);  // NaN until the wait that retires the group
    if (n) {
        volatile unsigned char probe = *static_cast<const unsigned char*>(src);  // touch now: a bad
        probe = *(static_cast<const unsigned char*>(src) + n - 1);               // address faults here
        (void)probe;
    }
    S().cur->open.push_back(c);
}
inline void cp_async_commit() {
    Fiber* f = S().cur;
    f->groups.push_back(std::move(f->open));
    f->open.clear();
}
inline void cp_async_wait(int n) {
    Fiber* f = S().cur;
    while (static_cast<int>(f->groups.size()) > n) {
        for (const Copy& c : f->groups.front()) do_copy(c);
        f->groups.pop_front();
    }
}

inline u32 bf16_rn(float x) {  // f32 -> bf16 bits, round to nearest even (NaN kept quiet)
    u32 u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}
inline float bf16_f(u32 bits) { return __uint_as_float((bits & 0xffffu) << 16); }

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lane 8i + r gives the address of row r of
// matrix i. Non-trans: register i of lane l = row l/4, elements 2(l%4) (low), 2(l%4)+1 (high).
// Trans: register i of lane l = elements (row 2(l%4), col l/4) (low) and (row 2(l%4)+1, col l/4).
inline void ldmatrix_x4(u32 addr, u32 (&r)[4], bool trans) {
    collective_begin(&addr, 1);
    const int l = lane();
    for (int i = 0; i < 4; ++i) {
        if (!trans) {
            const u32 row = slot(8 * i + (l >> 2))[0];
            const unsigned char* p = smem_at(row, 16, 16);
            std::memcpy(&r[i], p + 4 * (l & 3), 4);
        } else {
            const u32 row0 = slot(8 * i + 2 * (l & 3))[0], row1 = slot(8 * i + 2 * (l & 3) + 1)[0];
            uint16_t lo, hi;
            std::memcpy(&lo, smem_at(row0, 16, 16) + 2 * (l >> 2), 2);
            std::memcpy(&hi, smem_at(row1, 16, 16) + 2 * (l >> 2), 2);
            r[i] = lo | (static_cast<u32>(hi) << 16);
        }
    }
    collective_end();
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, fragments per the PTX ISA (g = lane/4,
// t = lane%4): A a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..), a[3] = (g+8, 2t+8..);
// B b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g); C/D d[0..1] = (g, 2t..2t+1), d[2..3] = (g+8, ..).
inline float mma_a(int row, int k) {  // element A[row][k], from the lane that holds it
    const int holder = 4 * (row & 7) + ((k & 7) >> 1);
    const int reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
    const u32 v = slot(holder)[reg];
    return bf16_f((k & 1) ? v >> 16 : v);
}
inline float mma_b(int k, int n) {  // element B[k][n]
    const int holder = 4 * n + ((k & 7) >> 1);
    const u32 v = slot(holder)[4 + (k >= 8 ? 1 : 0)];
    return bf16_f((k & 1) ? v >> 16 : v);
}
inline void mma_m16n8k16(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    const u32 in[6] = {a[0], a[1], a[2], a[3], b0, b1};
    collective_begin(in, 6);
    const int g = lane() >> 2, t = lane() & 3;
    for (int e = 0; e < 4; ++e) {
        const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        double sum = d[e];
        for (int k = 0; k < 16; ++k) sum += static_cast<double>(mma_a(row, k)) * mma_b(k, col);
        d[e] = static_cast<float>(sum);
    }
    collective_end();
}

inline float shfl_xor(float v, int mask) {
    const u32 in = __float_as_uint(v);
    collective_begin(&in, 1);
    const float r = __uint_as_float(slot(lane() ^ mask)[0]);
    collective_end();
    return r;
}

inline void atomic_add(float* p, float v) {
    *p += v;
    ++S().progress;
}
inline void atomic_add_int(int* p, int v) {
    *p += v;
    ++S().progress;
}
inline void spin_yield() { yield(); }
// A spin of a wait that ends by itself (it has a time bound): the deadlock check leaves it alone.
inline void bounded_wait_yield() {
    ++S().bounded_waits;
    yield();
}

inline void fiber_entry() {
    S().body();
    Fiber* f = S().cur;
    bool in_flight = !f->open.empty();
    for (const auto& grp : f->groups) in_flight |= !grp.empty();
    // Not an error in CUDA (the copies complete anyway), but no kernel here should leave a copy
    // unwaited: it would be a load nobody reads, or a read that raced it. (Empty groups are fine.)
    if (in_flight) fail("thread exited with cp.async copies in flight");
    f->done = true;
    Block* b = f->blk;
    --b->live;
    // An exited thread no longer holds up barriers.
    Warp& w = b->warps[f->tid >> 5];
    ++w.exited;
    if (w.arrived > 0 && w.arrived + w.exited == 32) {
        w.arrived = 0;
        ++w.gen;
    }
    ++b->exited;
    if (b->arrived > 0 && b->arrived + b->exited == b->nthreads) release_block(b);
    ++S().progress;
    tf_emu_switch(&f->sp, S().sched_sp);
    fail("resumed a finished thread");
}

// A fresh fiber stack whose first switch "returns" into fiber_entry: below the 16-byte aligned top,
// the return address, six callee-saved registers (zero) and the MXCSR / x87 control word defaults;
// fiber_entry starts with rsp = 8 (mod 16), as after a call.
inline void* fiber_stack_init(std::vector<char>& stack) {
    uintptr_t top = (reinterpret_cast<uintptr_t>(stack.data()) + stack.size()) & ~static_cast<uintptr_t>(15);
    uint64_t* sp = reinterpret_cast<uint64_t*>(top - 72);
    sp[0] = 0x1f80ull | (0x037full << 32);  // MXCSR (low 4 bytes), x87 control word (next 2)
    for (int i = 1; i <= 6; ++i) sp[i] = 0;  // r15 r14 r13 r12 rbx rbp
    sp[7] = reinterpret_cast<uint64_t>(&fiber_entry);
    return sp;
}

// Runs `body` (the kernel call) over the grid. resident: how many blocks run at once.
inline void launch(Dim3 grid, Dim3 block, size_t smem_bytes, int resident, std::function<void()> body) {
    State& s = S();
    s.grid = grid;
    s.block = block;
    s.body = std::move(body);
    const int nthreads = static_cast<int>(block.x * block.y * block.z);
    if (nthreads % 32) fail("block size must be a multiple of 32");
    const long long nblocks = static_cast<long long>(grid.x) * grid.y * grid.z;
    long long next = 0;
    std::vector<Block*> active;
    const size_t stack_bytes = 128 * 1024;
    while (true) {
        while (static_cast<int>(active.size()) < resident && next < nblocks) {
            Block* b = new Block();
            const long long id = s.reverse_dispatch ? nblocks - 1 - next : next;
            b->bidx = Dim3{static_cast<unsigned>(id % grid.x), static_cast<unsigned>((id / grid.x) % grid.y),
                           static_cast<unsigned>(id / (static_cast<long long>(grid.x) * grid.y))};
            b->smem.assign(smem_bytes, 0xff);  // garbage (bf16/f32 NaN) until written
            b->nthreads = b->live = nthreads;
            b->warps.resize(nthreads / 32);
            b->slow_warp = static_cast<int>(s.rng() % (nthreads / 32));
            for (int t = 0; t < nthreads; ++t) {
                Fiber* f = new Fiber();
                f->tid = t;
                f->tidx = Dim3{static_cast<unsigned>(t % block.x), static_cast<unsigned>((t / block.x) % block.y),
                               static_cast<unsigned>(t / (block.x * block.y))};
                f->blk = b;
                f->stack.resize(stack_bytes);
                f->sp = fiber_stack_init(f->stack);
                b->fibers.push_back(f);
            }
            active.push_back(b);
            ++next;
        }
        if (active.empty()) break;
        // One round: a warp (random, or each in turn) runs each of its live lanes until it blocks.
        long long before = s.progress, waits_before = s.bounded_waits;
        // Random mode: shuffled warp order, and each warp runs in a round only with some
        // probability, much lower for one "slow" warp per block, so that warps drift many
        // instructions apart between barriers (a missing barrier then lets a fast warp overwrite
        // shared memory that a slow one still reads).
        std::vector<std::pair<Block*, int>> order;
        std::uniform_real_distribution<double> coin(0.0, 1.0);
        for (Block* b : active)
            for (int w = 0; w < nthreads / 32; ++w)
                if (!s.random_order || coin(s.rng) < (w == b->slow_warp ? 0.1 : 0.8)) order.push_back({b, w});
        if (order.empty())
            for (Block* b : active)
                for (int w = 0; w < nthreads / 32; ++w) order.push_back({b, w});
        if (s.random_order) std::shuffle(order.begin(), order.end(), s.rng);
        for (auto& bw : order) {
            for (int l = 0; l < 32; ++l) {
                Fiber* f = bw.first->fibers[bw.second * 32 + l];
                if (f->done) continue;
                s.cur = f;
                tf_emu_switch(&s.sched_sp, f->sp);
                s.cur = nullptr;
            }
        }
        for (size_t i = 0; i < active.size();) {
            Block* b = active[i];
            if (b->live == 0) {
                for (Fiber* f : b->fibers) delete f;
                delete b;
                active.erase(active.begin() + i);
                ++s.progress;
            } else {
                ++i;
            }
        }
        static long long idle_rounds = 0;
        idle_rounds = (s.progress == before && s.bounded_waits == waits_before) ? idle_rounds + 1 : 0;
        if (idle_rounds > 2000) fail("deadlock: no thread made progress");
    }
}

}  // namespace tf_emu

#define threadIdx (::tf_emu::S().cur->tidx)
#define blockIdx (::tf_emu::S().cur->blk->bidx)
#define blockDim (::tf_emu::S().block)
#define gridDim (::tf_emu::S().grid)

#define TF_FLASH_EMU 1
#define TF_FLASH_BWD_WAIT_NS (::tf_emu::S().wait_ns)
