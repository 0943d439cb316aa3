#!/usr/bin/env python3
"""PyTorch peer of GpuReport's QLoRA training step: Hugging Face transformers + peft, a
LlamaForCausalLM built from a Llama-3-8B config with random weights, one training sequence of
--tokens tokens: tokens/s and peak GPU memory, on the same GPU in the same session as tenfold.

    python3 benchmarks/scripts/qlora_step_peer.py                  # 16K tokens, 1 warm-up + 2 timed steps
    python3 benchmarks/scripts/qlora_step_peer.py --tokens 8192 --steps 3
    python3 benchmarks/scripts/qlora_step_peer.py --bf16-base      # skip bitsandbytes even when present

Model: hidden 4096, 32 layers, 32/8 heads of 128, MLP 14336, vocab 128256, untied lm_head, random
init (transformers' own, on the GPU, bf16), SDPA attention. Base: the seven projections of every layer
turned into bitsandbytes Linear4bit (NF4, double quantization, bf16 compute) when bitsandbytes imports,
else left bf16 (the output says which, in "base" and "impl"). LoRA (peft): r=32, alpha=16, dropout 0,
on q_proj, k_proj, v_proj, o_proj. Gradient checkpointing (non-reentrant where transformers offers it).
One step = zero_grad, forward with labels (the loss over the full logits, as transformers computes it),
backward, AdamW (fused where available). Timed with a synchronize and perf_counter around whole steps
(as tenfold's step is); memory = torch.cuda.max_memory_allocated / max_memory_reserved since the
model was built (weights included).

Output: JSON lines: an "env" line, then {"id": "qlora_step", "unit": "tokens/s", ...} and
{"id": "qlora_step_peak_mem", "unit": "GiB", ...}; a missing package or GPU gives one "skipped" line
and exit 0; a failure (e.g. out of memory) gives "error" lines and exit 1.
"""
import argparse
import gc
import json
import statistics
import sys
import time

BENCH = "qlora_step_peer"
GiB = 1 << 30
# the same words GpuReport prints for this row's shape (GpuTrainStep.LLAMA3_8B_DESCRIPTION)
DESCRIPTION = "Llama-3-8B shape (hidden 4096, 32 layers, 32/8 heads of 128, MLP 14336, vocab 128256)"
CONFIG = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
              num_key_value_heads=8, vocab_size=128256, rms_norm_eps=1e-5, rope_theta=500000.0,
              tie_word_embeddings=False, hidden_act="silu")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
BASE_LINEARS = {"self_attn": ["q_proj", "k_proj", "v_proj", "o_proj"], "mlp": ["gate_proj", "up_proj", "down_proj"]}


def emit(obj):
    print(json.dumps(obj), flush=True)


def shape(tokens):
    return "%d tokens, %s" % (tokens, DESCRIPTION)


def first_line(e):
    s = str(e)
    return "%s: %s" % (type(e).__name__, s.splitlines()[0][:300] if s else "")


def to_nf4(torch, bnb, linear):
    """A bitsandbytes Linear4bit (NF4, double quantization, bf16 compute) holding linear's weight, quantized on the GPU."""
    q = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=False, compute_dtype=torch.bfloat16,
                          compress_statistics=True, quant_type="nf4", device="meta")
    w = bnb.nn.Params4bit(linear.weight.data, requires_grad=False, compress_statistics=True, quant_type="nf4", blocksize=64)
    q.weight = w.to(linear.weight.device)  # Params4bit quantizes when moved to a CUDA device
    if getattr(q.weight, "quant_state", None) is None:
        raise RuntimeError("Params4bit did not quantize on .to(cuda) (bitsandbytes API changed?)")
    return q


def quantize_base(torch, bnb, model):
    """Every layer's seven projections to NF4, in place; returns how many."""
    n = 0
    for layer in model.model.layers:
        for block_name, names in BASE_LINEARS.items():
            block = getattr(layer, block_name)
            for name in names:
                setattr(block, name, to_nf4(torch, bnb, getattr(block, name)))
                n += 1
        torch.cuda.empty_cache()
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--bf16-base", action="store_true", help="do not quantize the base even if bitsandbytes is present")
    ap.add_argument("--accounting", action="store_true", help="print the row's shape as one JSON object and exit")
    args = ap.parse_args(argv)
    if args.accounting:
        emit({"qlora_step": {"shape": shape(args.tokens)}, "qlora_step_peak_mem": {"shape": shape(args.tokens)}})
        return 0

    try:
        import torch
        import transformers
        import peft
        from transformers import LlamaConfig, LlamaForCausalLM
    except Exception as e:
        emit({"bench": BENCH, "skipped": "torch, transformers or peft is not importable (%s)" % first_line(e)})
        return 0
    if not torch.cuda.is_available():
        emit({"bench": BENCH, "skipped": "torch %s sees no CUDA device" % torch.__version__})
        return 0
    bnb, bnb_why = None, None
    if args.bf16_base:
        bnb_why = "--bf16-base"
    else:
        try:
            import bitsandbytes as bnb
        except Exception as e:
            bnb_why = "bitsandbytes not importable (%s)" % first_line(e)

    dev = torch.device("cuda")
    if bnb is not None:
        try:  # a bitsandbytes without working CUDA kernels fails here, before the model is touched
            probe = torch.nn.Linear(128, 128, bias=False, device=dev, dtype=torch.bfloat16)
            with torch.no_grad():
                to_nf4(torch, bnb, probe)(torch.ones(2, 128, device=dev, dtype=torch.bfloat16))
            del probe
        except Exception as e:
            bnb, bnb_why = None, "bitsandbytes %s failed a probe (%s)" % (getattr(bnb, "__version__", "?"), first_line(e))
    props = torch.cuda.get_device_properties(dev)
    env = {"bench": BENCH, "kind": "env", "torch": torch.__version__, "cuda": torch.version.cuda,
           "transformers": transformers.__version__, "peft": peft.__version__,
           "bitsandbytes": getattr(bnb, "__version__", "?") if bnb is not None else "not used: " + bnb_why,
           "device": props.name, "memory_gib": round(props.total_memory / GiB, 1)}
    base = {"bench": BENCH, "shape": shape(args.tokens), "tokens": args.tokens}
    try:
        torch.manual_seed(0)
        config = LlamaConfig(max_position_embeddings=max(8192, args.tokens), **CONFIG)
        config.use_cache = False
        try:
            config._attn_implementation = "sdpa"
        except Exception:
            pass
        t0 = time.perf_counter()
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        try:
            with torch.device(dev):
                model = LlamaForCausalLM(config)
        finally:
            torch.set_default_dtype(previous)
        model.to(dev)
        env["attn_implementation"] = getattr(model.config, "_attn_implementation", "?")
        kind = "bf16 base (%s)" % bnb_why if bnb is None else "NF4 base (bitsandbytes Linear4bit, double quantization)"
        if bnb is not None:
            try:
                env["nf4_linears"] = quantize_base(torch, bnb, model)
                try:  # what from_pretrained(load_in_4bit) sets: peft then wraps Linear4bit with its bitsandbytes LoRA layer
                    model.is_loaded_in_4bit = True
                except Exception:
                    pass
            except Exception as e:
                # half-converted models are not worth timing: say why, and how to get a figure anyway
                emit(env)
                for rid in ("qlora_step", "qlora_step_peak_mem"):
                    emit({**base, "id": rid, "error": "turning the base into bitsandbytes NF4 failed (%s); rerun with --bf16-base"
                          % first_line(e)})
                return 1
        gc.collect()
        torch.cuda.empty_cache()
        try:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        except TypeError:  # older transformers: reentrant checkpointing needs inputs that require grad
            model.gradient_checkpointing_enable()
            model.enable_input_require_grads()
        lora = peft.LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, bias="none", target_modules=TARGETS,
                               task_type="CAUSAL_LM")
        model = peft.get_peft_model(model, lora)
        model.train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        env["trainable_params"] = sum(p.numel() for p in trainable)
        env["lora_dtype"] = str(trainable[0].dtype) if trainable else "?"
        try:
            opt = torch.optim.AdamW(trainable, lr=5e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=True)
            env["optimizer"] = "AdamW fused"
        except (TypeError, RuntimeError):
            opt = torch.optim.AdamW(trainable, lr=5e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
            env["optimizer"] = "AdamW"
        env["build_seconds"] = round(time.perf_counter() - t0, 1)
        emit(env)

        gen = torch.Generator(device=dev).manual_seed(2)
        ids = torch.randint(0, CONFIG["vocab_size"], (1, args.tokens), device=dev, generator=gen)
        labels = ids.clone()

        def step():
            opt.zero_grad(set_to_none=True)
            out = model(input_ids=ids, labels=labels, use_cache=False)
            out.loss.backward()
            opt.step()
            return out.loss.item()  # waits for the step

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        loss = step()
        seconds = []
        for _ in range(args.steps):
            torch.cuda.synchronize()
            t = time.perf_counter()
            loss = step()
            torch.cuda.synchronize()
            seconds.append(time.perf_counter() - t)
        med = statistics.median(seconds)
        impl = "transformers %s + peft %s, %s, SDPA, gradient checkpointing" % (transformers.__version__, peft.__version__, kind)
        note = "loss %.4f; one warm-up step, median of %d timed steps (wall clock); %s" % (loss, len(seconds), env["optimizer"])
        emit({**base, "id": "qlora_step", "unit": "tokens/s", "value": args.tokens / med, "ms": med * 1000,
              "best_ms": min(seconds) * 1000, "impl": impl, "base": "nf4" if bnb is not None else "bf16", "loss": loss, "note": note})
        emit({**base, "id": "qlora_step_peak_mem", "unit": "GiB", "value": torch.cuda.max_memory_allocated() / GiB,
              "reserved_gib": torch.cuda.max_memory_reserved() / GiB, "impl": impl, "base": "nf4" if bnb is not None else "bf16",
              "note": "torch.cuda.max_memory_allocated (weights included); max reserved %.2f GiB"
                      % (torch.cuda.max_memory_reserved() / GiB)})
        return 0
    except Exception as e:  # out of memory, an API difference: say so, with the peak reached
        peak = torch.cuda.max_memory_allocated() / GiB
        for rid in ("qlora_step", "qlora_step_peak_mem"):
            emit({**base, "id": rid, "error": "%s (peak allocated %.2f GiB)" % (first_line(e), peak)})
        return 1


if __name__ == "__main__":
    sys.exit(main())
