#!/usr/bin/env python3
"""Mutation check of the flash attention emulator test: plants one known bug at a time in a copy
of native-kernels/src (a swapped mma operand, a missing barrier, a wrong cp.async wait count, an
off-by-one mask, a wrong fragment order, a wrong GQA head, a broken semaphore, ...), builds the
emulator test against the copy and runs it with --quick. Every mutation must be caught (a failed
check, an emulator abort or a deadlock); a miss means the test cannot see that class of bug.

    python3 native-kernels/src/test/cpp/flash_mutations.py [substring ...]   (about 5-10 minutes)
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
INC = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "include")
if not os.path.exists(os.path.join(INC, "cuda_bf16.h")):
    INC = os.path.join(HERE, "stub")

M=[
 ("fwd S mma b0/b1 swapped", "main/cuda/flash_attention_fwd.cu", "mma_bf16(s[2 * np], qf[kk], bk[0], bk[1]);", "mma_bf16(s[2 * np], qf[kk], bk[1], bk[0]);"),
 ("fwd no barrier before PV", "main/cuda/flash_attention_fwd.cu", "        block_sync();        // ... for every thread's chunks; and all warps are done with K[n]\n", "\n"),
 ("fwd wait<2> before PV", "main/cuda/flash_attention_fwd.cu", "cp_async_wait<1>();  // all but the newest group (K[n-1])", "cp_async_wait<2>();  // all but the newest group (K[n-1])"),
 ("fwd no barrier at end of iteration", "main/cuda/flash_attention_fwd.cu", "            block_sync();        // ... for all threads; and every warp is done with V[n]\n", "\n"),
 ("loader without swizzle", "main/cuda/flash_common.cuh", "cp_async16(s + swz<D * 2>(r, c),", "cp_async16(s + static_cast<u32>(r * D * 2 + (c << 4)),"),
 ("fwd mask off by one", "main/cuda/flash_attention_fwd.cu", "if (key > pos) s[j][e] = -INFINITY;", "if (key >= pos) s[j][e] = -INFINITY;"),
 ("fwd alpha of wrong row", "main/cuda/flash_attention_fwd.cu", "acc[j][2] *= alpha[1];", "acc[j][2] *= alpha[0];"),
 ("addr_nk16 matrix order", "main/cuda/flash_common.cuh", "chunk0 + ((lane >> 3) & 1));", "chunk0 + (lane >> 4));"),
 ("fwd n_end one short", "main/cuda/flash_attention_fwd.cu", "imin(len_k, offset + m_base + rows);", "imin(len_k, offset + m_base + rows - 1);"),
 ("fwd l not rescaled", "main/cuda/flash_attention_fwd.cu", "l_run[r] = l_run[r] * alpha[r] + rs[r];", "l_run[r] = l_run[r] + rs[r];"),
 ("fwd epilogue row", "main/cuda/flash_attention_fwd.cu", "sts32(sQ + swz<RB>(rA + 8, j) + 4 * t,", "sts32(sQ + swz<RB>(rA, j) + 4 * t,"),
 ("fwd GQA head map", "main/cuda/flash_attention_fwd.cu", "const int hk = h / (hq / hkv);", "const int hk = h % hkv;"),
 ("fwd P fragment order", "main/cuda/flash_attention_fwd.cu", "pa[kk][1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);\n                pa[kk][2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);", "pa[kk][2] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);\n                pa[kk][1] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);"),
 ("bwd delta of wrong row", "main/cuda/flash_attention_bwd.cu", "pa[j][e] = p * (pa[j][e] - dl[e >> 1]);", "pa[j][e] = p * (pa[j][e] - dl[0]);"),
 ("bwd no barrier at end of step", "main/cuda/flash_attention_bwd.cu", "        block_sync();\n        if (deterministic && tid == 0) sem_release(my_sem);", "        if (deterministic && tid == 0) sem_release(my_sem);"),
 ("bwd no barrier after P/dS store", "main/cuda/flash_attention_bwd.cu", "pack_bf16(pa[j][2], pa[j][3]));\n        }\n        block_sync();", "pack_bf16(pa[j][2], pa[j][3]));\n        }\n"),
 ("bwd m_first rounded up", "main/cuda/flash_attention_bwd.cu", "const int m_first = imax(0, n_base - offset) / BM;", "const int m_first = (imax(0, n_base - offset) + BM - 1) / BM;"),
 ("bwd never masks", "main/cuda/flash_attention_bwd.cu", "const bool need_mask = m_base + BM > len_q || n_base + BN > len_k || n_base + BN - 1 > offset + m_base;", "const bool need_mask = false;"),
 ("fwd no barrier after Q to registers", "main/cuda/flash_attention_fwd.cu", "        block_sync();  // every warp holds its Q fragments", "        // every warp holds its Q fragments"),
 ("bwd dK not scaled", "main/cuda/flash_attention_bwd.cu", "pack_bf16(dk_acc[j][2 * r] * scale, dk_acc[j][2 * r + 1] * scale);", "pack_bf16(dk_acc[j][2 * r], dk_acc[j][2 * r + 1]);"),
 ("bwd P^T without trans", "main/cuda/flash_attention_bwd.cu", "ldsm_x4_t(addr_kt16<PB>(sP, 16 * kk, 2 * w4, lane), ap);", "ldsm_x4(addr_kt16<PB>(sP, 16 * kk, 2 * w4, lane), ap);"),
 ("bwd GQA head of step", "main/cuda/flash_attention_bwd.cu", "        const int h = hk * G + s / m_count;\n        const int m = m_first", "        const int h = hk + s / m_count;\n        const int m = m_first"),
 ("bwd sem waits for 0", "main/cuda/flash_attention_bwd.cu", "sem_wait(my_sem, nblk, error)", "sem_wait(my_sem, 0, error)"),
 ("bwd sem released early", "main/cuda/flash_attention_bwd.cu", "                return;\n            }\n        }\n        // dq[j][e] is row", "                return;\n            }\n            if (tid == 0) sem_release(my_sem);\n        }\n        // dq[j][e] is row"),
 ("bwd_pre short reduction", "main/cuda/flash_attention_bwd.cu", "for (int m = 16; m > 0; m >>= 1)", "for (int m = 8; m > 0; m >>= 1)"),
 ("bwd wait<2>", "main/cuda/flash_attention_bwd.cu", "cp_async_wait<1>();  // all but the newest group: step s's", "cp_async_wait<2>();  // all but the newest group: step s's"),
 ("bwd dQ column half", "main/cuda/flash_attention_bwd.cu", "* D + w2 * (D / 2) + 2 * t;\n#pragma unroll\n                for (int j = 0; j < HN; ++j) atomic_add_f32x2", "* D + 2 * t;\n#pragma unroll\n                for (int j = 0; j < HN; ++j) atomic_add_f32x2"),
 ("bwd descending waits for one more", "main/cuda/flash_attention_bwd.cu", "imin(offset + m_base + BM - 1, len_k - 1) / BN - nblk : nblk;", "imin(offset + m_base + BM - 1, len_k - 1) / BN - nblk + 1 : nblk;"),
 ("bwd descending waits for one less", "main/cuda/flash_attention_bwd.cu", "imin(offset + m_base + BM - 1, len_k - 1) / BN - nblk : nblk;", "imin(offset + m_base + BM - 1, len_k - 1) / BN - nblk - 1 : nblk;"),
 ("bwd descending dispatched from the first", "main/cuda/flash_attention_bwd.cu", "deterministic == 2 ? static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x) : blockIdx.x;", "static_cast<int>(blockIdx.x);"),
 ("bwd dQ pair swapped", "main/cuda/flash_attention_bwd.cu", "atomic_add_f32x2(dst + 8 * j, dq[j][2 * r], dq[j][2 * r + 1]);", "atomic_add_f32x2(dst + 8 * j, dq[j][2 * r + 1], dq[j][2 * r]);"),
]
only = sys.argv[1:]
caught=0
missed=0
tmp=tempfile.mkdtemp(prefix='flash_mut_')
for name, f, a, b in M:
    if only and not any(o in name for o in only): continue
    d=os.path.join(tmp,'src')
    shutil.rmtree(d, ignore_errors=True); shutil.copytree(SRC, d)
    p=os.path.join(d,f); s=open(p).read()
    n=s.count(a)
    if n!=1: print(f"!! {name}: pattern found {n} times (stale mutation)"); missed += 1; continue
    open(p,'w').write(s.replace(a,b))
    c=subprocess.run(['g++','-std=c++17','-O2','-I'+INC,'-o',os.path.join(tmp,'t'),d+'/test/cpp/flash_emu_test.cpp'],capture_output=True,text=True)
    if c.returncode: print(f"?? {name}: compile error\n{c.stderr[:500]}"); missed += 1; continue
    try:
        r=subprocess.run([os.path.join(tmp,'t'),'--quick'],capture_output=True,text=True,timeout=300)
        out=(r.stdout+r.stderr)
        ok = r.returncode==0
        fails=[l.strip() for l in out.splitlines() if 'FAIL' in l or 'emu:' in l or 'DIFF' in l or 'WRONG' in l][:3]
    except subprocess.TimeoutExpired:
        ok=False; fails=['timeout']
    caught += (not ok)
    missed += ok
    print(f"{'caught ' if not ok else 'MISSED '} {name}: {'; '.join(fails) if not ok else ''}", flush=True)
shutil.rmtree(tmp, ignore_errors=True)
print(f"caught {caught}, missed or stale {missed}")
sys.exit(1 if missed else 0)
