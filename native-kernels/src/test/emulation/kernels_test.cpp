// Runs the kernel families on the host (cuda_emulation.h) and checks them against plain double
// references written from the Backend contract (engine/.../Backend.java, cpu/*.java): random
// inputs of awkward sizes, views at offsets that take the scalar and the vector paths, poisoned
// (NaN) outputs so that an unwritten element fails. Built and run by run.sh; exit status 0 when
// every check passes. Grids are smaller than the host's (any grid works for grid-stride kernels)
// to keep the thread count of the emulation down.
#include "cuda_emulation.h"

#include "adamw.cu"
#include "cross_entropy.cu"
#include "elementwise.cu"
#include "embedding.cu"
#include "nf4.cu"
#include "reduce.cu"
#include "rmsnorm.cu"
#include "rope.cu"
#include "softmax.cu"
#include "swiglu.cu"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <string>

namespace {

int failures = 0, checks = 0;
std::string current;

void fail_at(const std::string& what, long long i, double got, double want) {
    if (++failures <= 40) std::printf("FAIL %s: %s [%lld] got %.9g want %.9g\n", current.c_str(), what.c_str(), i, got, want);
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b)); }

void expect_exact(const std::string& what, const float* got, const float* want, long long n) {
    checks++;
    for (long long i = 0; i < n; i++) {
        if (!same_bits(got[i], want[i])) return fail_at(what, i, got[i], want[i]);
    }
}

void expect_close(const std::string& what, const float* got, const double* want, long long n, double rtol, double atol) {
    checks++;
    for (long long i = 0; i < n; i++) {
        double w = want[i], g = got[i];
        bool ok = std::isnan(w) ? std::isnan(g) : std::isinf(w) ? g == w : std::fabs(g - w) <= atol + rtol * std::fabs(w);
        if (!ok) return fail_at(what, i, g, w);
    }
}

void expect(bool ok, const std::string& what, double got = 0, double want = 0) {
    checks++;
    if (!ok) fail_at(what, -1, got, want);
}

// 64-byte aligned storage (cudaMalloc gives 256); views at element offsets come from pointer arithmetic.
template <class T>
struct Mem {
    explicit Mem(size_t n) : p(static_cast<T*>(std::aligned_alloc(64, ((n + 64) * sizeof(T) + 63) / 64 * 64))) {}
    ~Mem() { std::free(p); }
    Mem(const Mem&) = delete;
    T* p;
};

std::mt19937 rng(12345);
float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
void fill_random(float* p, long long n, float lo = -2.f, float hi = 2.f) {
    for (long long i = 0; i < n; i++) p[i] = uniform(lo, hi);
}
void poison(float* p, long long n) { std::fill(p, p + n, std::numeric_limits<float>::quiet_NaN()); }

unsigned ew_blocks(long long n) { return static_cast<unsigned>(std::min<long long>(std::max<long long>(1, (n + 255) / 256), 3)); }

// The Java backend's f32 -> bf16 (Numerics.floatToBf16): round to nearest even, NaN kept quiet.
unsigned short ref_bf16(float f) {
    unsigned x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return static_cast<unsigned short>((x >> 16) | 0x40);
    return static_cast<unsigned short>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}
float bf16_to_float(unsigned short b) {
    unsigned x = static_cast<unsigned>(b) << 16;
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}
unsigned short ref_f16(float f) {
    _Float16 h = static_cast<_Float16>(f);  // IEEE round to nearest even
    unsigned short b;
    std::memcpy(&b, &h, 2);
    return b;
}
float f16_to_float(unsigned short b) {
    _Float16 h;
    std::memcpy(&h, &b, 2);
    return static_cast<float>(h);
}

// ------------------------------------------------------------------------------ elementwise
void test_elementwise() {
    current = "elementwise";
    const long long sizes[] = {0, 1, 5, 1003};
    const int offs[][3] = {{0, 0, 0}, {1, 1, 1}, {3, 3, 3}, {0, 1, 2}, {2, 0, 0}};
    for (long long n : sizes) {
        for (auto& o : offs) {
            Mem<float> A(n + 4), B(n + 4), O(n + 4), W(n + 4);
            float *a = A.p + o[0], *b = B.p + o[1], *out = O.p + o[2];
            fill_random(a, n);
            fill_random(b, n);
            std::string tag = " n=" + std::to_string(n) + " offsets " + std::to_string(o[0]) + std::to_string(o[1]) + std::to_string(o[2]);
            for (int op = 0; op < 4; op++) {
                poison(out, n);
                if (op == 0) emu::launch(tf_add_f32, ew_blocks(n), 256, a, b, out, n);
                if (op == 1) emu::launch(tf_mul_f32, ew_blocks(n), 256, a, b, out, n);
                if (op == 2) emu::launch(tf_scale_f32, ew_blocks(n), 256, a, 0.37f, out, n);
                if (op == 3) emu::launch(tf_fill_f32, ew_blocks(n), 256, out, -1.5f, n);
                for (long long i = 0; i < n; i++) {
                    W.p[i] = op == 0 ? a[i] + b[i] : op == 1 ? a[i] * b[i] : op == 2 ? a[i] * 0.37f : -1.5f;
                }
                static const char* names[] = {"add", "mul", "scale", "fill"};
                expect_exact(names[op] + tag, out, W.p, n);
            }
        }
    }
    // out aliasing a, and a grid of one block (grid-stride)
    const long long n = 1003;
    Mem<float> A(n), B(n), W(n);
    fill_random(A.p, n);
    fill_random(B.p, n);
    for (long long i = 0; i < n; i++) W.p[i] = A.p[i] + B.p[i];
    emu::launch(tf_add_f32, 1, 256, A.p, B.p, A.p, n);
    expect_exact("add in place, one block", A.p, W.p, n);
}

void test_casts() {
    current = "casts";
    const long long n = 1001;
    Mem<float> F(n + 4), back(n + 4), want(n + 4);
    Mem<unsigned short> H(n + 4), H2(n + 4);
    for (int off = 0; off < 4; off++) {
        float* f = F.p + off;
        fill_random(f, n, -70000.f, 70000.f);
        const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -3e-39f, 65504.f, 65520.f, 1.0f + 1.0f / 256,
                                 1.0f + 3.0f / 256, 6e-8f, 3e-8f};
        for (int i = 0; i < 13; i++) f[i * 7] = special[i];
        for (long long i = 13 * 7; i < n; i += 3) f[i] = uniform(-1e-3f, 1e-3f);
        unsigned short* h = H.p + (off ^ 1);  // different phase from f when off is even/odd mismatched
        for (int same = 0; same < 2; same++) {
            unsigned short* dst = same ? H.p + off : h;
            std::string tag = " offset " + std::to_string(off) + (same ? " same phase" : " other phase");
            // f32 -> bf16 -> f32
            std::fill(dst, dst + n, 0xffff);
            emu::launch(tf_cast_f32_bf16, ew_blocks(n), 256, f, reinterpret_cast<bf16*>(dst), n);
            for (long long i = 0; i < n; i++) want.p[i] = bf16_to_float(ref_bf16(f[i]));
            poison(back.p, n);
            emu::launch(tf_cast_bf16_f32, ew_blocks(n), 256, reinterpret_cast<const bf16*>(dst), back.p, n);
            expect_exact("f32->bf16->f32" + tag, back.p, want.p, n);
            // bf16 -> f16
            emu::launch(tf_cast_bf16_f16, ew_blocks(n), 256, reinterpret_cast<const bf16*>(dst), reinterpret_cast<f16*>(H2.p), n);
            for (long long i = 0; i < n; i++) {
                back.p[i] = f16_to_float(H2.p[i]);
                want.p[i] = f16_to_float(ref_f16(bf16_to_float(ref_bf16(f[i]))));
            }
            expect_exact("bf16->f16" + tag, back.p, want.p, n);
            // f32 -> f16 -> f32
            std::fill(dst, dst + n, 0xffff);
            emu::launch(tf_cast_f32_f16, ew_blocks(n), 256, f, reinterpret_cast<f16*>(dst), n);
            for (long long i = 0; i < n; i++) want.p[i] = f16_to_float(ref_f16(f[i]));
            poison(back.p, n);
            emu::launch(tf_cast_f16_f32, ew_blocks(n), 256, reinterpret_cast<const f16*>(dst), back.p, n);
            expect_exact("f32->f16->f32" + tag, back.p, want.p, n);
            // f16 -> bf16
            emu::launch(tf_cast_f16_bf16, ew_blocks(n), 256, reinterpret_cast<const f16*>(dst), reinterpret_cast<bf16*>(H2.p), n);
            for (long long i = 0; i < n; i++) {
                back.p[i] = bf16_to_float(H2.p[i]);
                want.p[i] = bf16_to_float(ref_bf16(f16_to_float(ref_f16(f[i]))));
            }
            expect_exact("f16->bf16" + tag, back.p, want.p, n);
        }
    }
}

// ------------------------------------------------------------------------------ reduce
void test_reduce() {
    current = "reduce";
    const int parts = 3;  // the host uses TF_REDUCE_BLOCKS; any count works
    for (long long n : {0LL, 1LL, 1000LL, 30011LL}) {
        for (int off = 0; off < 2; off++) {
            Mem<float> X(n + 2);
            float* x = X.p + off;
            fill_random(x, n, -3.f, 5.f);
            double s = 0, sq = 0;
            float m = -INFINITY;
            for (long long i = 0; i < n; i++) {
                s += x[i];
                sq += static_cast<double>(x[i]) * x[i];
                m = std::max(m, x[i]);
            }
            Mem<double> P(parts), R(1);
            Mem<float> PF(parts), RF(1);
            std::string tag = " n=" + std::to_string(n) + " offset " + std::to_string(off);
            emu::launch(tf_sum_partial_f32, parts, 256, x, n, P.p);
            emu::launch(tf_sum_final_f64, 1, 256, P.p, parts, R.p);
            expect(std::fabs(R.p[0] - s) <= 1e-12 * (1 + std::fabs(s) + n), "sum" + tag, R.p[0], s);
            emu::launch(tf_sumsq_partial_f32, parts, 256, x, n, P.p);
            emu::launch(tf_sum_final_f64, 1, 256, P.p, parts, R.p);
            expect(std::fabs(R.p[0] - sq) <= 1e-12 * (1 + sq), "sumsq" + tag, R.p[0], sq);
            emu::launch(tf_max_partial_f32, parts, 256, x, n, PF.p);
            emu::launch(tf_max_final_f32, 1, 256, PF.p, parts, RF.p);
            expect(same_bits(RF.p[0], m), "max" + tag, RF.p[0], m);
            if (n > 10) {  // NaN anywhere makes max NaN
                x[n / 3] = NAN;
                emu::launch(tf_max_partial_f32, parts, 256, x, n, PF.p);
                emu::launch(tf_max_final_f32, 1, 256, PF.p, parts, RF.p);
                expect(std::isnan(RF.p[0]), "max with a NaN" + tag, RF.p[0], NAN);
            }
        }
    }
    // -0 < +0 as in Java's Math.max
    float z[2] = {-0.0f, 0.0f};
    Mem<float> PF(parts), RF(1);
    emu::launch(tf_max_partial_f32, parts, 256, z, 2LL, PF.p);
    emu::launch(tf_max_final_f32, 1, 256, PF.p, parts, RF.p);
    expect(!std::signbit(RF.p[0]), "max(-0, +0) is +0", RF.p[0], 0.0);
}

// ------------------------------------------------------------------------------ embedding
void test_embedding() {
    current = "embedding";
    for (int H : {37, 64}) {
        const int V = 13, T = 9;
        Mem<float> table(V * H), out(T * H + 4), want(T * H), dtable(V * H);
        Mem<unsigned short> table16(V * H);
        fill_random(table.p, V * H);
        for (int i = 0; i < V * H; i++) table16.p[i] = ref_bf16(table.p[i]);
        int ids[T] = {3, 0, 12, 3, 7, 3, 1, 12, 5};
        int err = -1;
        for (int bf = 0; bf < 2; bf++) {
            for (int off = 0; off < 2; off++) {
                float* o = out.p + off;
                poison(o, T * H);
                if (bf) emu::launch(tf_embedding_fwd_bf16, T, 256, reinterpret_cast<const bf16*>(table16.p), ids, o, T, H, V, &err);
                else emu::launch(tf_embedding_fwd_f32, T, 256, table.p, ids, o, T, H, V, &err);
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < H; j++)
                        want.p[t * H + j] = bf ? bf16_to_float(table16.p[ids[t] * H + j]) : table.p[ids[t] * H + j];
                std::string tag = " H=" + std::to_string(H) + (bf ? " bf16" : " f32") + " offset " + std::to_string(off);
                expect_exact("forward" + tag, o, want.p, T * H);
                expect(err == -1, "no error" + tag, err, -1);
            }
        }
        // bad ids: the first offending position is recorded, its row zeroed, others written
        int bad[T] = {3, 0, 13, 3, -1, 3, 1, 99, 5};
        poison(out.p, T * H);
        emu::launch(tf_embedding_fwd_f32, T, 256, table.p, bad, out.p, T, H, V, &err);
        expect(err == 2, "first bad id position", err, 2);
        for (int t = 0; t < T; t++)
            for (int j = 0; j < H; j++) want.p[t * H + j] = (bad[t] < 0 || bad[t] >= V) ? 0.0f : table.p[bad[t] * H + j];
        expect_exact("rows of bad ids are zero", out.p, want.p, T * H);
        // backward: repeated ids accumulate
        Mem<float> dout(T * H);
        fill_random(dout.p, T * H);
        fill_random(dtable.p, V * H);
        std::vector<double> ref(dtable.p, dtable.p + V * H);
        for (int t = 0; t < T; t++)
            for (int j = 0; j < H; j++) ref[ids[t] * H + j] += dout.p[t * H + j];
        emu::launch(tf_embedding_bwd_f32, T, 256, dout.p, ids, dtable.p, T, H, V);
        expect_close("backward H=" + std::to_string(H), dtable.p, ref.data(), V * H, 1e-6, 1e-6);
    }
}

// ------------------------------------------------------------------------------ rmsnorm
void test_rmsnorm() {
    current = "rmsnorm";
    for (int H : {37, 64, 1030}) {
        for (int off = 0; off < 2; off++) {
            const int rows = 5;
            const float eps = 1e-5f;
            Mem<float> X(rows * H + 2), Wt(H), O(rows * H + 2), R(rows), G(rows * H + 2), DX(rows * H + 2), DW(H);
            float *x = X.p + off, *out = O.p + off, *g = G.p + off, *dx = DX.p + off;
            fill_random(x, rows * H);
            fill_random(Wt.p, H, 0.5f, 1.5f);
            fill_random(g, rows * H);
            fill_random(DW.p, H);
            x[0] = 0.0f;
            poison(out, rows * H);
            poison(R.p, rows);
            emu::launch(tf_rmsnorm_fwd_f32, rows, 256, x, Wt.p, eps, out, R.p, rows, H);
            std::vector<double> want(rows * H), rstd(rows), dxw(rows * H), dww(H);
            for (int r = 0; r < rows; r++) {
                double ss = 0;
                for (int j = 0; j < H; j++) ss += static_cast<double>(x[r * H + j]) * x[r * H + j];
                rstd[r] = 1.0 / std::sqrt(ss / H + eps);
                for (int j = 0; j < H; j++) want[r * H + j] = x[r * H + j] * rstd[r] * Wt.p[j];
            }
            std::string tag = " H=" + std::to_string(H) + " offset " + std::to_string(off);
            expect_close("forward" + tag, out, want.data(), rows * H, 1e-5, 1e-6);
            expect_close("rstd" + tag, R.p, rstd.data(), rows, 1e-5, 0);
            // backward, against the kernel's own rstd
            for (int j = 0; j < H; j++) dww[j] = DW.p[j];
            for (int r = 0; r < rows; r++) {
                double inv = R.p[r], dot = 0;
                for (int j = 0; j < H; j++) dot += static_cast<double>(g[r * H + j]) * Wt.p[j] * x[r * H + j];
                double c = inv * inv * inv * dot / H;
                for (int j = 0; j < H; j++) {
                    dxw[r * H + j] = inv * Wt.p[j] * g[r * H + j] - c * x[r * H + j];
                    dww[j] += static_cast<double>(g[r * H + j]) * x[r * H + j] * inv;
                }
            }
            poison(dx, rows * H);
            emu::launch(tf_rmsnorm_bwd_f32, rows, 256, g, x, Wt.p, R.p, dx, rows, H);
            expect_close("backward dx" + tag, dx, dxw.data(), rows * H, 1e-5, 1e-5);
            emu::launch(tf_rmsnorm_dweight_f32, (H + 255) / 256, 256, g, x, R.p, DW.p, rows, H);
            expect_close("backward dweight" + tag, DW.p, dww.data(), H, 1e-5, 1e-5);
        }
    }
    // more rows than the dweight unroll, in order
    const int rows = 21, H = 40;
    Mem<float> X(rows * H), G(rows * H), R(rows), DW(H);
    fill_random(X.p, rows * H);
    fill_random(G.p, rows * H);
    fill_random(R.p, rows, 0.5f, 2.f);
    std::fill(DW.p, DW.p + H, 0.0f);
    std::vector<double> dww(H, 0.0);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < H; j++) dww[j] += static_cast<double>(G.p[r * H + j]) * X.p[r * H + j] * R.p[r];
    emu::launch(tf_rmsnorm_dweight_f32, 1, 256, G.p, X.p, R.p, DW.p, rows, H);
    expect_close("dweight, 21 rows", DW.p, dww.data(), H, 1e-5, 1e-5);
}

// ------------------------------------------------------------------------------ rope
void ref_rope(const float* x, const float* inv, const int* pos, float scale, double* out, int rows, int heads, int d, int dir) {
    const int half = d / 2;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++)
            for (int j = 0; j < half; j++) {
                float a = static_cast<float>(pos[r]) * inv[j];  // the f32 angle, as Hugging Face
                double c = static_cast<float>(std::cos(static_cast<double>(a))) * scale;
                double s = dir * (static_cast<float>(std::sin(static_cast<double>(a))) * scale);
                long long b = (static_cast<long long>(r) * heads + h) * d;
                double x0 = x[b + j], x1 = x[b + half + j];
                out[b + j] = x0 * c - x1 * s;
                out[b + half + j] = x1 * c + x0 * s;
            }
}

void test_rope() {
    current = "rope";
    const int rows = 6, pos[rows] = {0, 1, 7, 1000, 81919, 5};
    for (int d : {128, 6, 10, 16}) {
        std::vector<float> inv(d / 2);
        for (int i = 0; i < d / 2; i++) inv[i] = static_cast<float>(1.0 / std::pow(500000.0, 2.0 * i / d));
        for (float scale : {1.0f, 1.3f}) {
            for (int dir : {1, -1}) {
                for (int off = 0; off < 2; off++) {
                    const int heads = 3;
                    const long long n = static_cast<long long>(rows) * heads * d;
                    Mem<float> X(n + 1), O(n + 1);
                    float *x = X.p + off, *out = O.p + off;
                    fill_random(x, n);
                    std::vector<double> want(n);
                    ref_rope(x, inv.data(), pos, scale, want.data(), rows, heads, d, dir);
                    std::string tag = " d=" + std::to_string(d) + " scale " + std::to_string(scale) + " dir " +
                                      std::to_string(dir) + " offset " + std::to_string(off);
                    poison(out, n);
                    emu::launch(tf_rope_f32, 2, 256, x, inv.data(), pos, scale, out, rows, heads, d, dir);
                    expect_close("rope" + tag, out, want.data(), n, 1e-5, 2e-6);
                    emu::launch(tf_rope_f32, 1, 256, x, inv.data(), pos, scale, x, rows, heads, d, dir);  // in place
                    expect_close("rope in place" + tag, x, want.data(), n, 1e-5, 2e-6);
                }
            }
        }
        // q and k in one launch, in place
        const int hq = 4, hkv = 2;
        const long long nq = static_cast<long long>(rows) * hq * d, nk = static_cast<long long>(rows) * hkv * d;
        Mem<float> Q(nq), K(nk);
        fill_random(Q.p, nq);
        fill_random(K.p, nk);
        std::vector<double> wq(nq), wk(nk);
        ref_rope(Q.p, inv.data(), pos, 1.0f, wq.data(), rows, hq, d, 1);
        ref_rope(K.p, inv.data(), pos, 1.0f, wk.data(), rows, hkv, d, 1);
        emu::launch(tf_rope_qk_f32, 3, 256, Q.p, K.p, inv.data(), pos, 1.0f, rows, hq, hkv, d, 1);
        expect_close("rope_qk q d=" + std::to_string(d), Q.p, wq.data(), nq, 1e-5, 2e-6);
        expect_close("rope_qk k d=" + std::to_string(d), K.p, wk.data(), nk, 1e-5, 2e-6);
    }
}

// ------------------------------------------------------------------------------ swiglu
void test_swiglu() {
    current = "swiglu";
    for (long long n : {1LL, 7LL, 1003LL}) {
        for (int off = 0; off < 3; off++) {
            Mem<float> Gt(n + 3), U(n + 3), O(n + 3), D(n + 3), DG(n + 3), DU(n + 3);
            float *g = Gt.p + off, *u = U.p + off, *out = O.p + off, *d = D.p + off;
            float *dg = DG.p + (off == 2 ? 1 : off), *du = DU.p + off;  // offset 2: dgate in another phase
            fill_random(g, n, -12.f, 12.f);
            fill_random(u, n);
            fill_random(d, n);
            if (n > 3) g[2] = -100.f;
            std::vector<double> wo(n), wdg(n), wdu(n);
            for (long long i = 0; i < n; i++) {
                double gi = g[i], sig = 1 / (1 + std::exp(-gi));
                wo[i] = gi * sig * u[i];
                wdg[i] = d[i] * u[i] * sig * (1 + gi * (1 - sig));
                wdu[i] = d[i] * gi * sig;
            }
            std::string tag = " n=" + std::to_string(n) + " offset " + std::to_string(off);
            poison(out, n);
            emu::launch(tf_swiglu_fwd_f32, ew_blocks(n), 256, g, u, out, n);
            expect_close("forward" + tag, out, wo.data(), n, 1e-6, 1e-7);
            poison(dg, n);
            poison(du, n);
            emu::launch(tf_swiglu_bwd_f32, ew_blocks(n), 256, d, g, u, dg, du, n);
            expect_close("backward dgate" + tag, dg, wdg.data(), n, 1e-5, 1e-7);
            expect_close("backward dup" + tag, du, wdu.data(), n, 1e-6, 1e-7);
        }
    }
}

// ------------------------------------------------------------------------------ softmax
void test_softmax() {
    current = "softmax";
    for (int n : {1, 37, 1000}) {
        for (int off = 0; off < 2; off++) {
            const int rows = 4;
            Mem<float> X(rows * n + 1), O(rows * n + 1), G(rows * n + 1), DX(rows * n + 1);
            float *x = X.p + off, *out = O.p + off, *g = G.p + off, *dx = DX.p + off;
            fill_random(x, rows * n, -5.f, 5.f);
            fill_random(g, rows * n);
            for (int j = 0; j < n; j += 3) x[n + j] = -INFINITY;                // row 1: masked entries
            for (int j = 0; j < n; j++) x[2 * n + j] = uniform(-2e4f, 2e4f);  // row 2: wide range
            std::vector<double> want(rows * n), wdx(rows * n);
            for (int r = 0; r < rows; r++) {
                double m = -INFINITY, s = 0;
                for (int j = 0; j < n; j++) m = std::max(m, static_cast<double>(x[r * n + j]));
                for (int j = 0; j < n; j++) s += std::exp(x[r * n + j] - m);
                for (int j = 0; j < n; j++) want[r * n + j] = std::exp(x[r * n + j] - m) / s;
            }
            std::string tag = " n=" + std::to_string(n) + " offset " + std::to_string(off);
            poison(out, rows * n);
            emu::launch(tf_softmax_fwd_f32, rows, 256, x, out, rows, n);
            expect_close("forward" + tag, out, want.data(), rows * n, 1e-5, 1e-7);
            for (int r = 0; r < rows; r++) {
                double dot = 0;
                for (int j = 0; j < n; j++) dot += static_cast<double>(g[r * n + j]) * out[r * n + j];
                for (int j = 0; j < n; j++) wdx[r * n + j] = out[r * n + j] * (g[r * n + j] - dot);
            }
            poison(dx, rows * n);
            emu::launch(tf_softmax_bwd_f32, rows, 256, g, out, dx, rows, n);
            expect_close("backward" + tag, dx, wdx.data(), rows * n, 1e-5, 1e-6);
            emu::launch(tf_softmax_fwd_f32, rows, 256, x, x, rows, n);  // in place
            expect_close("forward in place" + tag, x, want.data(), rows * n, 1e-5, 1e-7);
        }
    }
}

// ------------------------------------------------------------------------------ cross-entropy
void test_cross_entropy() {
    current = "cross_entropy";
    const int T = 7, V = 1000;
    const int targets[T] = {5, -100, 999, 0, 384, -100, 700};
    std::vector<float> logits(T * V);
    fill_random(logits.data(), T * V, -8.f, 8.f);
    logits[3 * V + 0] = 30.f;  // a confident row
    double loss = 0;
    long long count = 0;
    std::vector<double> grad(T * V, 0.0);
    const float scale = 0.5f;
    for (int t = 0; t < T; t++) {
        if (targets[t] == -100) continue;
        double m = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) m = std::max(m, static_cast<double>(logits[t * V + v]));
        for (int v = 0; v < V; v++) s += std::exp(logits[t * V + v] - m);
        double lse = m + std::log(s);
        loss += lse - logits[t * V + targets[t]];
        count++;
        for (int v = 0; v < V; v++) grad[t * V + v] = scale * (std::exp(logits[t * V + v] - lse) - (v == targets[t]));
    }
    for (auto widths : {std::vector<int>{384, 384, 232}, std::vector<int>{333, 333, 334}, std::vector<int>{1000}}) {
        std::string tag = " chunks of " + std::to_string(widths[0]);
        Mem<float> rmax(T), rsum(T), tlogit(T);
        std::fill(rmax.p, rmax.p + T, -INFINITY);
        std::fill(rsum.p, rsum.p + T, 0.0f);
        poison(tlogit.p, T);
        std::vector<std::unique_ptr<Mem<float>>> chunks;
        int v0 = 0;
        for (int w : widths) {  // pass 1, one [T, w] chunk at a time
            chunks.push_back(std::make_unique<Mem<float>>(T * w));
            float* c = chunks.back()->p;
            for (int t = 0; t < T; t++)
                for (int j = 0; j < w; j++) c[t * w + j] = logits[t * V + v0 + j];
            emu::launch(tf_ce_stats_f32, T, 256, c, targets, T, w, v0, rmax.p, rsum.p, tlogit.p);
            v0 += w;
        }
        Mem<double> L(1);
        Mem<long long> C(1);
        emu::launch(tf_ce_loss_f32, 1, 256, rmax.p, rsum.p, tlogit.p, targets, T, L.p, C.p);
        expect(std::fabs(L.p[0] - loss) <= 1e-5 * std::fabs(loss), "loss" + tag, L.p[0], loss);
        expect(C.p[0] == count, "count" + tag, C.p[0], count);
        v0 = 0;
        for (size_t i = 0; i < widths.size(); i++) {  // pass 2
            int w = widths[i];
            float* c = chunks[i]->p;
            emu::launch(tf_ce_grad_f32, T, 256, c, targets, rmax.p, rsum.p, scale, T, w, v0);
            std::vector<double> want(T * w);
            for (int t = 0; t < T; t++)
                for (int j = 0; j < w; j++) want[t * w + j] = grad[t * V + v0 + j];
            expect_close("gradient chunk " + std::to_string(i) + tag, c, want.data(), T * w, 1e-4, 1e-7);
            v0 += w;
        }
    }
    // loss with more rows than the kernel's 256 ranges
    const int T2 = 1000;
    std::vector<float> m2(T2), s2(T2), l2(T2);
    std::vector<int> y2(T2);
    double want = 0;
    long long n2 = 0;
    for (int t = 0; t < T2; t++) {
        m2[t] = uniform(-3, 3);
        s2[t] = uniform(1, 100);
        l2[t] = uniform(-3, 3);
        y2[t] = t % 5 == 0 ? -100 : t;
        if (y2[t] != -100) {
            want += (std::log(static_cast<double>(s2[t])) + m2[t]) - l2[t];
            n2++;
        }
    }
    Mem<double> L(1);
    Mem<long long> C(1);
    emu::launch(tf_ce_loss_f32, 1, 256, m2.data(), s2.data(), l2.data(), y2.data(), T2, L.p, C.p);
    expect(std::fabs(L.p[0] - want) <= 1e-12 * std::fabs(want), "loss over 1000 rows", L.p[0], want);
    expect(C.p[0] == n2, "count over 1000 rows", C.p[0], n2);
}

// ------------------------------------------------------------------------------ adamw
void test_adamw() {
    current = "adamw";
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
    const long long step = 3;
    const double bc1 = 1 - std::pow(static_cast<double>(b1), step), bc2 = 1 - std::pow(static_cast<double>(b2), step);
    for (long long n : {1LL, 1003LL}) {
        for (int off = 0; off < 2; off++) {
            Mem<float> P(n + 1), G(n + 1), M(n + 1), V(n + 1);
            float *p = P.p + off, *g = G.p + off, *m = M.p + off, *v = V.p + (off ? 1 : 0);
            fill_random(p, n);
            fill_random(g, n, -1e-2f, 1e-2f);
            fill_random(m, n, -1e-3f, 1e-3f);
            fill_random(v, n, 0.f, 1e-5f);
            std::vector<double> wp(n), wm(n), wv(n);
            for (long long i = 0; i < n; i++) {
                double gi = g[i], pi = p[i] * (1 - static_cast<double>(lr) * wd);
                wm[i] = b1 * static_cast<double>(m[i]) + (1 - static_cast<double>(b1)) * gi;
                wv[i] = b2 * static_cast<double>(v[i]) + (1 - static_cast<double>(b2)) * gi * gi;
                wp[i] = pi - lr * (wm[i] / bc1) / (std::sqrt(wv[i] / bc2) + eps);
            }
            emu::launch(tf_adamw_f32, ew_blocks(n), 256, p, g, m, v, lr, b1, b2, eps, wd, static_cast<float>(bc1),
                        static_cast<float>(bc2), n);
            std::string tag = " n=" + std::to_string(n) + " offset " + std::to_string(off);
            // f32 rounding of the two products of each moment update, which may nearly cancel
            expect_close("p" + tag, p, wp.data(), n, 1e-6, 5e-7);
            expect_close("m" + tag, m, wm.data(), n, 1e-5, 2e-10);
            expect_close("v" + tag, v, wv.data(), n, 1e-5, 2e-12);
        }
    }
}

// ------------------------------------------------------------------------------ nf4
const float NF4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                       -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                       0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
                       0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

void test_nf4() {
    current = "nf4";
    const long long n = 64 * 600;  // 600 blocks: three nested blocks of 256
    const long long blocks = n / 64, nested_blocks = (blocks + 255) / 256;
    Mem<uint8_t> packed(n / 2 + 8), amax8(blocks);
    Mem<float> amax(blocks), namax(nested_blocks), ncode(256), out(n + 8), want(n);
    Mem<unsigned short> out16(n + 16);
    for (long long i = 0; i < n / 2 + 8; i++) packed.p[i] = static_cast<uint8_t>(rng());
    for (long long i = 0; i < blocks; i++) {
        amax.p[i] = uniform(0.01f, 0.2f);
        amax8.p[i] = static_cast<uint8_t>(rng());
    }
    for (int i = 0; i < 256; i++) ncode.p[i] = uniform(-1.f, 1.f);
    std::sort(ncode.p, ncode.p + 256);
    for (long long i = 0; i < nested_blocks; i++) namax.p[i] = uniform(0.01f, 0.05f);
    const float offset = 0.0625f;
    for (int nested = 0; nested < 2; nested++) {
        for (int poff = 0; poff < 2; poff++) {
            const uint8_t* pk = packed.p + poff;
            for (long long e = 0; e < n; e++) {
                int b = pk[e / 2], nib = e % 2 == 0 ? b >> 4 : b & 15;
                long long blk = e / 64;
                volatile float prod = ncode.p[amax8.p[blk]] * namax.p[blk / 256];  // rounded before the add
                float s = nested ? prod + offset : amax.p[blk];
                want.p[e] = NF4[nib] * s;
            }
            const float* a32 = nested ? nullptr : amax.p;
            const uint8_t* a8 = nested ? amax8.p : nullptr;
            const float* na = nested ? namax.p : nullptr;
            const float* nc = nested ? ncode.p : nullptr;
            for (int ooff : {0, 1, 4, 8}) {
                std::string tag = std::string(nested ? " double-quantized" : " f32 absmax") + " packed+" + std::to_string(poff) +
                                  " out+" + std::to_string(ooff);
                float* o = out.p + ooff;
                poison(o, n);
                emu::launch(tf_nf4_dequant_f32, 5, 256, pk, a32, a8, na, nc, offset, o, n);
                expect_exact("f32" + tag, o, want.p, n);
                unsigned short* o16 = out16.p + ooff;
                std::fill(o16, o16 + n, 0x7fc1);
                emu::launch(tf_nf4_dequant_bf16, 5, 256, pk, a32, a8, na, nc, offset, reinterpret_cast<bf16*>(o16), n);
                std::vector<float> got(n), w(n);
                for (long long e = 0; e < n; e++) {
                    got[e] = bf16_to_float(o16[e]);
                    w[e] = bf16_to_float(ref_bf16(want.p[e]));
                }
                expect_exact("bf16" + tag, got.data(), w.data(), n);
            }
        }
    }
}

}  // namespace

int main() {
    const std::pair<const char*, std::function<void()>> tests[] = {
        {"elementwise", test_elementwise}, {"casts", test_casts},     {"reduce", test_reduce},
        {"embedding", test_embedding},     {"rmsnorm", test_rmsnorm}, {"rope", test_rope},
        {"swiglu", test_swiglu},           {"softmax", test_softmax}, {"cross_entropy", test_cross_entropy},
        {"adamw", test_adamw},             {"nf4", test_nf4},
    };
    for (auto& [name, fn] : tests) {
        int before = failures, checks_before = checks;
        auto start = std::chrono::steady_clock::now();
        fn();
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%-14s %3d checks, %s (%.1f s)\n", name, checks - checks_before, failures == before ? "ok" : "FAILED", s);
    }
    std::printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
