"""Golden fixtures for FLUX.1 ControlNets (diffusers FluxControlNetModel) and the transformer that adds
their block samples (FluxTransformer2DModel's controlnet_block_samples / controlnet_single_block_samples).

A tiny random main transformer (inner dim 32, 4 double-stream and 3 single-stream blocks, so the
samples' interval ceil(blocks / samples) and XLabs' repetition (i % samples) pick different samples)
and three ControlNets of its width:
  union    InstantX / Shakker style: the control is 64-feature packed latents through
           controlnet_x_embedder; num_mode 5 prepends a mode token to the text; 3 double blocks
           (ceil(4 / 3) = 2: samples 0, 0, 1, 1), 2 single blocks (0, 0, 1)
  plain    the same without modes or guidance embedder, 1 double and 0 single blocks
  xlabs    XLabs style: the raw control image [-1, 1] through input_hint_block (8 convolutions, three
           of stride 2, to 16 channels) and patchified 2x2 (patch_size 2); 2 double blocks repeated
           (0, 1, 0, 1)
Every parameter is random (controlnet_blocks and controlnet_x_embedder, zero-initialised in diffusers,
included) and rounded to bf16, as the files store them. Written to tests/fixtures/flux_controlnet/:
  main_transformer.safetensors         the main transformer, diffusers names, bf16
  union/, plain/, xlabs/               each ControlNet as save_pretrained writes it (config.json), bf16
  xlabs_original_bf16.safetensors      the xlabs ControlNet in XLabs' own (BFL-style) names, as their
                                       flux-*-controlnet*.safetensors files and ComfyUI carry them
  flux_controlnet_tiny_diffusers_io.safetensors  per case: the inputs, each ControlNet sample, and
                                       the main transformer's output with the samples added
"""

from __future__ import annotations

import json
import shutil

import torch
from diffusers import FluxControlNetModel, FluxTransformer2DModel

from common import FIXTURES, fixture_metadata, save_fixture
from make_flux_dit import image_ids, randomize, to_bfl

SEED = 20261208
OUT = FIXTURES / "flux_controlnet"
MAIN = dict(
    patch_size=1,
    in_channels=64,
    num_layers=4,
    num_single_layers=3,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=24,
    pooled_projection_dim=12,
    axes_dims_rope=(4, 6, 6),
    guidance_embeds=True,
)
CONTROLNETS = {
    "union": dict(MAIN, num_layers=3, num_single_layers=2, num_mode=5),
    "plain": dict(MAIN, num_layers=1, num_single_layers=0, guidance_embeds=False),
    "xlabs": dict(MAIN, num_layers=2, num_single_layers=0, patch_size=2, conditioning_embedding_channels=16),
}

# name: (controlnet, packed grid rows, cols, text length, [(t, guidance) per sample], mode, conditioning scale)
CASES = {
    "union_h4w3_txt5": ("union", 4, 3, 5, [(0.6, 3.5)], 2, 0.8),
    "union_batch_h2w5_txt4": ("union", 2, 5, 4, [(0.9, 4.0), (0.25, 2.0)], 4, 1.0),
    "plain_h3w3_txt6": ("plain", 3, 3, 6, [(0.4, 3.5)], None, 0.6),
    "xlabs_h3w4_txt5": ("xlabs", 3, 4, 5, [(0.7, 3.5)], None, 1.0),
}


def to_xlabs(sd: dict) -> dict:
    """diffusers FluxControlNetModel names -> XLabs' ControlNetFlux names: BFL's for the shared modules
    (make_flux_dit.to_bfl), pos_embed_input for controlnet_x_embedder, input_hint_block as one Sequential
    whose convolutions sit at 0, 2, .., 14 (SiLU between)."""
    sd = dict(sd)
    out = {}
    for suffix in ("weight", "bias"):
        out[f"pos_embed_input.{suffix}"] = sd.pop(f"controlnet_x_embedder.{suffix}")
        out[f"input_hint_block.0.{suffix}"] = sd.pop(f"input_hint_block.conv_in.{suffix}")
        for j in range(6):
            out[f"input_hint_block.{2 + 2 * j}.{suffix}"] = sd.pop(f"input_hint_block.blocks.{j}.{suffix}")
        out[f"input_hint_block.14.{suffix}"] = sd.pop(f"input_hint_block.conv_out.{suffix}")
    for name in [k for k in sd if k.startswith("controlnet_blocks.")]:
        out[name] = sd.pop(name)
    out.update(to_bfl(sd))
    return out


def rounded(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    return model


def save_bf16(model, folder):
    if folder.exists():
        shutil.rmtree(folder)
    model.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    model.float()
    (folder / "zflow_fixture.json").write_text(json.dumps(fixture_metadata(__file__, SEED), indent=1) + "\n")


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    OUT.mkdir(parents=True, exist_ok=True)

    main_model = FluxTransformer2DModel(**MAIN).eval()
    randomize(main_model, gen)
    rounded(main_model)
    save_fixture("flux_controlnet/main_transformer.safetensors",
                 {k: v.to(torch.bfloat16) for k, v in main_model.state_dict().items()}, __file__, SEED,
                 config=MAIN)

    nets = {}
    for name, config in CONTROLNETS.items():
        net = FluxControlNetModel(**config).eval()
        randomize(net, gen)
        nets[name] = rounded(net)
        save_bf16(net, OUT / name)
    xlabs = {k: v.to(torch.bfloat16) for k, v in to_xlabs(nets["xlabs"].state_dict()).items()}
    save_fixture("flux_controlnet/xlabs_original_bf16.safetensors", xlabs, __file__, SEED)

    io = {}
    for case, (net_name, h, w, txt, samples, mode, scale) in CASES.items():
        net, b = nets[net_name], len(samples)
        if net.input_hint_block is not None:  # the image itself, 8 pixels a latent cell, in [-1, 1]
            cond = torch.rand(b, 3, 16 * h, 16 * w, generator=gen) * 2 - 1
        else:  # packed latents
            cond = torch.randn(b, h * w, 64, generator=gen)
        inputs = dict(
            hidden_states=torch.randn(b, h * w, 64, generator=gen),
            encoder_hidden_states=torch.randn(b, txt, MAIN["joint_attention_dim"], generator=gen),
            pooled_projections=torch.randn(b, MAIN["pooled_projection_dim"], generator=gen),
            timestep=torch.tensor([s[0] for s in samples], dtype=torch.float32),
            guidance=torch.tensor([s[1] for s in samples], dtype=torch.float32),
            img_ids=image_ids(h, w),
            txt_ids=torch.zeros(txt, 3),
        )
        with torch.no_grad():
            double, single = net(
                controlnet_cond=cond,
                controlnet_mode=None if mode is None else torch.full((b, 1), mode, dtype=torch.long),
                conditioning_scale=scale,
                guidance=inputs["guidance"] if net.config.guidance_embeds else None,
                return_dict=False,
                **{k: v for k, v in inputs.items() if k != "guidance"},
            )
            out = main_model(
                **inputs,
                controlnet_block_samples=double,
                controlnet_single_block_samples=single,
                controlnet_blocks_repeat=net.input_hint_block is not None,
                return_dict=False,
            )[0]
            plain = main_model(**inputs, return_dict=False)[0]
        for k in ("hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "guidance", "img_ids"):
            io[f"{case}.{k}"] = inputs[k]
        io[f"{case}.cond"] = cond
        for i, s in enumerate(double or []):
            io[f"{case}.double_sample.{i}"] = s
        for i, s in enumerate(single or []):
            io[f"{case}.single_sample.{i}"] = s
        io[f"{case}.output"] = out
        print(case, "samples", len(double or []), len(single or []), "output absmax", out.abs().max().item(),
              "moved by the ControlNet", (out - plain).abs().max().item())
    save_fixture(
        "flux_controlnet/flux_controlnet_tiny_diffusers_io.safetensors",
        io,
        __file__,
        SEED,
        main=MAIN,
        controlnets=CONTROLNETS,
        cases={k: list(v) for k, v in CASES.items()},
    )


if __name__ == "__main__":
    main()
