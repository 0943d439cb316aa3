#!/usr/bin/env python3
"""The CPU peer of tenfold's LoRA training step (StepPeer, `./tenfold bench step-peer`):
transformers + peft on torch for the CPU, on the model folder and data StepPeer measures tenfold on.

    python3 cpu_step_peer.py make DIR --hidden 256 --heads 8 --kv-heads 2 --mlp 688 --layers 4 --vocab 2048 --tokens 16384
    python3 cpu_step_peer.py step DIR --tokens 1024 --steps 3 --threads 2
    python3 cpu_step_peer.py profile DIR --tokens 1024 --steps 3 --threads 2

make: a LlamaForCausalLM with transformers' random init, saved as F32 safetensors (config.json,
model.safetensors), and data.json: --tokens + 1 token ids drawn with a fixed seed, which both
sides read (a step of T tokens trains on the first T + 1: ids 0..T-1 predicting 1..T).

step: the model loaded in F32 with SDPA attention, peft LoRA r=8, alpha 16, dropout 0 on q, k, v,
o; AdamW (lr 2e-4, torch's defaults otherwise); the gradient norm clipped at 1 as tenfold's trainer
does. One step = zero_grad, forward with labels, backward, clip, AdamW. One untimed warm-up step,
then --steps timed ones. No gradient checkpointing (the peer's fastest setting at these sizes).
Prints one JSON line: {"tokens": T, "seconds": [...], "first_seconds": s, "loss": l, versions}.

profile: the same steps (after two untimed ones) under torch.profiler (CPU): one JSON line with each aten op's
self time per step in ms, largest first, the products' by shape ("products": mm, addmm and bmm as "MxNxK"), and the
unprofiled step time measured just before ("step_seconds"); the profiler's own cost makes the ops add up to more than
that. Where tenfold's step goes is
benchmarks/scripts/jfr_step_ops.py's.
"""
import argparse
import json
import os
import random
import sys
import time


def make(args):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=args.hidden, intermediate_size=args.mlp, num_hidden_layers=args.layers,
                      num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, vocab_size=args.vocab,
                      max_position_embeddings=max(args.tokens, 8192), rms_norm_eps=1e-5, rope_theta=500000.0,
                      tie_word_embeddings=False, hidden_act="silu", bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    os.makedirs(args.dir, exist_ok=True)
    model.save_pretrained(args.dir, safe_serialization=True)
    rng = random.Random(1)
    with open(os.path.join(args.dir, "data.json"), "w") as f:
        json.dump([rng.randrange(args.vocab) for _ in range(args.tokens + 1)], f)


def load_step(args):
    """The model, data and optimizer of a step as `step` measures it; returns one() -> (seconds, loss)."""
    import torch
    torch.set_num_threads(args.threads)
    from transformers import LlamaForCausalLM
    from peft import LoraConfig, get_peft_model
    model = LlamaForCausalLM.from_pretrained(args.dir, dtype=torch.float32, attn_implementation="sdpa")
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.train()
    with open(os.path.join(args.dir, "data.json")) as f:
        data = json.load(f)
    if len(data) < args.tokens + 1:
        sys.exit("data.json has %d ids; --tokens %d needs %d" % (len(data), args.tokens, args.tokens + 1))
    ids = torch.tensor([data[:args.tokens + 1]], dtype=torch.long)
    inputs, labels = ids[:, :-1], ids[:, 1:]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)

    def one():
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return time.perf_counter() - t0, loss.item()
    return one


def versions():
    import torch
    import transformers
    import peft
    # cpu_capability: the vector instructions ATen's kernels run with (ATEN_CPU_CAPABILITY can lower it)
    return {"threads": torch.get_num_threads(), "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def step(args):
    one = load_step(args)
    first, loss = one()
    times = []
    for _ in range(args.steps):
        s, loss = one()
        times.append(s)
    print(json.dumps({"tokens": args.tokens, "seconds": times, "first_seconds": first, "loss": loss, **versions()}),
          flush=True)


def profile(args):
    from torch.profiler import profile as torch_profile, ProfilerActivity
    one = load_step(args)
    one()
    one()
    plain = sorted(one()[0] for _ in range(args.steps))[args.steps // 2]
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(args.steps):
            one()
    ops = sorted(((e.key, e.self_cpu_time_total / 1000.0 / args.steps, e.count // args.steps)
                  for e in prof.key_averages()), key=lambda x: -x[1])
    total = sum(ms for _, ms, _ in ops)
    print(json.dumps({"tokens": args.tokens, "step_seconds": plain, "profiled_ms_per_step": total,
                      "ops": [{"op": k, "self_ms": round(ms, 2), "calls": c} for k, ms, c in ops if ms >= 0.005 * total],
                      "products": products(prof, args.steps), **versions()}), flush=True)


def products(prof, steps):
    """The products (mm, addmm, bmm) by shape "MxNxK" (out M x N, sum over K; a batch counts as rows), self ms and calls per step."""
    by_shape = {}
    for e in prof.key_averages(group_by_input_shape=True):
        if e.key not in ("aten::mm", "aten::addmm", "aten::bmm"):
            continue
        mats = [s for s in e.input_shapes if len(s) >= 2][-2:]  # addmm's bias comes first
        if len(mats) != 2:
            continue
        a, b = mats
        m = 1
        for d in a[:-1]:
            m *= d
        key = "%dx%dx%d" % (m, b[-1], a[-1])
        ms, calls = by_shape.get(key, (0.0, 0))
        by_shape[key] = (ms + e.self_cpu_time_total / 1000.0 / steps, calls + e.count // steps)
    return [{"shape": k, "self_ms": round(ms, 3), "calls": c}
            for k, (ms, c) in sorted(by_shape.items(), key=lambda kv: -kv[1][0])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["make", "step", "profile"])
    ap.add_argument("dir")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--mlp", type=int, default=688)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.what != "make" and args.steps < 1:
        ap.error("--steps must be at least 1, got %d" % args.steps)
    if args.tokens < 1 or args.threads < 1:
        ap.error("--tokens and --threads must be at least 1, got %d and %d" % (args.tokens, args.threads))
    {"make": make, "step": step, "profile": profile}[args.what](args)


if __name__ == "__main__":
    main()
