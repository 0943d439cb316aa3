#!/usr/bin/env python3
"""PyTorch peer for the flash attention benchmark: torch scaled_dot_product_attention pinned to
its FLASH_ATTENTION backend (FlashAttention-2 inside PyTorch), bf16, causal, grouped-query heads.

Run it on the GPU machine beside the Java side (same card, same session):

    python3 benchmarks/scripts/attention_peer.py            # Llama-3-8B shapes, 64K tokens a batch
    python3 benchmarks/scripts/attention_peer.py --seqs 1024 4096 --iters 20

Shapes: 32 query heads, 8 kv heads, head dim 128 (Llama-3-8B), batch x seq fixed at --tokens
(65536) for seq 1K, 4K, 16K, 64K. Tensors are allocated [batch, seq, heads, d] (the packed layout
the tenfold kernels use, one sequence per batch row) and handed to SDPA as transposed views,
which its flash backend takes without a copy. GQA: enable_gqa=True (PyTorch >= 2.5, supported by
the flash backend); where this torch lacks it, k/v are expanded to 32 heads once, outside the timed
region, and the JSON says "gqa": "expanded" (then the group sum of dK/dV is not timed).

Timing: CUDA events around each iteration after --warmup untimed ones; the median and the best of
--iters are reported. "fwd" times out = sdpa(q, k, v); "fwd_bwd" times the forward plus
out.backward(dout) with a fixed random dout (fresh .grad each iteration).

FLOP convention (REFERENCE.md): forward 4 * B * S^2 * H * d, halved for causal (H = query heads);
backward 2.5 x forward, so fwd_bwd counts 3.5 x the forward's flops.

Output: one JSON object per line on stdout (an "env" line, then one line per seq and pass, with the
row id GpuReport uses: attn_fwd_s<seq>, attn_fwd_bwd_s<seq>, and unit/value = TFLOP/s); errors (e.g. no
flash kernel for this device) are JSON lines with "error". Without torch or a GPU it prints one
"skipped" line and exits 0. --accounting prints each row's shape and FLOPs (no torch needed).
"""
import argparse
import json
import statistics
import sys

torch = None  # imported in main(), so that --accounting and a missing torch need no GPU stack
F = None


def emit(obj):
    print(json.dumps(obj), flush=True)


def flash_only():
    """Context manager that allows SDPA's flash backend only (raises if it cannot run)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        return sdpa_kernel([SDPBackend.FLASH_ATTENTION])
    except ImportError:  # torch < 2.3
        return torch.backends.cuda.sdp_kernel(enable_flash=True, enable_math=False, enable_mem_efficient=False)


def time_iters(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))  # ms
    return statistics.median(times), min(times)


def shape(batch, seq, hq, hkv, d):
    """The shape string GpuReport prints for the same case."""
    return "B=%d S=%d Hq=%d Hkv=%d d=%d causal" % (batch, seq, hq, hkv, d)


def fwd_flops(batch, seq, hq, d):
    """REFERENCE.md: 4 * B * S^2 * H * d, halved for causal."""
    return 4.0 * batch * seq * seq * hq * d / 2.0


def accounting(args):
    out = {}
    for seq in args.seqs:
        batch = max(1, args.tokens // seq)
        sh = shape(batch, seq, args.hq, args.hkv, args.d)
        f = fwd_flops(batch, seq, args.hq, args.d)
        out["attn_fwd_s%d" % seq] = {"shape": sh, "flops": f}
        out["attn_fwd_bwd_s%d" % seq] = {"shape": sh, "flops": 3.5 * f}
    return out


def main():
    global torch, F
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seqs", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    ap.add_argument("--tokens", type=int, default=65536, help="batch * seq for every seq")
    ap.add_argument("--hq", type=int, default=32)
    ap.add_argument("--hkv", type=int, default=8)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--accounting", action="store_true", help="print each row's shape and FLOPs as one JSON object and exit")
    args = ap.parse_args()

    if args.accounting:
        emit(accounting(args))
        return 0
    try:
        import torch as _torch
        import torch.nn.functional as _F
    except Exception as e:
        emit({"bench": "attention_peer", "skipped": "torch is not importable (%s: %s)" % (type(e).__name__, e)})
        return 0
    torch, F = _torch, _F
    if not torch.cuda.is_available():
        emit({"bench": "attention_peer", "skipped": "torch %s sees no CUDA device" % torch.__version__})
        return 0
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    emit({"bench": "attention_peer", "kind": "env", "torch": torch.__version__, "cuda": torch.version.cuda,
          "device": props.name, "sms": props.multi_processor_count,
          "flash_sdp_enabled": torch.backends.cuda.flash_sdp_enabled()})

    hq, hkv, d = args.hq, args.hkv, args.d
    scale = d ** -0.5
    gen = torch.Generator(device=dev).manual_seed(0)
    failures = 0
    for seq in args.seqs:
        batch = max(1, args.tokens // seq)
        base = {"bench": "attention_peer", "impl": "torch_sdpa_flash", "dtype": "bf16", "causal": True,
                "batch": batch, "seq": seq, "hq": hq, "hkv": hkv, "d": d, "shape": shape(batch, seq, hq, hkv, d)}
        q = torch.randn(batch, seq, hq, d, device=dev, dtype=torch.bfloat16, generator=gen)
        k = torch.randn(batch, seq, hkv, d, device=dev, dtype=torch.bfloat16, generator=gen)
        v = torch.randn(batch, seq, hkv, d, device=dev, dtype=torch.bfloat16, generator=gen)
        dout = torch.randn(batch, seq, hq, d, device=dev, dtype=torch.bfloat16, generator=gen)

        def call(qq, kk, vv, gqa):
            # [B, S, H, d] -> [B, H, S, d] views
            qt, kt, vt = qq.transpose(1, 2), kk.transpose(1, 2), vv.transpose(1, 2)
            if gqa:
                return F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, scale=scale, enable_gqa=True)
            return F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, scale=scale)

        gqa_mode = "enable_gqa"
        kk, vv = k, v
        try:
            with flash_only(), torch.no_grad():
                call(q, kk, vv, True)
        except (TypeError, RuntimeError):
            gqa_mode = "expanded"
            kk = k.repeat_interleave(hq // hkv, dim=2).contiguous()
            vv = v.repeat_interleave(hq // hkv, dim=2).contiguous()
        base["gqa"] = gqa_mode
        use_gqa = gqa_mode == "enable_gqa"

        f_fwd = fwd_flops(batch, seq, hq, d)  # causal: half
        try:
            with flash_only():
                with torch.no_grad():
                    ms, best = time_iters(lambda: call(q, kk, vv, use_gqa), args.warmup, args.iters)
                tflops = round(f_fwd / (ms * 1e-3) / 1e12, 2)
                emit({**base, "id": "attn_fwd_s%d" % seq, "unit": "TFLOP/s", "value": tflops,
                      "impl": "torch SDPA flash (%s)" % gqa_mode, "pass": "fwd", "ms": round(ms, 4), "best_ms": round(best, 4),
                      "tflops": tflops, "best_tflops": round(f_fwd / (best * 1e-3) / 1e12, 2)})
                fwd_ms = ms

                qg = q.detach().requires_grad_(True)
                kg = kk.detach().requires_grad_(True)
                vg = vv.detach().requires_grad_(True)
                dout_t = dout.transpose(1, 2)

                def fwd_bwd():
                    qg.grad = kg.grad = vg.grad = None
                    out = call(qg, kg, vg, use_gqa)
                    out.backward(dout_t)

                ms, best = time_iters(fwd_bwd, args.warmup, args.iters)
                total = 3.5 * f_fwd
                tflops = round(total / (ms * 1e-3) / 1e12, 2)
                emit({**base, "id": "attn_fwd_bwd_s%d" % seq, "unit": "TFLOP/s", "value": tflops,
                      "impl": "torch SDPA flash (%s)" % gqa_mode, "pass": "fwd_bwd", "ms": round(ms, 4), "best_ms": round(best, 4),
                      "tflops": tflops,
                      "best_tflops": round(total / (best * 1e-3) / 1e12, 2),
                      "bwd_ms_derived": round(ms - fwd_ms, 4),
                      "bwd_tflops_derived": round(2.5 * f_fwd / ((ms - fwd_ms) * 1e-3) / 1e12, 2)
                      if ms > fwd_ms else None})
                del qg, kg, vg
        except RuntimeError as e:  # e.g. no flash kernel for this device / shape, out of memory
            failures += 1
            for rid in ("attn_fwd_s%d" % seq, "attn_fwd_bwd_s%d" % seq):
                emit({**base, "id": rid, "error": str(e).splitlines()[0][:300]})
        del q, k, v, dout, kk, vv
        torch.cuda.empty_cache()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
