// The deterministic flash backward cannot hang: its dQ ordering waits are bounded. Runs the backward
// kernel (flash_attention_bwd.cu, unchanged) on the warp emulator (flash_emu.h) three times on one
// sequence of three key blocks:
//   1. deterministic, blocks dispatched in launch order: the error word stays 0;
//   2. deterministic, blocks dispatched in reverse order one at a time (a waiting block holds the
//      only slot its predecessor needs, as compute-sanitizer or MPS can arrange): the wait gives up
//      after its bound, the error word says TF_FLASH_BWD_ERR_WAIT_TIMEOUT, the launch ends;
//   3. non-deterministic in that same broken order: nothing waits, the error word stays 0 and dQ
//      matches run 1's;
//   4. and 5. the descending order (deterministic == 2): in launch order with one block at a time
//      (each block waits only on blocks dispatched before it) the error word stays 0 and dQ matches
//      run 1's; in reverse order one at a time the wait gives up, as in 2.
// Exit 0 when all five behave. Built and run by FlashWaitTest (mvn test) in a few seconds.
#include "flash_emu.h"

#include "../../main/cuda/flash_attention_bwd.cu"

#include <algorithm>
#include <vector>

namespace {

constexpr int D = 64, LEN = 3 * TF_FLASH_BWD_BLOCK_N - 5;  // three key blocks, the last one short

struct Result {
    int error;
    double seconds;
    std::vector<float> dq;
};

Result run(int det, bool reverse, int resident) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 1.f);
    const size_t n = static_cast<size_t>(LEN) * D;
    std::vector<uint16_t> q(n), k(n), v(n), dout(n);
    for (auto* t : {&q, &k, &v, &dout})
        for (auto& x : *t) x = static_cast<uint16_t>(tf_emu::bf16_rn(nd(rng)));
    std::vector<float> lse(LEN, 4.f), delta(LEN, 0.1f);
    const long long sem_words = TF_FLASH_BWD_SEM_WORDS(1, 1, LEN);
    std::vector<float> acc(n + sem_words, 0.f);  // dq_accum, then the semaphores (zero bits)
    std::vector<uint16_t> dk(n), dv(n);
    std::vector<int> cu = {0, LEN};
    int error = 0;

    tf_emu::S().reverse_dispatch = reverse;
    const bf16 *qp = reinterpret_cast<const bf16*>(q.data()), *kp = reinterpret_cast<const bf16*>(k.data()),
               *vp = reinterpret_cast<const bf16*>(v.data()), *dop = reinterpret_cast<const bf16*>(dout.data());
    const float *lp = lse.data(), *dl = delta.data();
    float* ap = acc.data();
    bf16 *dkp = reinterpret_cast<bf16*>(dk.data()), *dvp = reinterpret_cast<bf16*>(dv.data());
    const int* cp = cu.data();
    int* ep = &error;
    const tf_emu::Dim3 grid{(LEN + TF_FLASH_BWD_BLOCK_N - 1) / TF_FLASH_BWD_BLOCK_N, 1, 1};
    const unsigned long long start = tf_emu::now_ns();
    tf_emu::launch(grid, {TF_FLASH_BWD_THREADS, 1, 1}, TF_FLASH_BWD_SMEM(D), resident, [=] {
        tf_flash_bwd_d64(qp, kp, vp, dop, lp, dl, ap, dkp, dvp, cp, cp, 1, LEN, 1, 1, 0.125f, det, ep);
    });
    tf_emu::S().reverse_dispatch = false;
    return {error, (tf_emu::now_ns() - start) * 1e-9, std::vector<float>(acc.begin(), acc.begin() + n)};
}

}  // namespace

int main() {
    int failures = 0;
    Result inOrder = run(1, false, 2);  // with the real bound (10 s): a slow host must not trip it
    std::printf("deterministic, launch order: error word %d, %.2f s\n", inOrder.error, inOrder.seconds);
    failures += inOrder.error != 0;

    tf_emu::S().wait_ns = 500'000'000ull;  // 0.5 s, so that the test is quick
    Result broken = run(1, true, 1);
    const bool gaveUp = broken.error == TF_FLASH_BWD_ERR_WAIT_TIMEOUT;
    std::printf("deterministic, reverse order, one block at a time: error word %d (%s), ended after %.2f s "
                "(wait bound %.2f s)\n",
                broken.error, gaveUp ? "TF_FLASH_BWD_ERR_WAIT_TIMEOUT" : "WRONG", broken.seconds,
                tf_emu::S().wait_ns * 1e-9);
    failures += !gaveUp;

    Result atomic = run(0, true, 1);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < atomic.dq.size(); ++i) {
        worst = std::max(worst, static_cast<double>(std::fabs(atomic.dq[i] - inOrder.dq[i])));
        scale = std::max(scale, static_cast<double>(std::fabs(inOrder.dq[i])));
    }
    const bool same = atomic.error == 0 && worst <= 1e-5 * std::max(scale, 1.0);
    std::printf("non-deterministic, reverse order: error word %d, dQ within %.1e of the deterministic run's (%s)\n",
                atomic.error, worst, same ? "ok" : "WRONG");
    failures += !same;

    Result descending = run(2, false, 1);
    double dworst = 0;
    for (size_t i = 0; i < descending.dq.size(); ++i)
        dworst = std::max(dworst, static_cast<double>(std::fabs(descending.dq[i] - inOrder.dq[i])));
    const bool descendingOk = descending.error == 0 && dworst <= 1e-5 * std::max(scale, 1.0);
    std::printf("descending, launch order, one block at a time: error word %d, dQ within %.1e of run 1's (%s)\n",
                descending.error, dworst, descendingOk ? "ok" : "WRONG");
    failures += !descendingOk;

    Result descendingBroken = run(2, true, 1);
    const bool descendingGaveUp = descendingBroken.error == TF_FLASH_BWD_ERR_WAIT_TIMEOUT;
    std::printf("descending, reverse order, one block at a time: error word %d (%s)\n", descendingBroken.error,
                descendingGaveUp ? "TF_FLASH_BWD_ERR_WAIT_TIMEOUT" : "WRONG");
    failures += !descendingGaveUp;

    std::printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}
