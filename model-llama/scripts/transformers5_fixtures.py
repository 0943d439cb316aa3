#!/usr/bin/env python3
"""Writes the fixtures of Transformers5ConfigTest: config.json files as transformers 5 saves them
(rope_parameters and dtype, not rope_theta, rope_scaling and torch_dtype), the tiny random weights
they go with, and the loss transformers computes for one token sequence under each config.

    /root/.cache/tenfold-hf-venv/bin/python model-llama/scripts/transformers5_fixtures.py

(any Python with torch and transformers >= 5; /work/shared/tools/hf-venv.sh makes one). Output,
in model-llama/src/test/resources/dev/tenfold/llama/transformers5/:
  <case>/config.json          written by LlamaForCausalLM.save_pretrained, untouched
  weights-head8.safetensors   the model.safetensors of the cases with head_dim = hidden/heads = 8
  weights-head16.safetensors  that of the head_dim 16 case (head_dim != hidden/heads)
  expected.json               {"transformers": version, "input_ids": [...], "cases": {case: {"weights": file,
                              "loss": transformers' mean loss, "loss_rope_theta_10000": the same model run
                              with RoPE base 10,000 (what a reader that ignores rope_parameters computes)}}}
The "legacy" case is the llama3 one rewritten in the transformers 4 layout (rope_theta, rope_scaling,
torch_dtype at the top level) and read back by transformers 5.
"""
import json
import pathlib
import shutil
import tempfile

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

transformers.utils.logging.disable_progress_bar()
OUT = pathlib.Path(__file__).resolve().parent.parent / "src/test/resources/dev/tenfold/llama/transformers5"
SHAPE = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=61, max_position_embeddings=64, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
SEQ = 48  # tokens: beyond original_max_position_embeddings 16 of the scaled cases
CASES = {
    "theta200m": dict(rope_parameters={"rope_type": "default", "rope_theta": 200e6}),
    "llama3": dict(rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
    "yarn": dict(rope_parameters={"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0, "original_max_position_embeddings": 16,
                                  "beta_fast": 16.0, "beta_slow": 2.0}),
    "head16": dict(head_dim=16, rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 200e6}),
}


def random_weights(model, seed):
    """Weights large enough that RoPE decides the loss (transformers' 0.02 init gives ~uniform logits)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * 0.5)


def loss_of(folder, ids, rope_theta=None):
    kwargs = {}
    if rope_theta is not None:
        cfg = LlamaConfig.from_pretrained(folder)
        cfg.rope_parameters["rope_theta"] = rope_theta
        kwargs["config"] = cfg
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager", **kwargs).eval()
    with torch.no_grad():
        return model(input_ids=ids, labels=ids).loss.item()


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    ids = torch.randint(0, SHAPE["vocab_size"], (1, SEQ), generator=torch.Generator().manual_seed(7))
    expected = {"transformers": transformers.__version__, "input_ids": ids[0].tolist(), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for case, extra in CASES.items():
            config = LlamaConfig(**SHAPE, **extra)
            model = LlamaForCausalLM(config)
            random_weights(model, seed=1)
            model = model.to(torch.bfloat16)
            folder = pathlib.Path(tmp) / case
            model.save_pretrained(folder)
            weights = "weights-head%d.safetensors" % config.head_dim
            if not (OUT / weights).exists():
                shutil.copy(folder / "model.safetensors", OUT / weights)
            assert (OUT / weights).read_bytes() == (folder / "model.safetensors").read_bytes(), case
            (OUT / case).mkdir()
            shutil.copy(folder / "config.json", OUT / case / "config.json")
            expected["cases"][case] = {"weights": weights, "loss": loss_of(folder, ids),
                                       "loss_rope_theta_10000": loss_of(folder, ids, rope_theta=10000.0)}
        # the llama3 case in the layout transformers 4 wrote, read by transformers 5
        legacy = json.loads((OUT / "llama3" / "config.json").read_text())
        rope = legacy.pop("rope_parameters")
        legacy["rope_theta"] = rope.pop("rope_theta")
        legacy["rope_scaling"] = rope
        legacy["torch_dtype"] = legacy.pop("dtype")
        folder = pathlib.Path(tmp) / "legacy"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(legacy, indent=2, sort_keys=True) + "\n")
        shutil.copy(OUT / "weights-head8.safetensors", folder / "model.safetensors")
        (OUT / "legacy").mkdir()
        shutil.copy(folder / "config.json", OUT / "legacy" / "config.json")
        expected["cases"]["legacy"] = {"weights": "weights-head8.safetensors", "loss": loss_of(folder, ids),
                                       "loss_rope_theta_10000": loss_of(folder, ids, rope_theta=10000.0)}
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    for case, e in expected["cases"].items():
        print("%-10s loss %.6f (with rope_theta 10000: %.6f)" % (case, e["loss"], e["loss_rope_theta_10000"]))


if __name__ == "__main__":
    main()
