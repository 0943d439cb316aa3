#!/usr/bin/env python3
"""PyTorch peers of tenfold's GPU kernel benchmarks (GpuReport): the same ops, shapes and byte counts,
timed the same way, on the same GPU in the same session.

    python3 benchmarks/scripts/kernel_peers.py                 # every op
    python3 benchmarks/scripts/kernel_peers.py --only rmsnorm_fwd adamw --reps 5
    python3 benchmarks/scripts/kernel_peers.py --accounting    # shapes and bytes/FLOPs per row id (no torch needed)

Rows (ids as GpuReport names them): copy_d2d (tensor.copy_ of 1 GiB), gemm_bf16_* (torch.mm, bf16),
nf4_dequant_bf16 (bitsandbytes.functional.dequantize_4bit, double-quantized, when bitsandbytes imports),
rmsnorm_fwd (torch.nn.functional.rms_norm where present, else the Hugging Face LlamaRMSNorm formula),
rope_fwd (Hugging Face apply_rotary_pos_emb: x * cos + rotate_half(x) * sin, cos/sin precomputed),
swiglu_fwd (F.silu(g) * u), adamw (torch.optim.AdamW fused=True), cast_f32_bf16 / cast_bf16_f32
(tensor.copy_), embedding_fwd_bf16 (F.embedding), ce_stats (torch.logsumexp, like pass 1 of the
chunked loss), ce_grad (torch.softmax, like pass 2), softmax_fwd (torch.softmax).

Timing (as GpuReport): --warmup untimed calls, one call to size the samples, then --reps samples, each
timing ceil(--target-ms / one call) back-to-back calls between two torch.cuda.Events; the median is
reported. Bandwidth counts the bytes an op must read plus write (GpuWork.java; the formulas below mirror
it and a test checks that they agree); where the peer's op moves different bytes (embedding: bf16 out)
its own count is used and the row says so.

Output: one JSON object per line: an "env" line, then one line per row with id, impl, shape, unit,
value (GB/s or TFLOP/s), ms, best_ms; a row that cannot run is a line with "skipped" or "error".
A missing torch or GPU is a single "skipped" line and exit code 0.
"""
import argparse
import gc
import json
import math
import statistics
import sys

BENCH = "kernel_peers"
GiB = 1 << 30

# ---------------------------------------------------------------- sizes (GpuReport.Sizes.full)
SIZES = {
    "copy_bytes": GiB,
    "nf4_rows": 4096, "nf4_cols": 14336, "nf4_sets": 4,
    "norm_rows": 16384, "hidden": 4096,
    "rope_rows": 16384, "rope_heads": 32, "head_dim": 128,
    "swiglu_rows": 16384, "inter": 14336,
    "adamw_n": 100_000_000,
    "cast_n": 16384 * 4096,
    "embed_t": 16384, "vocab": 128256,
    "ce_t": 4096, "ce_vc": 8192,
    "softmax_rows": 16384, "softmax_n": 4096,
}
# (id, what, M, N, K): out [M, N] = x [M, K] @ W[N, K]^T
GEMMS = [
    ("gemm_bf16_square", "4096^3", 4096, 4096, 4096),
    ("gemm_bf16_qo", "q/o projection, 16K tokens", 16384, 4096, 4096),
    ("gemm_bf16_up", "gate/up projection, 16K tokens", 16384, 14336, 4096),
    ("gemm_bf16_down", "down projection, 16K tokens", 16384, 4096, 14336),
]


# ---------------------------------------------------------------- accounting (GpuWork.java)
def copy_bytes(n):
    return 2 * n


def nf4_dequant_bytes(n, double_quant, out_bytes):
    blocks = n // 64
    stats = blocks + 4 * (-(-blocks // 256)) + 4 * 256 if double_quant else 4 * blocks
    return n // 2 + stats + n * out_bytes


def rmsnorm_fwd_bytes(rows, h):
    return 4 * (2 * rows * h + h + rows)


def rope_bytes(rows, heads, d):
    return 4 * (2 * rows * heads * d + rows + d // 2)


def swiglu_fwd_bytes(n):
    return 3 * 4 * n


def adamw_bytes(n):
    return 7 * 4 * n


def cast_bytes(n, src, dst):
    return n * (src + dst)


def embedding_fwd_bytes(t, h, table_bytes, out_bytes=4, id_bytes=4):
    return t * h * (table_bytes + out_bytes) + id_bytes * t


def ce_stats_bytes(t, vc):
    return 4 * t * vc + 4 * t + 16 * t + 4 * t


def ce_grad_bytes(t, vc):
    return 8 * t * vc + 12 * t


def softmax_fwd_bytes(rows, n):
    return 8 * rows * n


def gemm_flops(m, n, k):
    return 2.0 * m * n * k


def runs_per_sample(ms_one, target_ms, max_runs):
    if not (ms_one > 0) or math.isinf(ms_one):
        return 1
    return int(max(1, min(max_runs, math.ceil(target_ms / ms_one))))


def plan():
    """Shape and work of every row id, in tenfold's convention (GpuReport.plan(Sizes.full()))."""
    s = SIZES
    p = {"copy_d2d": {"shape": "%d GiB" % (s["copy_bytes"] // GiB), "bytes": copy_bytes(s["copy_bytes"])}}
    for gid, _, m, n, k in GEMMS:
        p[gid] = {"shape": "M=%d N=%d K=%d" % (m, n, k), "flops": gemm_flops(m, n, k)}
    n = s["nf4_rows"] * s["nf4_cols"]
    p["nf4_dequant_bf16"] = {"shape": "%dx%d" % (s["nf4_rows"], s["nf4_cols"]), "bytes": nf4_dequant_bytes(n, True, 2)}
    p["rmsnorm_fwd"] = {"shape": "%dx%d f32" % (s["norm_rows"], s["hidden"]), "bytes": rmsnorm_fwd_bytes(s["norm_rows"], s["hidden"])}
    p["rope_fwd"] = {"shape": "%dx%dx%d f32" % (s["rope_rows"], s["rope_heads"], s["head_dim"]),
                     "bytes": rope_bytes(s["rope_rows"], s["rope_heads"], s["head_dim"])}
    p["swiglu_fwd"] = {"shape": "%dx%d f32" % (s["swiglu_rows"], s["inter"]), "bytes": swiglu_fwd_bytes(s["swiglu_rows"] * s["inter"])}
    p["adamw"] = {"shape": "{:,d} params".format(s["adamw_n"]), "bytes": adamw_bytes(s["adamw_n"])}
    cast_shape = "{:,d} elements".format(s["cast_n"])
    p["cast_f32_bf16"] = {"shape": cast_shape, "bytes": cast_bytes(s["cast_n"], 4, 2)}
    p["cast_bf16_f32"] = {"shape": cast_shape, "bytes": cast_bytes(s["cast_n"], 2, 4)}
    p["embedding_fwd_bf16"] = {"shape": "%d ids into %dx%d" % (s["embed_t"], s["vocab"], s["hidden"]),
                               "bytes": embedding_fwd_bytes(s["embed_t"], s["hidden"], 2)}
    ce_shape = "%dx%d f32 logits" % (s["ce_t"], s["ce_vc"])
    p["ce_stats"] = {"shape": ce_shape, "bytes": ce_stats_bytes(s["ce_t"], s["ce_vc"])}
    p["ce_grad"] = {"shape": ce_shape, "bytes": ce_grad_bytes(s["ce_t"], s["ce_vc"])}
    p["softmax_fwd"] = {"shape": "%dx%d f32" % (s["softmax_rows"], s["softmax_n"]),
                        "bytes": softmax_fwd_bytes(s["softmax_rows"], s["softmax_n"])}
    return p


PLAN = plan()


def emit(obj):
    print(json.dumps(obj), flush=True)


# ---------------------------------------------------------------- timing
class Timer:
    def __init__(self, torch, warmup, reps, target_ms, max_runs=1000):
        self.torch, self.warmup, self.reps, self.target_ms, self.max_runs = torch, warmup, reps, target_ms, max_runs

    def sample(self, fn, runs):
        torch = self.torch
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(runs):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / runs

    def measure(self, fn):
        for _ in range(self.warmup):
            fn()
        self.torch.cuda.synchronize()
        runs = runs_per_sample(self.sample(fn, 1), self.target_ms, self.max_runs)
        samples = [self.sample(fn, runs) for _ in range(self.reps)]
        return {"ms": statistics.median(samples), "best_ms": min(samples), "runs_per_sample": runs, "samples": len(samples)}


def bandwidth_row(rid, impl, m, note=None, nbytes=None):
    b = PLAN[rid]["bytes"] if nbytes is None else nbytes
    row = {"bench": BENCH, "id": rid, "impl": impl, "shape": PLAN[rid]["shape"], "unit": "GB/s",
           "value": b / (m["ms"] * 1e-3) / 1e9, "best_value": b / (m["best_ms"] * 1e-3) / 1e9, "bytes": b}
    row.update(m)
    if note:
        row["note"] = note
    return row


def compute_row(rid, impl, m, note=None):
    f = PLAN[rid]["flops"]
    row = {"bench": BENCH, "id": rid, "impl": impl, "shape": PLAN[rid]["shape"], "unit": "TFLOP/s",
           "value": f / (m["ms"] * 1e-3) / 1e12, "best_value": f / (m["best_ms"] * 1e-3) / 1e12, "flops": f}
    row.update(m)
    if note:
        row["note"] = note
    return row


# ---------------------------------------------------------------- cases
def cases(torch, F, timer):
    s = SIZES
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)

    def rand(*shape, dtype=torch.float32, scale=1.0):
        return (torch.rand(*shape, device=dev, generator=gen, dtype=torch.float32) * 2 - 1).mul_(scale).to(dtype)

    def copy_d2d():
        src = torch.randint(0, 256, (s["copy_bytes"],), device=dev, dtype=torch.uint8, generator=gen)
        dst = torch.empty_like(src)
        return bandwidth_row("copy_d2d", "tensor.copy_ (uint8)", timer.measure(lambda: dst.copy_(src)),
                             "the bandwidth reference: bytes read + bytes written")

    def gemm(gid, m, n, k):
        def run():
            a = rand(m, k, dtype=torch.bfloat16)
            w = rand(n, k, dtype=torch.bfloat16, scale=0.02)
            out = torch.empty(m, n, device=dev, dtype=torch.bfloat16)
            wt = w.t()
            return compute_row(gid, "torch.mm bf16 (cuBLAS)", timer.measure(lambda: torch.mm(a, wt, out=out)),
                               "x @ W^T with bf16 output (tenfold writes f32)")
        return run

    def nf4():
        try:
            import bitsandbytes as bnb
            import bitsandbytes.functional as bnbf
        except Exception as e:  # ImportError, or a CUDA setup error at import
            return {"bench": BENCH, "id": "nf4_dequant_bf16", "skipped": "bitsandbytes not importable (%s: %s)"
                    % (type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")}
        rows, cols = s["nf4_rows"], s["nf4_cols"]
        sets = []
        for _ in range(s["nf4_sets"]):
            w = rand(rows, cols, dtype=torch.bfloat16, scale=0.02)
            sets.append(bnbf.quantize_4bit(w, blocksize=64, compress_statistics=True, quant_type="nf4"))
            del w
        i = [0]

        def call():
            packed, state = sets[i[0] % len(sets)]
            i[0] += 1
            return bnbf.dequantize_4bit(packed, state)
        return bandwidth_row("nf4_dequant_bf16", "bitsandbytes %s dequantize_4bit" % getattr(bnb, "__version__", "?"),
                             timer.measure(call), "double-quantized absmax; inputs rotate over %d weights" % len(sets))

    def rmsnorm():
        rows, h, eps = s["norm_rows"], s["hidden"], 1e-5
        x = rand(rows, h)
        w = torch.ones(h, device=dev)
        if hasattr(F, "rms_norm"):
            return bandwidth_row("rmsnorm_fwd", "torch.nn.functional.rms_norm (f32)",
                                 timer.measure(lambda: F.rms_norm(x, (h,), w, eps)), "no rstd output")

        def hf():
            var = x.pow(2).mean(-1, keepdim=True)
            return w * (x * torch.rsqrt(var + eps))
        return bandwidth_row("rmsnorm_fwd", "HF LlamaRMSNorm formula (f32)", timer.measure(hf),
                             "this torch has no F.rms_norm; several kernels")

    def rope():
        rows, heads, d = s["rope_rows"], s["rope_heads"], s["head_dim"]
        x = rand(rows, heads, d)
        inv = 1.0 / (500000.0 ** (torch.arange(0, d, 2, device=dev, dtype=torch.float32) / d))
        freqs = torch.outer(torch.arange(rows, device=dev, dtype=torch.float32), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]

        def rotate_half(t):
            t1, t2 = t[..., : t.shape[-1] // 2], t[..., t.shape[-1] // 2:]
            return torch.cat((-t2, t1), dim=-1)
        return bandwidth_row("rope_fwd", "HF apply_rotary_pos_emb formula (f32)",
                             timer.measure(lambda: x * cos + rotate_half(x) * sin),
                             "cos/sin precomputed outside the timing (tenfold computes them in the kernel); several kernels")

    def swiglu():
        g = rand(s["swiglu_rows"], s["inter"], scale=3.0)
        u = rand(s["swiglu_rows"], s["inter"], scale=3.0)
        return bandwidth_row("swiglu_fwd", "F.silu(g) * u (f32)", timer.measure(lambda: F.silu(g) * u), "two kernels")

    def adamw():
        p = torch.nn.Parameter(rand(s["adamw_n"], scale=0.1))
        p.grad = rand(s["adamw_n"], scale=0.01)
        try:
            opt = torch.optim.AdamW([p], lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=True)
            impl = "torch.optim.AdamW(fused=True)"
        except (TypeError, RuntimeError):
            opt = torch.optim.AdamW([p], lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, foreach=True)
            impl = "torch.optim.AdamW(foreach=True): fused unavailable"
        return bandwidth_row("adamw", impl, timer.measure(opt.step), "one 100M-parameter tensor")

    def cast(to_bf16):
        rid = "cast_f32_bf16" if to_bf16 else "cast_bf16_f32"

        def run():
            src = rand(s["cast_n"], dtype=torch.float32 if to_bf16 else torch.bfloat16, scale=2.0)
            dst = torch.empty(s["cast_n"], device=dev, dtype=torch.bfloat16 if to_bf16 else torch.float32)
            return bandwidth_row(rid, "tensor.copy_", timer.measure(lambda: dst.copy_(src)))
        return run

    def embedding():
        t, h, v = s["embed_t"], s["hidden"], s["vocab"]
        table = rand(v, h, dtype=torch.bfloat16, scale=0.05)
        ids = torch.randint(0, v, (t,), device=dev, generator=gen)
        return bandwidth_row("embedding_fwd_bf16", "F.embedding (bf16 table, bf16 out)", timer.measure(lambda: F.embedding(ids, table)),
                             "its own bytes: bf16 rows out and int64 ids (tenfold writes f32 rows)",
                             nbytes=embedding_fwd_bytes(t, h, 2, out_bytes=2, id_bytes=8))

    def ce_stats():
        logits = rand(s["ce_t"], s["ce_vc"], scale=4.0)
        return bandwidth_row("ce_stats", "torch.logsumexp(dim=1)", timer.measure(lambda: torch.logsumexp(logits, dim=1)),
                             "the nearest PyTorch op to pass 1 (row max and sum of exponentials)")

    def ce_grad():
        logits = rand(s["ce_t"], s["ce_vc"], scale=4.0)
        return bandwidth_row("ce_grad", "torch.softmax(dim=1)", timer.measure(lambda: torch.softmax(logits, dim=1)),
                             "the nearest PyTorch op to pass 2 (softmax; tenfold also subtracts the one-hot, in place)")

    def softmax():
        x = rand(s["softmax_rows"], s["softmax_n"], scale=4.0)
        return bandwidth_row("softmax_fwd", "torch.softmax(dim=-1) (f32)", timer.measure(lambda: torch.softmax(x, dim=-1)))

    out = [("copy_d2d", copy_d2d)]
    out += [(gid, gemm(gid, m, n, k)) for gid, _, m, n, k in GEMMS]
    out += [("nf4_dequant_bf16", nf4), ("rmsnorm_fwd", rmsnorm), ("rope_fwd", rope), ("swiglu_fwd", swiglu), ("adamw", adamw),
            ("cast_f32_bf16", cast(True)), ("cast_bf16_f32", cast(False)), ("embedding_fwd_bf16", embedding),
            ("ce_stats", ce_stats), ("ce_grad", ce_grad), ("softmax_fwd", softmax)]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", help="row ids to run (default: all)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--target-ms", type=float, default=25.0)
    ap.add_argument("--accounting", action="store_true", help="print each row's shape and bytes/FLOPs as one JSON object and exit")
    args = ap.parse_args(argv)

    if args.accounting:
        emit(PLAN)
        return 0
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:
        emit({"bench": BENCH, "skipped": "torch is not importable (%s: %s)" % (type(e).__name__, e)})
        return 0
    if not torch.cuda.is_available():
        emit({"bench": BENCH, "skipped": "torch %s sees no CUDA device" % torch.__version__})
        return 0

    props = torch.cuda.get_device_properties(0)
    emit({"bench": BENCH, "kind": "env", "torch": torch.__version__, "cuda": torch.version.cuda, "device": props.name,
          "sms": props.multi_processor_count, "memory_gib": round(props.total_memory / GiB, 1),
          "timing": "CUDA events; warm-up %d, median of %d samples of about %g ms each" % (args.warmup, args.reps, args.target_ms)})
    timer = Timer(torch, args.warmup, args.reps, args.target_ms)
    failures = 0
    for rid, case in cases(torch, F, timer):
        if args.only and rid not in args.only:
            continue
        try:
            row = case()
            if row is not None:
                emit(row)
        except Exception as e:  # one failed op (out of memory, a missing kernel) does not stop the others
            failures += 1
            msg = str(e).splitlines()[0][:300] if str(e) else ""
            emit({"bench": BENCH, "id": rid, "error": "%s: %s" % (type(e).__name__, msg)})
        finally:
            gc.collect()
            torch.cuda.empty_cache()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
