// Runs the flash attention kernels (the .cu files themselves) on the host warp emulator
// (flash_emu.h) and checks them against a plain double-precision attention. No GPU needed.
//
//   g++ -std=c++17 -O2 -I/usr/local/cuda/include -o /tmp/flash_emu_test flash_emu_test.cpp
//   /tmp/flash_emu_test            (all cases; ~1-3 minutes on two cores)
//   /tmp/flash_emu_test --quick    (a smaller set)
//
// Device buffers are exactly sized and end at a PROT_NONE page: a read or write past the end of
// any tensor faults. Outputs are poisoned (NaN) before each launch: an unwritten element fails.
#include "flash_emu.h"

#include "../../main/cuda/flash_attention_bwd.cu"
#include "../../main/cuda/flash_attention_fwd.cu"

#include <algorithm>
#include <string>

namespace {

// ------------------------------------------------------------------ guarded device buffers
template <class T>
struct Buf {
    T* p = nullptr;
    size_t n = 0;
    void* map = nullptr;
    size_t map_bytes = 0;
    explicit Buf(size_t count) : n(count) {
        const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        const size_t bytes = std::max<size_t>(count * sizeof(T), 1);
        const size_t data_pages = (bytes + page - 1) / page;
        map_bytes = (data_pages + 1) * page;
        map = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) std::abort();
        char* guard = static_cast<char*>(map) + data_pages * page;
        mprotect(guard, page, PROT_NONE);
        p = reinterpret_cast<T*>(guard - count * sizeof(T));  // the buffer ends where the guard begins
    }
    ~Buf() { munmap(map, map_bytes); }
    Buf(const Buf&) = delete;
    T& operator[](size_t i) { return p[i]; }
};

uint16_t f2bf(float x) { return static_cast<uint16_t>(tf_emu::bf16_rn(x)); }
float bf2f(uint16_t b) { return tf_emu::bf16_f(b); }

struct Case {
    std::string name;
    std::vector<int> lq, lk;
    int hq, hkv, D;
};

struct Err {
    double max_abs = 0, num = 0, den = 0;
    long long bad = 0;  // non-finite where a finite value is expected
    void add(double got, double ref) {
        if (!std::isfinite(got)) {
            ++bad;
            return;
        }
        max_abs = std::max(max_abs, std::fabs(got - ref));
        num += (got - ref) * (got - ref);
        den += ref * ref;
    }
    double rel() const { return den > 0 ? std::sqrt(num / den) : std::sqrt(num); }
};

int g_failures = 0;

void check(const char* what, const Err& e, double rel_tol, double abs_tol) {
    const bool ok = e.bad == 0 && e.rel() <= rel_tol && e.max_abs <= abs_tol;
    std::printf("    %-10s rel %.2e  max_abs %.2e  non-finite %lld  %s\n", what, e.rel(), e.max_abs, e.bad,
                ok ? "ok" : "FAIL");
    if (!ok) ++g_failures;
}

struct Options {
    bool defer = true, random = false;
    int resident = 2;
    unsigned seed = 1;
};

// mode: 0 atomic dQ; 1 and 2 the deterministic orders (ascending, descending key blocks), each rerun with
// another schedule, which must give the same bits
void run_case(const Case& c, const Options& opt, int mode) {
    tf_emu::S().defer_copies = opt.defer;
    tf_emu::S().random_order = opt.random;
    tf_emu::S().rng.seed(opt.seed);
    const int batch = static_cast<int>(c.lq.size());
    const int hq = c.hq, hkv = c.hkv, D = c.D, G = hq / hkv;
    std::vector<int> cuq(batch + 1, 0), cuk(batch + 1, 0);
    int max_q = 0, max_k = 0;
    for (int b = 0; b < batch; ++b) {
        cuq[b + 1] = cuq[b] + c.lq[b];
        cuk[b + 1] = cuk[b] + c.lk[b];
        max_q = std::max(max_q, c.lq[b]);
        max_k = std::max(max_k, c.lk[b]);
    }
    const int TQ = cuq[batch], TK = cuk[batch];
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    std::printf("  %s: batch %d, lens", c.name.c_str(), batch);
    for (int b = 0; b < batch; ++b) std::printf(" %d/%d", c.lq[b], c.lk[b]);
    std::printf(", hq %d hkv %d D %d, %s copies, %s order, %d resident\n", hq, hkv, D,
                opt.defer ? "deferred" : "immediate", opt.random ? "random" : "round-robin", opt.resident);

    std::mt19937 rng(1234 + D + hq * 7 + TQ * 13 + TK);
    std::normal_distribution<float> nd(0.f, 1.f);
    Buf<uint16_t> q(static_cast<size_t>(TQ) * hq * D), k(static_cast<size_t>(TK) * hkv * D),
        v(static_cast<size_t>(TK) * hkv * D), dout(static_cast<size_t>(TQ) * hq * D);
    // Larger q/k spread than N(0,1) so that softmax is far from uniform.
    for (size_t i = 0; i < q.n; ++i) q[i] = f2bf(2.0f * nd(rng));
    for (size_t i = 0; i < k.n; ++i) k[i] = f2bf(2.0f * nd(rng));
    for (size_t i = 0; i < v.n; ++i) v[i] = f2bf(nd(rng));
    for (size_t i = 0; i < dout.n; ++i) dout[i] = f2bf(nd(rng));
    Buf<int> cu_q(batch + 1), cu_k(batch + 1);
    for (int b = 0; b <= batch; ++b) cu_q[b] = cuq[b], cu_k[b] = cuk[b];

    // ---------------------------------------------------------------- reference (double)
    std::vector<double> Oref(static_cast<size_t>(TQ) * hq * D, 0.0), Lref(static_cast<size_t>(hq) * TQ);
    std::vector<double> dQref(q.n, 0.0), dKref(k.n, 0.0), dVref(v.n, 0.0);
    auto Q = [&](int row, int h, int d) { return static_cast<double>(bf2f(q[(static_cast<size_t>(row) * hq + h) * D + d])); };
    auto K = [&](int row, int h, int d) { return static_cast<double>(bf2f(k[(static_cast<size_t>(row) * hkv + h) * D + d])); };
    auto V = [&](int row, int h, int d) { return static_cast<double>(bf2f(v[(static_cast<size_t>(row) * hkv + h) * D + d])); };
    auto DO = [&](int row, int h, int d) { return static_cast<double>(bf2f(dout[(static_cast<size_t>(row) * hq + h) * D + d])); };
    for (int b = 0; b < batch; ++b) {
        const int lq = c.lq[b], lk = c.lk[b], off = lk - lq;
        for (int h = 0; h < hq; ++h) {
            const int kh = h / G;
            for (int i = 0; i < lq; ++i) {
                const int qi = cuq[b] + i;
                const int last = std::min(off + i, lk - 1);  // keys 0 .. last
                if (last < 0) {
                    Lref[static_cast<size_t>(h) * TQ + qi] = INFINITY;
                    continue;  // O = 0, gradients 0
                }
                std::vector<double> s(last + 1), p(last + 1);
                double mx = -INFINITY;
                for (int j = 0; j <= last; ++j) {
                    double dot = 0;
                    for (int d = 0; d < D; ++d) dot += Q(qi, h, d) * K(cuk[b] + j, kh, d);
                    s[j] = dot * scale;
                    mx = std::max(mx, s[j]);
                }
                double sum = 0;
                for (int j = 0; j <= last; ++j) sum += std::exp(s[j] - mx);
                const double lse = mx + std::log(sum);
                Lref[static_cast<size_t>(h) * TQ + qi] = lse;
                for (int j = 0; j <= last; ++j) p[j] = std::exp(s[j] - lse);
                double* orow = &Oref[(static_cast<size_t>(qi) * hq + h) * D];
                for (int j = 0; j <= last; ++j)
                    for (int d = 0; d < D; ++d) orow[d] += p[j] * V(cuk[b] + j, kh, d);
                double delta = 0;
                for (int d = 0; d < D; ++d) delta += DO(qi, h, d) * orow[d];
                for (int j = 0; j <= last; ++j) {
                    const int kj = cuk[b] + j;
                    double dp = 0;
                    for (int d = 0; d < D; ++d) dp += DO(qi, h, d) * V(kj, kh, d);
                    const double ds = p[j] * (dp - delta);
                    for (int d = 0; d < D; ++d) {
                        dQref[(static_cast<size_t>(qi) * hq + h) * D + d] += ds * K(kj, kh, d) * scale;
                        dKref[(static_cast<size_t>(kj) * hkv + kh) * D + d] += ds * Q(qi, h, d) * scale;
                        dVref[(static_cast<size_t>(kj) * hkv + kh) * D + d] += p[j] * DO(qi, h, d);
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- forward
    Buf<uint16_t> o(q.n);
    Buf<float> lse(static_cast<size_t>(hq) * TQ);
    for (size_t i = 0; i < o.n; ++i) o[i] = 0x7fc0;  // NaN
    for (size_t i = 0; i < lse.n; ++i) lse[i] = NAN;
    {
        const tf_emu::Dim3 grid{static_cast<unsigned>(std::max(1, (max_q + TF_FLASH_FWD_BLOCK_M - 1) / TF_FLASH_FWD_BLOCK_M)),
                                static_cast<unsigned>(hq), static_cast<unsigned>(batch)};
        const bf16 *qp = reinterpret_cast<const bf16*>(q.p), *kp = reinterpret_cast<const bf16*>(k.p),
                   *vp = reinterpret_cast<const bf16*>(v.p);
        bf16* op = reinterpret_cast<bf16*>(o.p);
        float* lp = lse.p;
        const int *cq = cu_q.p, *ck = cu_k.p;
        tf_emu::launch(grid, {TF_FLASH_FWD_THREADS, 1, 1}, TF_FLASH_FWD_SMEM(D), opt.resident, [=] {
            if (D == 64)
                tf_flash_fwd_d64(qp, kp, vp, op, lp, cq, ck, batch, max_q, hq, hkv, scale);
            else
                tf_flash_fwd_d128(qp, kp, vp, op, lp, cq, ck, batch, max_q, hq, hkv, scale);
        });
    }
    Err eo, el;
    long long lse_inf_bad = 0;
    for (size_t i = 0; i < o.n; ++i) eo.add(bf2f(o[i]), Oref[i]);
    for (size_t i = 0; i < lse.n; ++i) {
        if (std::isinf(Lref[i])) {
            if (!(std::isinf(lse[i]) && lse[i] > 0)) ++lse_inf_bad;
            continue;
        }
        el.add(lse[i], Lref[i]);
    }
    el.bad += lse_inf_bad;
    check("O", eo, 1.5e-2, 4e-2);
    check("lse", el, 1e-4, 2e-3);

    // ---------------------------------------------------------------- backward
    Buf<float> delta(static_cast<size_t>(hq) * TQ);
    for (size_t i = 0; i < delta.n; ++i) delta[i] = NAN;
    {
        const bf16 *op = reinterpret_cast<const bf16*>(o.p), *dp = reinterpret_cast<const bf16*>(dout.p);
        float* dl = delta.p;
        // A small odd grid to exercise the grid-stride loop.
        tf_emu::launch({3, 1, 1}, {TF_EW_THREADS, 1, 1}, 0, 3, [=] { tf_flash_bwd_pre(op, dp, dl, TQ, hq, D); });
    }
    Err ed;
    for (int i = 0; i < TQ; ++i)
        for (int h = 0; h < hq; ++h) {
            double ref = 0;  // from the kernel's own bf16 O, as the backward uses it
            for (int d = 0; d < D; ++d)
                ref += static_cast<double>(bf2f(o[(static_cast<size_t>(i) * hq + h) * D + d])) *
                       bf2f(dout[(static_cast<size_t>(i) * hq + h) * D + d]);
            ed.add(delta[static_cast<size_t>(h) * TQ + i], ref);
        }
    check("delta", ed, 1e-5, 1e-3);

    const long long nq = static_cast<long long>(TQ) * hq * D;
    const long long sem_words = TF_FLASH_BWD_SEM_WORDS(batch, hq, max_k);
    auto run_bwd = [&](int deterministic, int resident, std::vector<float>* accum_out, std::vector<uint16_t>* dk_out,
                       std::vector<uint16_t>* dv_out, std::vector<uint16_t>* dq_out) {
        Buf<float> acc(static_cast<size_t>(nq + (deterministic ? sem_words : 0)));
        std::memset(acc.p, 0, acc.n * sizeof(float));
        Buf<uint16_t> dkb(k.n), dvb(v.n), dqb(q.n);
        Buf<int> err(1);
        err[0] = 0;
        for (size_t i = 0; i < dkb.n; ++i) dkb[i] = 0x7fc0;
        for (size_t i = 0; i < dvb.n; ++i) dvb[i] = 0x7fc0;
        for (size_t i = 0; i < dqb.n; ++i) dqb[i] = 0x7fc0;
        const tf_emu::Dim3 grid{static_cast<unsigned>(std::max(1, (max_k + TF_FLASH_BWD_BLOCK_N - 1) / TF_FLASH_BWD_BLOCK_N)),
                                static_cast<unsigned>(hkv), static_cast<unsigned>(batch)};
        const bf16 *qp = reinterpret_cast<const bf16*>(q.p), *kp = reinterpret_cast<const bf16*>(k.p),
                   *vp = reinterpret_cast<const bf16*>(v.p), *dop = reinterpret_cast<const bf16*>(dout.p);
        const float *lp = lse.p, *dl = delta.p;
        float* ap = acc.p;
        bf16 *dkp = reinterpret_cast<bf16*>(dkb.p), *dvp = reinterpret_cast<bf16*>(dvb.p),
             *dqp = reinterpret_cast<bf16*>(dqb.p);
        const int *cq = cu_q.p, *ck = cu_k.p;
        int* ep = err.p;
        tf_emu::launch(grid, {TF_FLASH_BWD_THREADS, 1, 1}, TF_FLASH_BWD_SMEM(D), resident, [=] {
            if (D == 64)
                tf_flash_bwd_d64(qp, kp, vp, dop, lp, dl, ap, dkp, dvp, cq, ck, batch, max_k, hq, hkv, scale,
                                 deterministic, ep);
            else
                tf_flash_bwd_d128(qp, kp, vp, dop, lp, dl, ap, dkp, dvp, cq, ck, batch, max_k, hq, hkv, scale,
                                  deterministic, ep);
        });
        if (err[0] != 0) {  // in launch order no wait may give up
            std::printf("    error word %d (a deterministic-mode wait gave up): FAIL\n", err[0]);
            ++g_failures;
        }
        tf_emu::launch({5, 1, 1}, {TF_EW_THREADS, 1, 1}, 0, 5, [=] { tf_flash_bwd_post(ap, scale, dqp, nq); });
        if (deterministic) {
            // Every (sequence, head, query block) semaphore counts the key blocks that added into it.
            const int mb = (max_k + TF_FLASH_BWD_BLOCK_M - 1) / TF_FLASH_BWD_BLOCK_M;
            const int* sem = reinterpret_cast<const int*>(acc.p + nq);
            long long wrong = 0;
            for (int b = 0; b < batch; ++b) {
                const int lq = c.lq[b], lk = c.lk[b], off = lk - lq;
                for (int h = 0; h < hq; ++h)
                    for (int m = 0; m < mb; ++m) {
                        int expect = 0;
                        if (m * TF_FLASH_BWD_BLOCK_M < lq) {
                            const int last_pos = off + std::min(lq, (m + 1) * TF_FLASH_BWD_BLOCK_M) - 1;
                            const int last_key = std::min(last_pos, lk - 1);
                            expect = last_key >= 0 ? last_key / TF_FLASH_BWD_BLOCK_N + 1 : 0;
                        }
                        if (sem[(static_cast<long long>(b) * hq + h) * mb + m] != expect) ++wrong;
                    }
            }
            std::printf("    semaphores %s\n", wrong ? "WRONG" : "ok");
            if (wrong) ++g_failures;
        }
        if (accum_out) accum_out->assign(acc.p, acc.p + nq);
        if (dk_out) dk_out->assign(dkb.p, dkb.p + dkb.n);
        if (dv_out) dv_out->assign(dvb.p, dvb.p + dvb.n);
        if (dq_out) dq_out->assign(dqb.p, dqb.p + dqb.n);
    };

    std::vector<float> acc1;
    std::vector<uint16_t> dk1, dv1, dq1;
    run_bwd(mode, opt.resident, &acc1, &dk1, &dv1, &dq1);
    Err eq, ek, ev;
    for (size_t i = 0; i < dq1.size(); ++i) eq.add(bf2f(dq1[i]), dQref[i]);
    for (size_t i = 0; i < dk1.size(); ++i) ek.add(bf2f(dk1[i]), dKref[i]);
    for (size_t i = 0; i < dv1.size(); ++i) ev.add(bf2f(dv1[i]), dVref[i]);
    check("dQ", eq, 3e-2, 1e30);
    check("dK", ek, 3e-2, 1e30);
    check("dV", ev, 2e-2, 1e30);

    if (mode != 0) {
        // Same inputs, other scheduling (random warp order, other seed, more blocks at once):
        // the deterministic mode must reproduce dq_accum bit for bit.
        tf_emu::S().random_order = true;
        tf_emu::S().rng.seed(opt.seed * 7919 + 17);
        tf_emu::S().defer_copies = !opt.defer;
        std::vector<float> acc2;
        std::vector<uint16_t> dk2, dv2, dq2;
        run_bwd(mode, opt.resident + 2, &acc2, &dk2, &dv2, &dq2);
        const bool same = std::memcmp(acc1.data(), acc2.data(), acc1.size() * sizeof(float)) == 0 && dk1 == dk2 &&
                          dv1 == dv2 && dq1 == dq2;
        std::printf("    deterministic rerun (other schedule): %s\n", same ? "bitwise identical" : "DIFFERS");
        if (!same) ++g_failures;
    }
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = false;
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == "--quick") quick = true;

    std::vector<std::pair<Case, Options>> runs;
    Options rr;           // deferred copies, round-robin
    Options rnd;          // immediate copies, random warp order
    rnd.defer = false;
    rnd.random = true;
    rnd.seed = 5;
    rnd.resident = 3;
    // d64: GQA 2, varlen with tails, len_q < len_k, a length-1 sequence, an empty one.
    runs.push_back({{"d64 varlen", {150, 1, 77, 0}, {150, 1, 333, 0}, 4, 2, 64}, rr});
    // d128: GQA 3, tile-multiple and non-multiple lengths.
    runs.push_back({{"d128 varlen", {128, 200}, {128, 260}, 3, 1, 128}, rnd});
    if (!quick) {
        runs.push_back({{"d64 mha", {64, 129}, {64, 129}, 2, 2, 64}, rnd});
        runs.push_back({{"d128 gqa4", {257}, {300}, 4, 1, 128}, rr});
        // Rows that see no key at all (len_q > len_k, outside the contract): O = 0, lse = +inf, no NaN.
        // The third sequence has a whole query block (rows 0-127) that sees no key.
        runs.push_back({{"d64 masked rows", {40, 5, 150}, {20, 5, 10}, 2, 1, 64}, rr});
    }
    for (auto& r : runs) run_case(r.first, r.second, 0);
    // Deterministic mode: several key blocks per query block, several query blocks, GQA.
    run_case({"d64 deterministic", {190, 70}, {250, 70}, 4, 2, 64}, rr, 1);
    if (!quick) run_case({"d128 deterministic", {140}, {200}, 2, 1, 128}, rnd, 1);
    // The descending order: key blocks dispatched from the last, each waiting only on ones dispatched before it
    // (two resident blocks in launch order must not deadlock).
    run_case({"d64 deterministic, descending", {190, 70}, {250, 70}, 4, 2, 64}, rr, 2);
    if (!quick) run_case({"d128 deterministic, descending", {140}, {200}, 2, 1, 128}, rnd, 2);

    std::printf("%s (%d failure%s), %lld warp collectives emulated\n", g_failures ? "FAILED" : "PASSED", g_failures,
                g_failures == 1 ? "" : "s", tf_emu::S().ops);
    return g_failures ? 1 : 0;
}
