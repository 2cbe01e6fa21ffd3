"""Golden fixtures for BFL's FLUX.1 Canny / Depth LoRAs (flux1-canny-dev-lora.safetensors,
flux1-depth-dev-lora.safetensors): LoRAs that turn FLUX.1-dev into Canny-dev / Depth-dev. Beside low-rank updates
of every linear (with PEFT's lora_B biases) they widen x_embedder's input from 64 to 128 features (the control
image's latents beside the noisy ones: the model's weight is zero-padded, then updated) and carry new QK-norm
scales that replace the model's (diffusers' load_lora_weights: _maybe_expand_transformer_param_shape_or_error_,
_load_norm_into_transformer).

diffusers' converter of BFL's names assumes the release's 19 + 38 blocks, so the tiny LoRA for tiny_dev (1 + 1
blocks) is built in diffusers' names and loaded with FluxControlPipeline.load_lora_weights, and written for zflow
in BFL's names as the release has them (fused qkv and linear1: one lora_A, the lora_B rows of the parts stacked;
the q, k, v parts of the diffusers LoRA share their lora_A so the two are the same LoRA):
  tests/fixtures/flux_control_lora/flux_control_lora_tiny_bfl.safetensors     BFL names, bf16
  tests/fixtures/flux_control_lora/flux_control_lora_tiny_diffusers.safetensors  diffusers names (transformer.), bf16
  tests/fixtures/flux_control_lora/flux_control_lora_tiny_diffusers_<case>_<k>.png, ..._control.png, ..._cases.json
"""

from __future__ import annotations

import os

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn; tiny_dev was built under it too
import shutil  # noqa: E402

import torch  # noqa: E402

from common import FIXTURES, save_case_images, save_fixture, write_cases  # noqa: E402
from make_flux_control_pipeline import make_control  # noqa: E402
from make_flux_fill_pipeline import beside_dev_fields, check_same_as_committed  # noqa: E402
from make_flux_dit import bfl_table, swap_halves  # noqa: E402
from make_flux_pipeline import PROMPT, build_pipelines  # noqa: E402

SEED = 20261210
OUT = FIXTURES / "flux_control_lora"
PREFIX = "flux_control_lora_tiny_diffusers"
RANK = 4
# The updates are this large against the weights (over sqrt(fan_in)), the control columns of x_embedder larger
# still, so the LoRA moves the output far past the tests' tolerance.
GAIN = 0.5
CONTROL_GAIN = 3.0

CASES = [
    dict(name="canny_lora", prompt=PROMPT, control_size=(64, 48), width=64, height=48, steps=3, guidance=30.0, seed=3),
    dict(name="canny_lora_half", prompt=PROMPT, control_size=(80, 56), width=64, height=48, steps=2, guidance=10.0,
         seed=8, lora_scale=0.5),
]


def fused_group(name: str) -> str:
    """The BFL module a diffusers linear is part of: the fused ones have one lora_A, which q, k, v (and a single
    block's proj_mlp) share."""
    block = ".".join(name.split(".")[:2])
    if name.startswith("single_transformer_blocks.") and name.endswith(("to_q", "to_k", "to_v", "proj_mlp")):
        return block + ".linear1"
    if name.startswith("transformer_blocks.") and name.endswith(("attn.to_q", "attn.to_k", "attn.to_v")):
        return block + ".img_qkv"
    if name.endswith(("add_q_proj", "add_k_proj", "add_v_proj")):
        return block + ".txt_qkv"
    return name


def control_lora(transformer, gen) -> dict:
    """A diffusers-named LoRA for every linear of `transformer` (lora_A, lora_B, lora_B.bias), x_embedder's widened
    to twice the input, and a new scale for every QK norm."""
    lora = {}
    shared_a = {}
    for name, module in transformer.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        out_f, in_f = module.weight.shape
        if name == "x_embedder":
            in_f *= 2
        group = fused_group(name)
        if group not in shared_a:
            shared_a[group] = torch.randn(RANK, in_f, generator=gen) / in_f**0.5
        a = shared_a[group]
        b = GAIN * torch.randn(out_f, RANK, generator=gen) / RANK**0.5
        if name == "x_embedder":
            a = a.clone()
            a[:, in_f // 2:] *= CONTROL_GAIN
        lora[f"transformer.{name}.lora_A.weight"] = a
        lora[f"transformer.{name}.lora_B.weight"] = b
        lora[f"transformer.{name}.lora_B.bias"] = 0.1 * torch.randn(out_f, generator=gen)
    for name, p in transformer.named_parameters():
        if any(name.endswith(f".{n}.weight") for n in ("norm_q", "norm_k", "norm_added_q", "norm_added_k")):
            lora[f"transformer.{name}"] = 1.0 + 0.3 * torch.randn(p.shape, generator=gen)
    return {k: v.to(torch.bfloat16).float() for k, v in lora.items()}


def to_bfl_lora(lora: dict) -> dict:
    """The diffusers-named control LoRA in BFL's names (make_flux_dit.bfl_table; diffusers'
    _convert_bfl_flux_control_lora_to_diffusers reads them back): a fused module's parts share one lora_A and
    stack their lora_B rows, the final layer's lora_B rows swap halves, the norms are `.scale`s."""
    src = {k.removeprefix("transformer."): v for k, v in lora.items()}
    out = {}
    for kind, bfl, diff in bfl_table(src):
        if kind == "norm":
            out[f"{bfl}.scale"] = src.pop(f"{diff}.weight")
            continue
        parts = diff if kind == "fused" else [diff]
        out[f"{bfl}.lora_A.weight"] = src.pop(f"{parts[0]}.lora_A.weight")
        for p in parts[1:]:
            assert torch.equal(src.pop(f"{p}.lora_A.weight"), out[f"{bfl}.lora_A.weight"]), p
        for suffix in ("lora_B.weight", "lora_B.bias"):
            rows = torch.cat([src.pop(f"{p}.{suffix}") for p in parts], dim=0)
            out[f"{bfl}.{suffix}"] = swap_halves(rows) if kind == "final" else rows
    assert not src, f"unmapped: {sorted(src)}"
    return out


def main() -> None:
    from diffusers import FluxControlPipeline

    torch.set_num_threads(1)
    dev = build_pipelines()["dev"]
    check_same_as_committed(dev)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    gen = torch.Generator().manual_seed(SEED)
    lora = control_lora(dev.transformer, gen)
    save_fixture("flux_control_lora/flux_control_lora_tiny_diffusers.safetensors",
                 {k: v.to(torch.bfloat16) for k, v in lora.items()}, __file__, SEED, rank=RANK)
    save_fixture("flux_control_lora/flux_control_lora_tiny_bfl.safetensors",
                 {k: v.to(torch.bfloat16) for k, v in to_bfl_lora(lora).items()}, __file__, SEED, rank=RANK)

    entries = []
    for case in CASES:
        # A fresh transformer each time: loading the LoRA widens and changes the model in place.
        pipe = FluxControlPipeline(**{k: build_pipelines()["dev"].components[k] for k in (
            "scheduler", "transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")})
        pipe.set_progress_bar_config(disable=True)
        pipe.load_lora_weights(dict(lora), adapter_name="control")
        pipe.set_adapters(["control"], adapter_weights=[case.get("lora_scale", 1.0)])
        assert pipe.transformer.x_embedder.weight.shape[1] == 128
        control = make_control(case["control_size"])
        control_name = f"{PREFIX}_{case['name']}_control.png"
        control.save(OUT / control_name)
        images = pipe(
            prompt=case["prompt"],
            control_image=control,
            num_inference_steps=case["steps"],
            guidance_scale=case["guidance"],
            generator=torch.Generator("cpu").manual_seed(case["seed"]),
            width=case["width"],
            height=case["height"],
            max_sequence_length=512,
            output_type="pil",
        ).images
        files = save_case_images(OUT, PREFIX, case["name"], images)
        entries.append(dict(case, control_image=control_name, expected=files))
    write_cases(OUT, PREFIX, __file__, SEED, entries, **beside_dev_fields())


if __name__ == "__main__":
    main()
