"""Golden fixtures for the FLUX.2 transformer (diffusers Flux2Transformer2DModel).

Two tiny random models: one with a guidance embedder, as FLUX.2-dev, and one without, as klein.
Inner dim 32 (2 heads of 16, axes_dims_rope [4, 4, 4, 4], rope_theta 2000), 2 double-stream and 2
single-stream blocks, mlp_ratio 3, in_channels 128 (the AE's 32 latent channels patchified 2x2),
joint_attention_dim 24. Every weight is drawn at random (QK-norm weights near 1). Written as
  tests/fixtures/flux2_dit/tiny_dev_diffusers/transformer/   dev, save_pretrained, fp32, sharded
  flux2_dit_tiny_dev_bfl_bf16.safetensors                    dev in the original BFL layout, bf16
  flux2_dit_tiny_klein_comfy_bf16.safetensors                klein in the BFL layout under
                                                             ComfyUI's `model.diffusion_model.`
  flux2_dit_tiny_diffusers_io.safetensors                    inputs and outputs per case
The BFL names are written from /work/shared/facts/flux.md section 2.3 and checked by converting
them back with diffusers' own single-file converter, which must give the model's state dict.

Every case runs the fp32 dev weights (`dev_output`), the dev weights rounded to bf16
(`dev_output_bf16w`) and the klein weights rounded to bf16 (`klein_output_bf16w`). Positions are
4-axis (t, h, w, l) as the diffusers pipelines make them: text (0, 0, 0, k), image (0, i, j, 0),
the n-th reference image (10 + 10 n, i, j, 0) appended after the image tokens.
"""

from __future__ import annotations

import json
import shutil

import torch
from diffusers import Flux2Transformer2DModel
from diffusers.loaders.single_file_utils import convert_flux2_transformer_checkpoint_to_diffusers

from common import FIXTURES, fixture_metadata, save_fixture

SEED = 20262
CONFIG = dict(
    patch_size=1,
    in_channels=128,
    num_layers=2,
    num_single_layers=2,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=24,
    timestep_guidance_channels=256,
    mlp_ratio=3.0,
    axes_dims_rope=(4, 4, 4, 4),
    rope_theta=2000,
    eps=1e-6,
)

# name: (image rows, image cols, reference (rows, cols) or None, text length,
#        [(t, guidance) per sample]). Non-square grids, t = 1, a batch of two, a reference image.
CASES = {
    "h4w4_txt7": (4, 4, None, 7, [(0.5, 4.0)]),
    "h3w5_txt5_t1": (3, 5, None, 5, [(1.0, 2.5)]),
    "batch_h2w3_txt6": (2, 3, None, 6, [(0.75, 4.0), (0.3, 1.5)]),
    "ref_h2w3_r3x2_txt4": (2, 3, (3, 2), 4, [(0.6, 4.0)]),
}


def randomize(model: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)


def to_bfl(sd: dict) -> dict:
    """diffusers names -> original BFL names (facts/flux.md section 2.3, read right to left)."""
    sd = dict(sd)
    out = {}

    def rename(bfl, diff):
        out[f"{bfl}.weight"] = sd.pop(f"{diff}.weight")

    def norm(bfl, diff):  # RMSNorm weights are `.scale` in BFL's QKNorm
        out[f"{bfl}.scale"] = sd.pop(f"{diff}.weight")

    rename("img_in", "x_embedder")
    rename("txt_in", "context_embedder")
    rename("time_in.in_layer", "time_guidance_embed.timestep_embedder.linear_1")
    rename("time_in.out_layer", "time_guidance_embed.timestep_embedder.linear_2")
    if "time_guidance_embed.guidance_embedder.linear_1.weight" in sd:
        rename("guidance_in.in_layer", "time_guidance_embed.guidance_embedder.linear_1")
        rename("guidance_in.out_layer", "time_guidance_embed.guidance_embedder.linear_2")
    for m in ("double_stream_modulation_img", "double_stream_modulation_txt", "single_stream_modulation"):
        rename(f"{m}.lin", f"{m}.linear")
    for i in range(CONFIG["num_layers"]):
        b, d = f"double_blocks.{i}", f"transformer_blocks.{i}"
        for stream, parts in (("img", ("to_q", "to_k", "to_v")), ("txt", ("add_q_proj", "add_k_proj", "add_v_proj"))):
            out[f"{b}.{stream}_attn.qkv.weight"] = torch.cat([sd.pop(f"{d}.attn.{p}.weight") for p in parts], dim=0)
        norm(f"{b}.img_attn.norm.query_norm", f"{d}.attn.norm_q")
        norm(f"{b}.img_attn.norm.key_norm", f"{d}.attn.norm_k")
        norm(f"{b}.txt_attn.norm.query_norm", f"{d}.attn.norm_added_q")
        norm(f"{b}.txt_attn.norm.key_norm", f"{d}.attn.norm_added_k")
        rename(f"{b}.img_attn.proj", f"{d}.attn.to_out.0")
        rename(f"{b}.txt_attn.proj", f"{d}.attn.to_add_out")
        rename(f"{b}.img_mlp.0", f"{d}.ff.linear_in")
        rename(f"{b}.img_mlp.2", f"{d}.ff.linear_out")
        rename(f"{b}.txt_mlp.0", f"{d}.ff_context.linear_in")
        rename(f"{b}.txt_mlp.2", f"{d}.ff_context.linear_out")
    for i in range(CONFIG["num_single_layers"]):
        b, d = f"single_blocks.{i}", f"single_transformer_blocks.{i}"
        rename(f"{b}.linear1", f"{d}.attn.to_qkv_mlp_proj")
        rename(f"{b}.linear2", f"{d}.attn.to_out")
        norm(f"{b}.norm.query_norm", f"{d}.attn.norm_q")
        norm(f"{b}.norm.key_norm", f"{d}.attn.norm_k")
    rename("final_layer.linear", "proj_out")
    # diffusers' AdaLayerNormContinuous chunks (scale, shift); BFL's final layer (shift, scale).
    scale, shift = sd.pop("norm_out.linear.weight").chunk(2, dim=0)
    out["final_layer.adaLN_modulation.1.weight"] = torch.cat([shift, scale], dim=0)
    assert not sd, f"unmapped: {sorted(sd)}"
    return out


def check_round_trip(model: torch.nn.Module) -> None:
    back = convert_flux2_transformer_checkpoint_to_diffusers(to_bfl(model.state_dict()))
    own = model.state_dict()
    assert sorted(back) == sorted(own), sorted(set(back) ^ set(own))
    for k, v in own.items():
        assert torch.equal(back[k], v), k


def positions(rows: int, cols: int, t: int = 0) -> torch.Tensor:
    ids = torch.zeros(rows, cols, 4)
    ids[..., 0] = t
    ids[..., 1] += torch.arange(rows)[:, None]
    ids[..., 2] += torch.arange(cols)[None, :]
    return ids.reshape(rows * cols, 4)


def text_positions(length: int) -> torch.Tensor:
    ids = torch.zeros(length, 4)
    ids[:, 3] = torch.arange(length)
    return ids


def run(model, inputs, with_guidance):
    with torch.no_grad():
        return model(
            hidden_states=inputs["hidden_states"],
            encoder_hidden_states=inputs["encoder_hidden_states"],
            timestep=inputs["timestep"],
            img_ids=inputs["img_ids"],
            txt_ids=inputs["txt_ids"],
            guidance=inputs["guidance"] if with_guidance else None,
            return_dict=False,
        )[0]


def rounded_copy(model, config):
    copy = Flux2Transformer2DModel(**config).eval()
    copy.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in model.state_dict().items()})
    return copy


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    dev = Flux2Transformer2DModel(**CONFIG, guidance_embeds=True).eval()
    randomize(dev, gen)
    klein = Flux2Transformer2DModel(**CONFIG, guidance_embeds=False).eval()
    randomize(klein, gen)
    check_round_trip(dev)
    check_round_trip(klein)
    dev_bf16 = rounded_copy(dev, dict(CONFIG, guidance_embeds=True))
    klein_bf16 = rounded_copy(klein, dict(CONFIG, guidance_embeds=False))

    folder = FIXTURES / "flux2_dit" / "tiny_dev_diffusers" / "transformer"
    if folder.exists():
        shutil.rmtree(folder)
    dev.save_pretrained(folder, safe_serialization=True, max_shard_size="200KB")
    (folder / "zflow_fixture.json").write_text(json.dumps(fixture_metadata(__file__, SEED), indent=1) + "\n")

    bfl = {k: v.to(torch.bfloat16) for k, v in to_bfl(dev.state_dict()).items()}
    save_fixture("flux2_dit/flux2_dit_tiny_dev_bfl_bf16.safetensors", bfl, __file__, SEED)
    comfy = {"model.diffusion_model." + k: v.to(torch.bfloat16) for k, v in to_bfl(klein.state_dict()).items()}
    save_fixture("flux2_dit/flux2_dit_tiny_klein_comfy_bf16.safetensors", comfy, __file__, SEED)

    io = {}
    for case, (h, w, ref, txt, samples) in CASES.items():
        b = len(samples)
        img_ids = positions(h, w)
        if ref is not None:
            img_ids = torch.cat([img_ids, positions(*ref, t=10)])
        inputs = dict(
            hidden_states=torch.randn(b, img_ids.shape[0], CONFIG["in_channels"], generator=gen),
            encoder_hidden_states=torch.randn(b, txt, CONFIG["joint_attention_dim"], generator=gen),
            timestep=torch.tensor([s[0] for s in samples], dtype=torch.float32),
            guidance=torch.tensor([s[1] for s in samples], dtype=torch.float32),
            img_ids=img_ids,
            txt_ids=text_positions(txt),
        )
        for k in ("hidden_states", "encoder_hidden_states", "timestep", "guidance", "img_ids", "txt_ids"):
            io[f"{case}.{k}"] = inputs[k]
        io[f"{case}.dev_output"] = run(dev, inputs, True)
        io[f"{case}.dev_output_bf16w"] = run(dev_bf16, inputs, True)
        io[f"{case}.klein_output_bf16w"] = run(klein_bf16, inputs, False)
        print(case, "dev output absmax", io[f"{case}.dev_output"].abs().max().item(),
              "klein", io[f"{case}.klein_output_bf16w"].abs().max().item())
    save_fixture(
        "flux2_dit/flux2_dit_tiny_diffusers_io.safetensors",
        io,
        __file__,
        SEED,
        config=CONFIG,
        cases={k: [v[0], v[1], v[2], v[3], [list(s) for s in v[4]]] for k, v in CASES.items()},
    )


if __name__ == "__main__":
    main()
