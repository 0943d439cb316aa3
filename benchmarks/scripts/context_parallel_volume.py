#!/usr/bin/env python3
"""Arithmetic, not a measurement: Ulysses context parallelism's communication volume and the step's
compute, per layer and per step, for Llama-3-8B on N GPUs, as tenfold's step runs them.

A layer's forward moves q, k, v to head shards and the attention output back (4 all-to-alls); the
backward recomputes that forward (4 more, tenfold keeps only each layer's input) and moves dOut to
head shards and dq, dk, dv back (4 more). Each all-to-all of a tensor of S bytes (the whole
sequence's) sends S / N x (N - 1) / N bytes from each rank over the links.

Compute: the frozen linear layers 6 P T (forward, the backward's recompute, the input gradient;
LoRA's few extra flops left out), the output layer 4 V H T (chunked loss: forward and input
gradient), causal attention 2 T^2 Hq d per layer forward, counted 4.5 times (forward, recompute,
a flash backward of 2.5 forwards). Printed as markdown.

    python3 benchmarks/scripts/context_parallel_volume.py [--gpus 8] [--tflops 400] [--link-gbs 300]
"""
import argparse

p = argparse.ArgumentParser()
p.add_argument("--gpus", type=int, default=8)
p.add_argument("--tflops", type=float, default=400.0, help="achieved BF16 TFLOP/s per GPU assumed for the compute time")
p.add_argument("--link-gbs", type=float, default=300.0, help="all-to-all bandwidth per GPU assumed, GB/s (one direction)")
a = p.parse_args()

# Llama-3-8B
H, L, HQ, HKV, D, INTER, V = 4096, 32, 32, 8, 128, 14336, 128256
ELEM = 2  # BF16 activations
N = a.gpus
assert HKV % N == 0, "Ulysses needs N to divide the key/value heads"

per_token_fwd = (HQ * D + 2 * HKV * D + HQ * D) * ELEM          # q, k, v out; att back
per_token_layer_step = 3 * per_token_fwd                         # forward, recompute, backward (dOut, dq, dk, dv: same sizes)
linear_params = L * (2 * H * HQ * D + 2 * H * HKV * D + 3 * H * INTER)

def gib(x): return x / 2**30

def allgather_step(T):
    """The Llama 3 paper's scheme, for comparison: every rank gathers the whole K and V (forward and
    recompute) and reduce-scatters dK, dV (backward): 3 moves of (N - 1) / N of K and V per layer."""
    return 3 * T * 2 * HKV * D * ELEM * (N - 1) / N * L

print(f"Llama-3-8B (hidden {H}, {L} layers, {HQ}/{HKV} heads of {D}, MLP {INTER}, vocab {V}), BF16 activations, "
      f"Ulysses over {N} GPUs; assumed {a.tflops:.0f} TFLOP/s and {a.link_gbs:.0f} GB/s all-to-all per GPU\n")
print("| tokens | sent per GPU per layer | sent per GPU per step | compute per GPU per step | step compute time | all-to-all time | ratio | all-gather of K, V instead, per GPU per step |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for T in (256 * 1024, 1024 * 1024):
    sent_layer = T * per_token_layer_step / N * (N - 1) / N
    sent_step = sent_layer * L
    flops = 6 * linear_params * T + 4 * V * H * T + L * 4.5 * 2 * T * T * HQ * D
    per_gpu = flops / N
    t_compute = per_gpu / (a.tflops * 1e12)
    t_comm = sent_step / (a.link_gbs * 1e9)
    print(f"| {T:,} | {gib(sent_layer):.2f} GiB | {gib(sent_step):.1f} GiB | {per_gpu / 1e15:.1f} PFLOP | {t_compute:.0f} s | "
          f"{t_comm:.2f} s | {t_comm / t_compute * 100:.2f} % | {gib(allgather_step(T)):.1f} GiB |")
print(f"\nper token and layer, the whole group: forward {per_token_fwd:,} bytes, step {per_token_layer_step:,} bytes")
