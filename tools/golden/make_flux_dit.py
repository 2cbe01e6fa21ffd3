"""Golden fixtures for the FLUX.1 transformer (diffusers FluxTransformer2DModel).

Two tiny random models, dev (guidance_embeds=True) and schnell (False): inner dim 32 (2 heads of
16, axes_dims_rope [4, 6, 6]), 2 double-stream and 2 single-stream blocks, in_channels 64 (16
latent channels packed 2x2), joint_attention_dim 24, pooled_projection_dim 12. Every parameter is
drawn at random (biases and QK-norm weights included), so nothing is a trivial 0 or 1. Written as
  tests/fixtures/flux_dit/tiny_dev_diffusers/transformer/   dev, save_pretrained, fp32, sharded
  flux_dit_tiny_dev_bfl_bf16.safetensors                    dev in the original BFL layout, bf16
  flux_dit_tiny_schnell_comfy_bf16.safetensors              schnell in the BFL layout under
                                                            ComfyUI's `model.diffusion_model.` prefix
  flux_dit_tiny_diffusers_io.safetensors                    inputs and outputs per case
The BFL conversion below is written from the key table of /work/shared/facts/flux.md section 2.2
(the inverse of diffusers' scripts/convert_flux_to_diffusers.py mapping), not taken from diffusers.

Every case is run with the fp32 dev weights (`dev_output`), with the dev weights rounded to bf16
(`dev_output_bf16w`, what the BFL file holds) and with the schnell weights rounded to bf16
(`schnell_output_bf16w`).
"""

from __future__ import annotations

import json
import shutil

import torch
from diffusers import FluxTransformer2DModel

from common import FIXTURES, fixture_metadata, save_fixture

SEED = 20261
CONFIG = dict(
    patch_size=1,
    in_channels=64,
    num_layers=2,
    num_single_layers=2,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=24,
    pooled_projection_dim=12,
    axes_dims_rope=(4, 6, 6),
)

# name: (packed grid rows, packed grid cols, text length, [(t, guidance) per sample]).
# Non-square grids, a batch of two with different times and guidances, t = 1 (pure noise).
CASES = {
    "h4w4_txt7": (4, 4, 7, [(0.5, 3.5)]),
    "h3w5_txt5_t1": (3, 5, 5, [(1.0, 7.0)]),
    "h5w2_txt9": (5, 2, 9, [(0.125, 1.0)]),
    "batch_h2w3_txt6": (2, 3, 6, [(0.75, 3.5), (0.3, 2.0)]),
}


def randomize(model: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)


def block_count(sd: dict, prefix: str) -> int:
    return len({k.split(".")[1] for k in sd if k.startswith(prefix + ".")})


def bfl_table(names) -> list[tuple[str, str, object]]:
    """How the diffusers modules among `names` map to BFL's (facts/flux.md section 2.2, read right to left):
    (kind, BFL module, diffusers module or modules) with kind "linear" (a rename), "fused" (the diffusers modules'
    rows stacked), "norm" (a QK-norm weight: BFL's `.scale`) or "final" (rows in swapped halves: diffusers'
    AdaLayerNormContinuous chunks (scale, shift), BFL's final layer (shift, scale)). The guidance embedder and the
    final layer are mapped when present (schnell and ControlNets lack them)."""
    names = set(names)
    table = [("linear", "time_in.in_layer", "time_text_embed.timestep_embedder.linear_1"),
             ("linear", "time_in.out_layer", "time_text_embed.timestep_embedder.linear_2"),
             ("linear", "vector_in.in_layer", "time_text_embed.text_embedder.linear_1"),
             ("linear", "vector_in.out_layer", "time_text_embed.text_embedder.linear_2")]
    if any(n.startswith("time_text_embed.guidance_embedder.") for n in names):
        table += [("linear", "guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1"),
                  ("linear", "guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2")]
    table += [("linear", "txt_in", "context_embedder"), ("linear", "img_in", "x_embedder")]
    for i in range(block_count(names, "transformer_blocks")):
        b, d = f"double_blocks.{i}", f"transformer_blocks.{i}"
        table += [
            ("linear", f"{b}.img_mod.lin", f"{d}.norm1.linear"),
            ("linear", f"{b}.txt_mod.lin", f"{d}.norm1_context.linear"),
            ("fused", f"{b}.img_attn.qkv", [f"{d}.attn.to_q", f"{d}.attn.to_k", f"{d}.attn.to_v"]),
            ("fused", f"{b}.txt_attn.qkv", [f"{d}.attn.add_q_proj", f"{d}.attn.add_k_proj", f"{d}.attn.add_v_proj"]),
            ("norm", f"{b}.img_attn.norm.query_norm", f"{d}.attn.norm_q"),
            ("norm", f"{b}.img_attn.norm.key_norm", f"{d}.attn.norm_k"),
            ("norm", f"{b}.txt_attn.norm.query_norm", f"{d}.attn.norm_added_q"),
            ("norm", f"{b}.txt_attn.norm.key_norm", f"{d}.attn.norm_added_k"),
            ("linear", f"{b}.img_attn.proj", f"{d}.attn.to_out.0"),
            ("linear", f"{b}.txt_attn.proj", f"{d}.attn.to_add_out"),
            ("linear", f"{b}.img_mlp.0", f"{d}.ff.net.0.proj"),
            ("linear", f"{b}.img_mlp.2", f"{d}.ff.net.2"),
            ("linear", f"{b}.txt_mlp.0", f"{d}.ff_context.net.0.proj"),
            ("linear", f"{b}.txt_mlp.2", f"{d}.ff_context.net.2"),
        ]
    for i in range(block_count(names, "single_transformer_blocks")):
        b, d = f"single_blocks.{i}", f"single_transformer_blocks.{i}"
        table += [
            ("fused", f"{b}.linear1", [f"{d}.attn.to_q", f"{d}.attn.to_k", f"{d}.attn.to_v", f"{d}.proj_mlp"]),
            ("linear", f"{b}.linear2", f"{d}.proj_out"),
            ("norm", f"{b}.norm.query_norm", f"{d}.attn.norm_q"),
            ("norm", f"{b}.norm.key_norm", f"{d}.attn.norm_k"),
            ("linear", f"{b}.modulation.lin", f"{d}.norm.linear"),
        ]
    if any(n.startswith("proj_out.") for n in names):
        table += [("linear", "final_layer.linear", "proj_out"),
                  ("final", "final_layer.adaLN_modulation.1", "norm_out.linear")]
    return table


def swap_halves(t: torch.Tensor) -> torch.Tensor:
    first, second = t.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def to_bfl(sd: dict) -> dict:
    """A FLUX.1 state dict in diffusers' names -> BFL's (bfl_table)."""
    sd = dict(sd)
    out = {}
    for kind, bfl, diff in bfl_table(sd):
        if kind == "norm":
            out[f"{bfl}.scale"] = sd.pop(f"{diff}.weight")
            continue
        for suffix in ("weight", "bias"):
            if kind == "fused":
                out[f"{bfl}.{suffix}"] = torch.cat([sd.pop(f"{p}.{suffix}") for p in diff], dim=0)
            elif kind == "final":
                out[f"{bfl}.{suffix}"] = swap_halves(sd.pop(f"{diff}.{suffix}"))
            else:
                out[f"{bfl}.{suffix}"] = sd.pop(f"{diff}.{suffix}")
    assert not sd, f"unmapped: {sorted(sd)}"
    return out


def image_ids(h: int, w: int) -> torch.Tensor:
    ids = torch.zeros(h, w, 3)
    ids[..., 1] += torch.arange(h)[:, None]
    ids[..., 2] += torch.arange(w)[None, :]
    return ids.reshape(h * w, 3)


def run(model, inputs, with_guidance):
    with torch.no_grad():
        return model(
            hidden_states=inputs["hidden_states"],
            encoder_hidden_states=inputs["encoder_hidden_states"],
            pooled_projections=inputs["pooled_projections"],
            timestep=inputs["timestep"],
            img_ids=inputs["img_ids"],
            txt_ids=inputs["txt_ids"],
            guidance=inputs["guidance"] if with_guidance else None,
            return_dict=False,
        )[0]


def rounded_copy(model, config):
    copy = FluxTransformer2DModel(**config).eval()
    copy.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in model.state_dict().items()})
    return copy


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    dev = FluxTransformer2DModel(**CONFIG, guidance_embeds=True).eval()
    randomize(dev, gen)
    schnell = FluxTransformer2DModel(**CONFIG, guidance_embeds=False).eval()
    randomize(schnell, gen)
    dev_bf16 = rounded_copy(dev, dict(CONFIG, guidance_embeds=True))
    schnell_bf16 = rounded_copy(schnell, dict(CONFIG, guidance_embeds=False))

    folder = FIXTURES / "flux_dit" / "tiny_dev_diffusers" / "transformer"
    if folder.exists():
        shutil.rmtree(folder)
    dev.save_pretrained(folder, safe_serialization=True, max_shard_size="200KB")
    (folder / "zflow_fixture.json").write_text(json.dumps(fixture_metadata(__file__, SEED), indent=1) + "\n")

    bfl = {k: v.to(torch.bfloat16) for k, v in to_bfl(dev.state_dict()).items()}
    save_fixture("flux_dit/flux_dit_tiny_dev_bfl_bf16.safetensors", bfl, __file__, SEED)
    comfy = {"model.diffusion_model." + k: v.to(torch.bfloat16) for k, v in to_bfl(schnell.state_dict()).items()}
    save_fixture("flux_dit/flux_dit_tiny_schnell_comfy_bf16.safetensors", comfy, __file__, SEED)

    io = {}
    for case, (h, w, txt, samples) in CASES.items():
        b = len(samples)
        inputs = dict(
            hidden_states=torch.randn(b, h * w, CONFIG["in_channels"], generator=gen),
            encoder_hidden_states=torch.randn(b, txt, CONFIG["joint_attention_dim"], generator=gen),
            pooled_projections=torch.randn(b, CONFIG["pooled_projection_dim"], generator=gen),
            timestep=torch.tensor([s[0] for s in samples], dtype=torch.float32),
            guidance=torch.tensor([s[1] for s in samples], dtype=torch.float32),
            img_ids=image_ids(h, w),
            txt_ids=torch.zeros(txt, 3),
        )
        for k in ("hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "guidance", "img_ids"):
            io[f"{case}.{k}"] = inputs[k]
        io[f"{case}.dev_output"] = run(dev, inputs, True)
        io[f"{case}.dev_output_bf16w"] = run(dev_bf16, inputs, True)
        io[f"{case}.schnell_output_bf16w"] = run(schnell_bf16, inputs, False)
        if b > 1:
            one = torch.cat([run(dev, {k: (v[i : i + 1] if k not in ("img_ids", "txt_ids") else v)
                                       for k, v in inputs.items()}, True) for i in range(b)])
            print(case, "batched vs one-at-a-time max diff", (one - io[f"{case}.dev_output"]).abs().max().item())
        print(case, "dev output absmax", io[f"{case}.dev_output"].abs().max().item(),
              "schnell", io[f"{case}.schnell_output_bf16w"].abs().max().item())
    save_fixture(
        "flux_dit/flux_dit_tiny_diffusers_io.safetensors",
        io,
        __file__,
        SEED,
        config=CONFIG,
        cases={k: [v[0], v[1], v[2], [list(s) for s in v[3]]] for k, v in CASES.items()},
    )


if __name__ == "__main__":
    main()
