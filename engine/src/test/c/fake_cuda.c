// A fake CUDA stack for testing the Java host side without a GPU: the driver API, cuBLAS and NCCL
// entry points that tenfold binds, with "device" memory in host RAM and every kernel of
// tenfold_kernels.h as a plain (slow, single-threaded) host loop. It checks what a real driver would
// reject (argument ranges, leading dimensions, kernel argument counts by name) and nothing about speed.
// Built by FakeCudaTest with the system C compiler and loaded through TENFOLD_CUDA_LIBS as
// libcuda.so.1, libcublas.so.13 and libnccl.so.2 (one file, three names).
//
// Faults on demand, for the tests of what a broken GPU run must say (environment variables):
//   FAKE_CUDA_DRIVER_VERSION=N       cuDriverGetVersion reports N (default 13000)
//   FAKE_CUDA_MODULE_LOAD_ERROR=N    cuModuleLoadData fails with CUresult N (e.g. 209, no binary for this GPU)
//   FAKE_CUDA_FAULT_KERNEL=name      launching that kernel is CUDA_ERROR_ILLEGAL_ADDRESS, sticky: every later
//                                    call that touches the context fails the same way, as after a real fault
//   FAKE_CUDA_HANG_KERNEL=name       launching that kernel never returns (a hung kernel under CUDA_LAUNCH_BLOCKING)
//   FAKE_CUDA_FLASH_ORDER_TIMEOUT=1  the deterministic flash backward reports TF_FLASH_BWD_ERR_WAIT_TIMEOUT in its
//                                    error word, as the kernel does when blocks do not run in launch order
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef uint16_t bf16;

#define FAKE_TOTAL (80ull << 30)
static unsigned long long allocated;
static int launches;
static int sticky;                      // a sticky CUresult: every later call touching the context returns it
static int context_refs, module_loads;  // primary context retains minus releases; cuModuleLoadData calls
int fake_cuda_context_refs(void) { return context_refs; }
int fake_cuda_module_loads(void) { return module_loads; }

static int env_int(const char* name, int unset) { const char* v = getenv(name); return v && *v ? atoi(v) : unset; }
static int env_is(const char* name, const char* value) { const char* v = getenv(name); return v && strcmp(v, value) == 0; }
#define STICKY() do { if (sticky) return sticky; } while (0)

// ------------------------------------------------------------------ numerics
static float bf2f(bf16 h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
static bf16 f2bf(float f) {
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40);
    return (bf16)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}
static float h2f(uint16_t h) { _Float16 x; memcpy(&x, &h, 2); return (float)x; }
static uint16_t f2h(float f) { _Float16 x = (_Float16)f; uint16_t h; memcpy(&h, &x, 2); return h; }

// ------------------------------------------------------------------ driver API
static const char* NAMES[] = {[0] = "CUDA_SUCCESS", [1] = "CUDA_ERROR_INVALID_VALUE", [2] = "CUDA_ERROR_OUT_OF_MEMORY"};
CUresult cuGetErrorName(CUresult e, const char** s) {
    if (e == 500) { *s = "CUDA_ERROR_NOT_FOUND"; return 0; }
    if (e < 0 || e > 2) { *s = NULL; return 1; }
    *s = NAMES[e];
    return 0;
}
CUresult cuInit(unsigned int flags) { return flags == 0 ? 0 : 1; }
CUresult cuDriverGetVersion(int* v) { *v = env_int("FAKE_CUDA_DRIVER_VERSION", 13000); return 0; }
CUresult cuDeviceGetCount(int* c) { *c = 1; return 0; }
CUresult cuDeviceGet(int* d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
CUresult cuDeviceGetName(char* name, int len, int dev) { snprintf(name, len, "Fake GPU %d", dev); return 0; }
CUresult cuDeviceTotalMem_v2(size_t* bytes, int dev) { *bytes = FAKE_TOTAL; return dev == 0 ? 0 : 101; }
CUresult cuDeviceGetAttribute(int* v, int attr, int dev) {
    switch (attr) {
        case 75: *v = 9; break;
        case 76: *v = 0; break;
        case 16: *v = 132; break;
        case 97: *v = 232448; break;
        case 11: *v = 2147483647; break; // CU_DEVICE_ATTRIBUTE_MAX_PITCH
        default: *v = 1;
    }
    return dev == 0 ? 0 : 101;
}
static int context_token;
CUresult cuDevicePrimaryCtxRetain(void** ctx, int dev) { if (dev != 0) return 101; *ctx = &context_token; context_refs++; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(int dev) { if (dev != 0) return 101; context_refs--; return 0; }
static __thread void* current;
CUresult cuCtxSetCurrent(void* ctx) { current = ctx; return 0; }
CUresult cuCtxSynchronize(void) { STICKY(); return 0; }
static int module_token;
CUresult cuModuleLoadData(void** module, const void* image) {
    module_loads++;
    if (env_int("FAKE_CUDA_MODULE_LOAD_ERROR", 0)) return env_int("FAKE_CUDA_MODULE_LOAD_ERROR", 0);
    *module = image ? &module_token : NULL;
    return image ? 0 : 1;
}
CUresult cuModuleUnload(void* module) { return 0; }
typedef struct { char name[64]; } Function;
CUresult cuModuleGetFunction(void** f, void* module, const char* name) {
    if (module != &module_token) return 400;
    if (strncmp(name, "tf_", 3) != 0) return 500;
    Function* fn = calloc(1, sizeof(Function));
    strncpy(fn->name, name, 63);
    *f = fn;
    return 0;
}
CUresult cuFuncSetAttribute(void* f, int attr, int value) { return attr == 8 && value <= 232448 ? 0 : 1; }
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
    STICKY();
    if (current != &context_token) return 201; // CUDA_ERROR_INVALID_CONTEXT: no context current on this thread
    if (bytes == 0) return 1;
    if (allocated + bytes > FAKE_TOTAL) return 2;
    void* m = aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!m) return 2;
    allocated += bytes;
    *p = (CUdeviceptr)m;
    return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) { free((void*)p); return 0; }
CUresult cuMemGetInfo_v2(size_t* free_, size_t* total) { *free_ = FAKE_TOTAL - allocated; *total = FAKE_TOTAL; return 0; }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void* s) { STICKY(); memcpy((void*)dst, src, n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void* s) { STICKY(); memcpy(dst, (void*)src, n); return 0; }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void* s) { STICKY(); memmove((void*)dst, (void*)src, n); return 0; }
// CUDA_MEMCPY2D as cuda.h (13.0) declares it, field for field: the Java StructLayout must put each field where this does.
typedef struct {
    size_t srcXInBytes, srcY;
    int srcMemoryType;
    const void* srcHost;
    CUdeviceptr srcDevice;
    void* srcArray;
    size_t srcPitch;
    size_t dstXInBytes, dstY;
    int dstMemoryType;
    void* dstHost;
    CUdeviceptr dstDevice;
    void* dstArray;
    size_t dstPitch;
    size_t WidthInBytes, Height;
} CUDA_MEMCPY2D;
int fake_cuda_copies_2d = 0;
// Device to device only (what tenfold asks for); anything else in the struct is a mistake on the Java side.
CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* p, void* s) {
    STICKY();
    if (p->srcMemoryType != 2 || p->dstMemoryType != 2 || p->srcHost || p->dstHost || p->srcArray || p->dstArray) return 1;
    if (p->srcPitch < p->WidthInBytes + p->srcXInBytes || p->dstPitch < p->WidthInBytes + p->dstXInBytes) return 1;
    const char* from = (const char*)p->srcDevice + p->srcY * p->srcPitch + p->srcXInBytes;
    char* to = (char*)p->dstDevice + p->dstY * p->dstPitch + p->dstXInBytes;
    for (size_t i = 0; i < p->Height; i++) memcpy(to + i * p->dstPitch, from + i * p->srcPitch, p->WidthInBytes);
    fake_cuda_copies_2d++;
    return 0;
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void* s) { STICKY(); memset((void*)dst, v, n); return 0; }
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, void* s) {
    STICKY();
    if (dst % 4) return 1;
    for (size_t i = 0; i < n; i++) ((unsigned int*)dst)[i] = v;
    return 0;
}
CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned int flags) { *p = malloc(bytes); return *p ? 0 : 2; }
CUresult cuMemFreeHost(void* p) { free(p); return 0; }
CUresult cuMemHostRegister_v2(void* p, size_t bytes, unsigned int flags) { return 0; }
CUresult cuMemHostUnregister(void* p) { return 0; }
// Streams: the first one made is stream_token (the backend's, which cuBLAS and NCCL are given); later ones
// (copyAsync's) are other tokens. Work runs synchronously, so a stream only has to be one of these.
static int stream_token, more_streams[4], streams_made;
static int known_stream(void* s) {
    if (s == NULL || s == &stream_token) return 1;
    for (int i = 0; i < 4; i++) if (s == &more_streams[i]) return 1;
    return 0;
}
int fake_cuda_streams_made(void) { return streams_made; }
CUresult cuStreamCreate(void** s, unsigned int flags) {
    if (flags > 1) return 1;
    *s = streams_made == 0 ? &stream_token : &more_streams[(streams_made - 1) % 4];
    streams_made++;
    return 0;
}
CUresult cuStreamSynchronize(void* s) { STICKY(); return known_stream(s) ? 0 : 400; }
CUresult cuStreamWaitEvent(void* s, void* e, unsigned int flags) { STICKY(); return known_stream(s) && e && flags == 0 ? 0 : 400; }
CUresult cuStreamDestroy_v2(void* s) { return 0; }
// Events: work runs synchronously here, so an event records the wall-clock time at cuEventRecord.
typedef struct { unsigned flags; int recorded; double ms; } Event;
static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
CUresult cuEventCreate(void** e, unsigned int flags) {
    if (current != &context_token) return 201;
    Event* ev = calloc(1, sizeof(Event));
    ev->flags = flags;
    *e = ev;
    return 0;
}
CUresult cuEventRecord(void* e, void* s) {
    STICKY();
    if (!e || !known_stream(s)) return 400;
    ((Event*)e)->recorded = 1;
    ((Event*)e)->ms = now_ms();
    return 0;
}
CUresult cuEventSynchronize(void* e) { STICKY(); return e ? 0 : 400; }
CUresult cuEventElapsedTime_v2(float* ms, void* a, void* b) {
    Event *ea = a, *eb = b;
    // as the driver: both recorded, both created with timing (not CU_EVENT_DISABLE_TIMING = 2)
    if (!ea || !eb || !ea->recorded || !eb->recorded || (ea->flags & 2) || (eb->flags & 2)) return 400;
    *ms = (float)(eb->ms - ea->ms);
    return 0;
}
CUresult cuEventDestroy_v2(void* e) { if (!e) return 400; free(e); return 0; }
int fake_cuda_launches(void) { return launches; }

// ------------------------------------------------------------------ kernels (host loops)
#define P(i, T) (*(T**)params[i])
#define I(i) (*(int*)params[i])
#define L(i) (*(long long*)params[i])
#define F(i) (*(float*)params[i])
#define IS(n) (strcmp(name, n) == 0)

static void flash_fwd(void** params, int D) {
    const bf16 *q = P(0, bf16), *k = P(1, bf16), *v = P(2, bf16);
    bf16* o = P(3, bf16);
    float* lse = P(4, float);
    const int *cu_q = P(5, int), *cu_k = P(6, int);
    int batch = I(7), hq = I(9), hkv = I(10);
    float scale = F(11);
    int total_q = cu_q[batch];
    for (int b = 0; b < batch; b++) {
        int q0 = cu_q[b], lq = cu_q[b + 1] - q0, k0 = cu_k[b], lk = cu_k[b + 1] - k0;
        for (int h = 0; h < hq; h++) {
            int kh = h / (hq / hkv);
            for (int i = 0; i < lq; i++) {
                int pos = lk - lq + i;
                double* s = malloc(sizeof(double) * (pos + 1));
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= pos; j++) {
                    double d = 0;
                    for (int c = 0; c < D; c++) d += (double)bf2f(q[((long)(q0 + i) * hq + h) * D + c]) * bf2f(k[((long)(k0 + j) * hkv + kh) * D + c]);
                    s[j] = d * scale;
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j <= pos; j++) sum += exp(s[j] - mx);
                for (int c = 0; c < D; c++) {
                    double acc = 0;
                    for (int j = 0; j <= pos; j++) acc += exp(s[j] - mx) / sum * bf2f(v[((long)(k0 + j) * hkv + kh) * D + c]);
                    o[((long)(q0 + i) * hq + h) * D + c] = f2bf((float)acc);
                }
                lse[(long)h * total_q + q0 + i] = (float)(mx + log(sum));
                free(s);
            }
        }
    }
}

static void flash_bwd(void** params, int D) {
    const bf16 *q = P(0, bf16), *k = P(1, bf16), *v = P(2, bf16), *dout = P(3, bf16);
    const float *lse = P(4, float), *delta = P(5, float);
    float* dq = P(6, float);
    bf16 *dk = P(7, bf16), *dv = P(8, bf16);
    const int *cu_q = P(9, int), *cu_k = P(10, int);
    int batch = I(11), hq = I(13), hkv = I(14), group = hq / hkv;
    float scale = F(15);
    if (I(16) && env_is("FAKE_CUDA_FLASH_ORDER_TIMEOUT", "1")) { // as the kernel when a wait gives up: dQ incomplete
        *P(17, int) = 1;                                        // TF_FLASH_BWD_ERR_WAIT_TIMEOUT
        return;
    }
    int total_q = cu_q[batch], total_k = cu_k[batch];
    float* dkf = calloc((size_t)total_k * hkv * D, 4);
    float* dvf = calloc((size_t)total_k * hkv * D, 4);
    for (int b = 0; b < batch; b++) {
        int q0 = cu_q[b], lq = cu_q[b + 1] - q0, k0 = cu_k[b], lk = cu_k[b + 1] - k0;
        for (int h = 0; h < hq; h++) {
            int kh = h / group;
            for (int i = 0; i < lq; i++) {
                int pos = lk - lq + i;
                long qi = ((long)(q0 + i) * hq + h) * D;
                for (int j = 0; j <= pos; j++) {
                    long kj = ((long)(k0 + j) * hkv + kh) * D;
                    double s = 0, dp = 0;
                    for (int c = 0; c < D; c++) {
                        s += (double)bf2f(q[qi + c]) * bf2f(k[kj + c]);
                        dp += (double)bf2f(dout[qi + c]) * bf2f(v[kj + c]);
                    }
                    double p = exp(s * scale - lse[(long)h * total_q + q0 + i]);
                    double ds = p * (dp - delta[(long)h * total_q + q0 + i]);
                    for (int c = 0; c < D; c++) {
                        dvf[kj + c] += (float)(p * bf2f(dout[qi + c]));
                        dkf[kj + c] += (float)(ds * bf2f(q[qi + c]) * scale);
                        dq[qi + c] += (float)(ds * bf2f(k[kj + c])); // scaled in post
                    }
                }
            }
        }
    }
    for (long e = 0; e < (long)total_k * hkv * D; e++) { dk[e] = f2bf(dkf[e]); dv[e] = f2bf(dvf[e]); }
    free(dkf);
    free(dvf);
}

static int run_kernel(const char* name, void** params) {
    if (IS("tf_add_f32")) { for (long long i = 0; i < L(3); i++) P(2, float)[i] = P(0, float)[i] + P(1, float)[i]; }
    else if (IS("tf_mul_f32")) { for (long long i = 0; i < L(3); i++) P(2, float)[i] = P(0, float)[i] * P(1, float)[i]; }
    else if (IS("tf_scale_f32")) { for (long long i = 0; i < L(3); i++) P(2, float)[i] = P(0, float)[i] * F(1); }
    else if (IS("tf_fill_f32")) { for (long long i = 0; i < L(2); i++) P(0, float)[i] = F(1); }
    else if (IS("tf_cast_f32_bf16")) { for (long long i = 0; i < L(2); i++) P(1, bf16)[i] = f2bf(P(0, float)[i]); }
    else if (IS("tf_cast_bf16_f32")) { for (long long i = 0; i < L(2); i++) P(1, float)[i] = bf2f(P(0, bf16)[i]); }
    else if (IS("tf_cast_f32_f16")) { for (long long i = 0; i < L(2); i++) P(1, uint16_t)[i] = f2h(P(0, float)[i]); }
    else if (IS("tf_cast_f16_f32")) { for (long long i = 0; i < L(2); i++) P(1, float)[i] = h2f(P(0, uint16_t)[i]); }
    else if (IS("tf_cast_bf16_f16")) { for (long long i = 0; i < L(2); i++) P(1, uint16_t)[i] = f2h(bf2f(P(0, bf16)[i])); }
    else if (IS("tf_cast_f16_bf16")) { for (long long i = 0; i < L(2); i++) P(1, bf16)[i] = f2bf(h2f(P(0, uint16_t)[i])); }
    else if (IS("tf_sum_partial_f32") || IS("tf_sumsq_partial_f32")) {
        int sq = IS("tf_sumsq_partial_f32");
        for (int b = 0; b < 1024; b++) {
            double s = 0;
            for (long long i = b; i < L(1); i += 1024) { double x = P(0, float)[i]; s += sq ? x * x : x; }
            P(2, double)[b] = s;
        }
    } else if (IS("tf_sum_final_f64")) { double s = 0; for (int b = 0; b < I(1); b++) s += P(0, double)[b]; *P(2, double) = s; }
    else if (IS("tf_max_partial_f32")) {
        for (int b = 0; b < 1024; b++) {
            float m = -INFINITY;
            for (long long i = b; i < L(1); i += 1024) { float x = P(0, float)[i]; m = (isnan(x) || x > m) && !isnan(m) ? x : m; }
            P(2, float)[b] = m;
        }
    } else if (IS("tf_max_final_f32")) {
        float m = -INFINITY;
        for (int b = 0; b < I(1); b++) { float x = P(0, float)[b]; m = (isnan(x) || x > m) && !isnan(m) ? x : m; }
        *P(2, float) = m;
    } else if (IS("tf_embedding_fwd_f32") || IS("tf_embedding_fwd_bf16")) {
        int bf = IS("tf_embedding_fwd_bf16"), T = I(3), H = I(4), V = I(5);
        for (int t = 0; t < T; t++) {
            int id = P(1, int)[t];
            if (id < 0 || id >= V) { if (*P(6, int) < 0 || t < *P(6, int)) *P(6, int) = t; }
            for (int j = 0; j < H; j++) {
                float x = id < 0 || id >= V ? 0 : bf ? bf2f(P(0, bf16)[(long)id * H + j]) : P(0, float)[(long)id * H + j];
                P(2, float)[(long)t * H + j] = x;
            }
        }
    } else if (IS("tf_embedding_bwd_f32")) {
        int T = I(3), H = I(4);
        for (int t = 0; t < T; t++) for (int j = 0; j < H; j++) P(2, float)[(long)P(1, int)[t] * H + j] += P(0, float)[(long)t * H + j];
    } else if (IS("tf_rmsnorm_fwd_f32")) {
        int rows = I(5), H = I(6);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int j = 0; j < H; j++) { double x = P(0, float)[(long)r * H + j]; ss += x * x; }
            float rs = (float)(1 / sqrt(ss / H + F(2)));
            P(4, float)[r] = rs;
            for (int j = 0; j < H; j++) P(3, float)[(long)r * H + j] = P(0, float)[(long)r * H + j] * rs * P(1, float)[j];
        }
    } else if (IS("tf_rmsnorm_bwd_f32")) {
        int rows = I(5), H = I(6);
        for (int r = 0; r < rows; r++) {
            float* dout = P(0, float) + (long)r * H; float* x = P(1, float) + (long)r * H; float* dx = P(4, float) + (long)r * H;
            float rs = P(3, float)[r];
            double m = 0;
            for (int j = 0; j < H; j++) m += (double)P(2, float)[j] * dout[j] * x[j];
            m /= H;
            for (int j = 0; j < H; j++) dx[j] = (float)(rs * (P(2, float)[j] * dout[j] - x[j] * rs * rs * m));
        }
    } else if (IS("tf_rmsnorm_dweight_f32")) {
        int rows = I(4), H = I(5);
        for (int j = 0; j < H; j++) for (int r = 0; r < rows; r++) P(3, float)[j] += P(0, float)[(long)r * H + j] * P(1, float)[(long)r * H + j] * P(2, float)[r];
    } else if (IS("tf_rope_f32") || IS("tf_rope_qk_f32")) {
        int qk = IS("tf_rope_qk_f32");
        float *in = P(0, float), *inv = P(qk ? 2 : 1, float);
        int* pos = P(qk ? 3 : 2, int);
        float sc = F(qk ? 4 : 3);
        int rows = I(qk ? 5 : 5), d = I(qk ? 8 : 7), dir = I(qk ? 9 : 8);
        int parts = qk ? 2 : 1;
        for (int part = 0; part < parts; part++) {
            float* x = part == 0 ? in : P(1, float);
            float* out = qk ? x : P(4, float);
            int heads = qk ? (part == 0 ? I(6) : I(7)) : I(6);
            for (int r = 0; r < rows; r++) for (int h = 0; h < heads; h++) for (int j = 0; j < d / 2; j++) {
                float a = (float)pos[r] * inv[j], c = cosf(a) * sc, s = sinf(a) * sc * dir;
                long base = ((long)r * heads + h) * d;
                float x0 = x[base + j], x1 = x[base + j + d / 2];
                out[base + j] = x0 * c - x1 * s;
                out[base + j + d / 2] = x1 * c + x0 * s;
            }
        }
    } else if (IS("tf_swiglu_fwd_f32")) {
        for (long long i = 0; i < L(3); i++) { float g = P(0, float)[i]; P(2, float)[i] = g / (1 + expf(-g)) * P(1, float)[i]; }
    } else if (IS("tf_swiglu_bwd_f32")) {
        for (long long i = 0; i < L(5); i++) {
            float g = P(1, float)[i], u = P(2, float)[i], d = P(0, float)[i], sg = 1 / (1 + expf(-g));
            P(3, float)[i] = d * u * sg * (1 + g * (1 - sg));
            P(4, float)[i] = d * g * sg;
        }
    } else if (IS("tf_softmax_fwd_f32")) {
        int rows = I(2), n = I(3);
        for (int r = 0; r < rows; r++) {
            float* x = P(0, float) + (long)r * n; float* y = P(1, float) + (long)r * n;
            float m = -INFINITY; double s = 0;
            for (int j = 0; j < n; j++) if (x[j] > m) m = x[j];
            for (int j = 0; j < n; j++) s += exp(x[j] - m);
            for (int j = 0; j < n; j++) y[j] = (float)(exp(x[j] - m) / s);
        }
    } else if (IS("tf_softmax_bwd_f32")) {
        int rows = I(3), n = I(4);
        for (int r = 0; r < rows; r++) {
            float *d = P(0, float) + (long)r * n, *y = P(1, float) + (long)r * n, *dx = P(2, float) + (long)r * n;
            double s = 0;
            for (int j = 0; j < n; j++) s += (double)d[j] * y[j];
            for (int j = 0; j < n; j++) dx[j] = (float)(y[j] * (d[j] - s));
        }
    } else if (IS("tf_ce_stats_f32")) {
        int T = I(2), Vc = I(3), v0 = I(4);
        for (int t = 0; t < T; t++) {
            float* l = P(0, float) + (long)t * Vc;
            int y = P(1, int)[t];
            float m = P(5, float)[t];
            for (int j = 0; j < Vc; j++) if (l[j] > m) m = l[j];
            double s = P(6, float)[t] * exp(P(5, float)[t] - m);
            for (int j = 0; j < Vc; j++) s += exp(l[j] - m);
            P(5, float)[t] = m;
            P(6, float)[t] = (float)s;
            if (y >= v0 && y < v0 + Vc) P(7, float)[t] = l[y - v0];
        }
    } else if (IS("tf_ce_grad_f32")) {
        int T = I(5), Vc = I(6), v0 = I(7);
        for (int t = 0; t < T; t++) {
            float* l = P(0, float) + (long)t * Vc;
            int y = P(1, int)[t];
            for (int j = 0; j < Vc; j++) {
                l[j] = y == -100 ? 0 : F(4) * (float)(exp(l[j] - P(2, float)[t]) / P(3, float)[t] - (y == v0 + j ? 1 : 0));
            }
        }
    } else if (IS("tf_ce_loss_f32")) {
        double loss = 0; long long count = 0;
        for (int t = 0; t < I(4); t++) {
            if (P(3, int)[t] == -100) continue;
            loss += log(P(1, float)[t]) + P(0, float)[t] - P(2, float)[t];
            count++;
        }
        *P(5, double) = loss;
        *P(6, long long) = count;
    } else if (IS("tf_adamw_f32")) {
        float lr = F(4), b1 = F(5), b2 = F(6), eps = F(7), wd = F(8), bc1 = F(9), bc2 = F(10);
        for (long long i = 0; i < L(11); i++) {
            float *p = P(0, float) + i, g = P(1, float)[i], *m = P(2, float) + i, *v = P(3, float) + i;
            *p -= lr * wd * *p;
            *m = b1 * *m + (1 - b1) * g;
            *v = b2 * *v + (1 - b2) * g * g;
            *p -= lr * (*m / bc1) / (sqrtf(*v / bc2) + eps);
        }
    } else if (IS("tf_nf4_dequant_bf16") || IS("tf_nf4_dequant_f32")) {
        static const float CODE[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f,
            0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
            0.7229568362236023f, 1.0f};
        int bf = IS("tf_nf4_dequant_bf16");
        for (long long e = 0; e < L(7); e++) {
            uint8_t byte = P(0, uint8_t)[e / 2];
            int nib = e % 2 == 0 ? byte >> 4 : byte & 15;
            long long blk = e / 64;
            float am = P(1, float) ? P(1, float)[blk] : P(4, float)[P(2, uint8_t)[blk]] * P(3, float)[blk / 256] + F(5);
            float x = CODE[nib] * am;
            if (bf) P(6, bf16)[e] = f2bf(x); else P(6, float)[e] = x;
        }
    } else if (IS("tf_flash_fwd_d64")) flash_fwd(params, 64);
    else if (IS("tf_flash_fwd_d128")) flash_fwd(params, 128);
    else if (IS("tf_flash_bwd_pre")) {
        int total_q = I(3), hq = I(4), D = I(5);
        for (int i = 0; i < total_q; i++) for (int h = 0; h < hq; h++) {
            double s = 0;
            for (int c = 0; c < D; c++) s += (double)bf2f(P(0, bf16)[((long)i * hq + h) * D + c]) * bf2f(P(1, bf16)[((long)i * hq + h) * D + c]);
            P(2, float)[(long)h * total_q + i] = (float)s;
        }
    } else if (IS("tf_flash_bwd_d64")) flash_bwd(params, 64);
    else if (IS("tf_flash_bwd_d128")) flash_bwd(params, 128);
    else if (IS("tf_flash_bwd_post")) { for (long long i = 0; i < L(3); i++) P(2, bf16)[i] = f2bf(P(0, float)[i] * F(1)); }
    else return 1;
    return 0;
}

CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned smem,
                        void* stream, void** params, void** extra) {
    if (current != &context_token) return 201;
    if (stream != &stream_token || extra != NULL || !params) return 1;
    if (gx < 1 || gy < 1 || gz < 1 || gy > 65535 || gz > 65535 || bx < 1 || bx > 1024 || by != 1 || bz != 1) return 1;
    STICKY();
    const char* name = ((Function*)f)->name;
    if (env_is("FAKE_CUDA_HANG_KERNEL", name)) for (;;) sleep(60);
    if (env_is("FAKE_CUDA_FAULT_KERNEL", name)) return sticky = 700; // CUDA_ERROR_ILLEGAL_ADDRESS
    launches++;
    return run_kernel(name, params) ? 500 : 0;
}

// ------------------------------------------------------------------ cuBLAS
typedef int cublasStatus_t;
static int handle_token;
cublasStatus_t cublasCreate_v2(void** h) { if (current != &context_token) return 1; *h = &handle_token; return 0; }
cublasStatus_t cublasDestroy_v2(void* h) { return 0; }
cublasStatus_t cublasSetStream_v2(void* h, void* s) { return h == &handle_token && s == &stream_token ? 0 : 7; }
cublasStatus_t cublasSetMathMode(void* h, int mode) { return mode == 0 ? 0 : 7; }
cublasStatus_t cublasGetVersion_v2(void* h, int* v) { *v = 130100; return 0; }
cublasStatus_t cublasGetProperty(int type, int* v) { *v = type == 0 ? 13 : type == 1 ? 1 : 0; return 0; }
const char* cublasGetStatusName(cublasStatus_t s) { return s == 7 ? "CUBLAS_STATUS_INVALID_VALUE" : "CUBLAS_STATUS_UNKNOWN"; }

static float load(const void* p, int type, long i) { return type == 14 ? bf2f(((const bf16*)p)[i]) : ((const float*)p)[i]; }

cublasStatus_t cublasGemmStridedBatchedEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* A,
        int Atype, int lda, long long sA, const void* B, int Btype, int ldb, long long sB, const void* beta, void* C, int Ctype,
        int ldc, long long sC, int batch, int compute, int algo) {
    if (h != &handle_token || m < 0 || n < 0 || k < 0 || batch < 0) return 7;
    if (lda < (ta ? (k > 1 ? k : 1) : (m > 1 ? m : 1)) || ldb < (tb ? (n > 1 ? n : 1) : (k > 1 ? k : 1)) || ldc < (m > 1 ? m : 1)) return 7;
    // C is f32, or bf16 from bf16 operands (cuBLAS's CUDA_R_16BF output), always with f32 compute
    if (Atype != Btype || (Atype != 0 && Atype != 14) || (Ctype != 0 && !(Ctype == 14 && Atype == 14)) || compute != 68 || algo != -1)
        return 15;
    float al = *(const float*)alpha, be = *(const float*)beta;
    for (int bt = 0; bt < batch; bt++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    float a = ta ? load(A, Atype, bt * sA + p + (long)i * lda) : load(A, Atype, bt * sA + i + (long)p * lda);
                    float b = tb ? load(B, Btype, bt * sB + j + (long)p * ldb) : load(B, Btype, bt * sB + p + (long)j * ldb);
                    s += (double)a * b;
                }
                long ci = bt * sC + i + (long)j * ldc;
                if (Ctype == 14) {
                    bf16* c = (bf16*)C + ci;
                    *c = f2bf((float)(al * s + (be == 0 ? 0 : be * bf2f(*c))));
                } else {
                    float* c = (float*)C + ci;
                    *c = (float)(al * s + (be == 0 ? 0 : be * *c));
                }
            }
    return 0;
}

cublasStatus_t cublasGemmEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* A, int Atype, int lda,
        const void* B, int Btype, int ldb, const void* beta, void* C, int Ctype, int ldc, int compute, int algo) {
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C, Ctype, ldc, 0, 1,
                                      compute, algo);
}

// ------------------------------------------------------------------ NCCL (one rank)
typedef struct { char internal[128]; } ncclUniqueId;
static ncclUniqueId last_id;
static int comm_token;
static int split_token; // the one communicator ncclCommSplit makes of comm_token
static int is_comm(const void* c) { return c == &comm_token || c == &split_token; }
int ncclGetVersion(int* v) { *v = 22703; return 0; }
int ncclGetUniqueId(ncclUniqueId* id) { for (int i = 0; i < 128; i++) id->internal[i] = (char)(i * 3 + 1); last_id = *id; return 0; }
int ncclCommInitRank(void** comm, int nranks, ncclUniqueId id, int rank) {
    if (nranks != 1 || rank != 0) return 4;
    if (memcmp(&id, &last_id, 128) != 0) return 5; // the id passed by value arrived intact
    *comm = &comm_token;
    return 0;
}
int ncclCommDestroy(void* comm) { return is_comm(comm) ? 0 : 4; }
int ncclCommCount(const void* comm, int* count) { if (!is_comm(comm)) return 4; *count = 1; return 0; }
int ncclCommUserRank(const void* comm, int* rank) { if (!is_comm(comm)) return 4; *rank = 0; return 0; }
// one rank: its group is itself; NCCL refuses a negative color other than NCCL_SPLIT_NOCOLOR, the fake all of them
int ncclCommSplit(void* comm, int color, int key, void** newcomm, void* config) {
    if (comm != &comm_token || color < 0 || config != NULL) return 4;
    *newcomm = &split_token;
    return 0;
}
int ncclAllReduce(const void* s, void* r, size_t count, int type, int op, void* comm, void* stream) {
    if (!is_comm(comm) || stream != &stream_token || type != 7 || op != 0) return 4;
    memmove(r, s, count * 4);
    return 0;
}
int ncclBroadcast(const void* s, void* r, size_t count, int type, int root, void* comm, void* stream) {
    if (!is_comm(comm) || root != 0) return 4;
    memmove(r, s, count * (type == 9 || type == 6 ? 2 : type == 8 || type == 4 || type == 5 ? 8 : type <= 1 ? 1 : 4));
    return 0;
}
// one rank: an all-gather is a copy; an all-to-all is a send to itself and the receive of it, in one group
int ncclAllGather(const void* s, void* r, size_t count, int type, void* comm, void* stream) {
    if (!is_comm(comm) || stream != &stream_token || type != 1) return 4;
    memmove(r, s, count);
    return 0;
}
// one rank: a reduce-scatter (sum, float32) is a copy of the one block
int ncclReduceScatter(const void* s, void* r, size_t count, int type, int op, void* comm, void* stream) {
    if (!is_comm(comm) || stream != &stream_token || type != 7 || op != 0) return 4;
    memmove(r, s, count * 4);
    return 0;
}
static const void* pending_send;
static size_t pending_count;
int ncclSend(const void* s, size_t count, int type, int peer, void* comm, void* stream) {
    if (!is_comm(comm) || stream != &stream_token || type != 1 || peer != 0) return 4;
    pending_send = s;
    pending_count = count;
    return 0;
}
int ncclRecv(void* r, size_t count, int type, int peer, void* comm, void* stream) {
    if (!is_comm(comm) || stream != &stream_token || type != 1 || peer != 0 || pending_send == NULL || count != pending_count) return 4;
    memmove(r, pending_send, count);
    pending_send = NULL;
    return 0;
}
int ncclGroupStart(void) { return 0; }
int ncclGroupEnd(void) { return 0; }
const char* ncclGetErrorString(int r) { return r == 4 ? "invalid argument" : r == 5 ? "invalid usage" : "unknown"; }
