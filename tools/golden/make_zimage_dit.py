"""Golden fixtures for the Z-Image transformer (diffusers ZImageTransformer2DModel).

A tiny random model (dim 64, 2 main layers, 1 noise- and 1 context-refiner layer, 2 heads,
cap_feat_dim 32, axes_dims [8, 12, 12]) with every parameter drawn at random, pad tokens and
norm weights included, so nothing is a trivial 0 or 1. Written as
  tests/fixtures/zimage_dit/tiny_diffusers/transformer/   save_pretrained, fp32, sharded
  zimage_dit_tiny_original_bf16.safetensors             the ComfyUI / original single-file
                                                        layout (fused qkv), bf16
  zimage_dit_tiny_diffusers_io.safetensors              inputs and outputs per case
The single-file conversion below is written from the key table of
/work/shared/facts/zimage.md section 2.2, not taken from diffusers.

Every case is run one sample at a time, and the batch cases also as one batched call
(diffusers pads the unified sequence and masks the keys). Each case is run twice: with the
fp32 weights (`output`) and with the weights rounded to bf16 (`output_bf16w`, what the
single file holds).
"""

from __future__ import annotations

import json
import shutil

import torch
from diffusers import ZImageTransformer2DModel

from common import FIXTURES, fixture_metadata, save_fixture

SEED = 20260
CONFIG = dict(
    all_patch_size=(2,),
    all_f_patch_size=(1,),
    in_channels=16,
    dim=64,
    n_layers=2,
    n_refiner_layers=1,
    n_heads=2,
    n_kv_heads=2,
    norm_eps=1e-5,
    qk_norm=True,
    cap_feat_dim=32,
    rope_theta=256.0,
    t_scale=1000.0,
    axes_dims=[8, 12, 12],
    axes_lens=[256, 64, 64],
)

# name: list of (latent H, latent W, caption length, t) samples. Single-sample cases cover
# the caption lengths around the 32-token padding and a non-square latent; the batch cases
# have different caption lengths (padded lengths 64 / 32, so a key mask; and 32 / 32, no mask).
CASES = {
    "sq8_cap1_t0": [(8, 8, 1, 0.0)],
    "h6w10_cap31_t03": [(6, 10, 31, 0.3)],
    "sq8_cap32_t097": [(8, 8, 32, 0.97)],
    "h16w6_cap33_t05": [(16, 6, 33, 0.5)],
    "sq8_cap100_t03": [(8, 8, 100, 0.3)],
    "batch_sq8_cap33_cap5": [(8, 8, 33, 0.3), (8, 8, 5, 0.97)],
    "batch_h6w10_cap5_cap20": [(6, 10, 5, 0.0), (6, 10, 20, 0.6)],
}


def randomize(model: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("pad_token"):
                p.copy_(torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)


def to_original(sd: dict) -> dict:
    """diffusers names -> ComfyUI / original (Lumina2 NextDiT) names, facts section 2.2."""
    out = {}
    for name, t in sd.items():
        if name.startswith("all_x_embedder.2-1."):
            out["x_embedder." + name[len("all_x_embedder.2-1.") :]] = t
        elif name.startswith("all_final_layer.2-1."):
            out["final_layer." + name[len("all_final_layer.2-1.") :]] = t
        elif ".attention.to_q.weight" in name:
            prefix = name[: -len("to_q.weight")]
            out[prefix + "qkv.weight"] = torch.cat(
                [sd[prefix + "to_q.weight"], sd[prefix + "to_k.weight"], sd[prefix + "to_v.weight"]], dim=0
            )
        elif ".attention.to_k.weight" in name or ".attention.to_v.weight" in name:
            continue
        elif ".attention.to_out.0." in name:
            out[name.replace(".attention.to_out.0.", ".attention.out.")] = t
        elif ".attention.norm_q." in name:
            out[name.replace(".attention.norm_q.", ".attention.q_norm.")] = t
        elif ".attention.norm_k." in name:
            out[name.replace(".attention.norm_k.", ".attention.k_norm.")] = t
        else:
            out[name] = t
    return out


def run(model, samples, latents, caps):
    with torch.no_grad():
        t = torch.tensor([s[3] for s in samples], dtype=torch.float32)
        out = model(x=[l.unsqueeze(1) for l in latents], t=t, cap_feats=caps, return_dict=False)[0]
    return torch.stack([o.squeeze(1) for o in out])


def main() -> None:
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = ZImageTransformer2DModel(**CONFIG).eval()
    randomize(model, gen)

    rounded = ZImageTransformer2DModel(**CONFIG).eval()
    rounded.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in model.state_dict().items()})

    folder = FIXTURES / "zimage_dit" / "tiny_diffusers" / "transformer"
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="1MB")
    (folder / "zflow_fixture.json").write_text(json.dumps(fixture_metadata(__file__, SEED), indent=1) + "\n")

    original = {k: v.to(torch.bfloat16) for k, v in to_original(model.state_dict()).items()}
    save_fixture("zimage_dit/zimage_dit_tiny_original_bf16.safetensors", original, __file__, SEED)

    io = {}
    for case, samples in CASES.items():
        latents = [torch.randn(16, h, w, generator=gen) for h, w, _, _ in samples]
        caps = [torch.randn(n, CONFIG["cap_feat_dim"], generator=gen) for _, _, n, _ in samples]
        io[f"{case}.latents"] = torch.stack(latents)
        io[f"{case}.t"] = torch.tensor([s[3] for s in samples], dtype=torch.float32)
        for i, c in enumerate(caps):
            io[f"{case}.caption{i}"] = c
        io[f"{case}.output"] = run(model, samples, latents, caps)
        io[f"{case}.output_bf16w"] = run(rounded, samples, latents, caps)
        if len(samples) > 1:
            single = torch.cat([run(model, [s], [l], [c]) for s, l, c in zip(samples, latents, caps)])
            print(case, "batched vs one-at-a-time max diff", (single - io[f"{case}.output"]).abs().max().item())
        print(case, "output absmax", io[f"{case}.output"].abs().max().item())
    save_fixture(
        "zimage_dit/zimage_dit_tiny_diffusers_io.safetensors",
        io,
        __file__,
        SEED,
        config=CONFIG,
        cases={k: [list(s) for s in v] for k, v in CASES.items()},
    )


if __name__ == "__main__":
    main()
