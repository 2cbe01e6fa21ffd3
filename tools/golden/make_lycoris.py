"""LyCORIS goldens: LoKr and LoHa files for the tiny Z-Image transformer, and the weight updates
LyCORIS 4.1.3's functional API makes of them (lycoris.functional.lokr.diff_weight and
lycoris.functional.loha.diff_weight, the updates ComfyUI and stable-diffusion.cpp merge):
  LoKr  ΔW = alpha / rank · kron(w1, w2), w1 = lokr_w1 or lokr_w1_a @ lokr_w1_b, the same for w2;
        rank the inner size of a factorised half (no factorised half: the scale is 1)
  LoHa  ΔW = alpha / rank · (hada_w1_a @ hada_w1_b) ⊙ (hada_w2_a @ hada_w2_b)

  lora/zimage_lycoris_kohya.safetensors   lora_unet_<module with underscores>.<tensor> + .alpha,
        the diffusers module names; lora/zimage_lycoris_comfy.safetensors: diffusion_model.<original
        module>.<tensor>, the fused attention.qkv included. Modules (shapes of the tiny model):
          layers.0 to_q [64, 64]   LoKr, w1 [8, 8] whole, w2 = [8, 2] @ [2, 8]      alpha 1
          layers.0 w1 [170, 64]    LoKr, both halves factorised, rank 2 ([10, 8], [17, 8]), alpha 4
          layers.1 out [64, 64]    LoKr, both halves whole ([4, 8], [16, 8]), alpha 3 (ignored)
          layers.1 w2 [64, 170]    LoHa rank 4, alpha 2
          noise_refiner qkv        (comfy file) LoKr on the fused [192, 64], w1 [4, 4], w2
                                   [48, 16] = [48, 4] @ [4, 16]; (kohya file) LoHa rank 3 on to_k
  lora/lycoris_tiny_updates.safetensors   "<file>.<diffusers weight>": the update of each weight the
        file patches (the fused one split by rows into to_q / to_k / to_v), at strength 1.
"""

from __future__ import annotations

import torch
from lycoris.functional import loha, lokr

from common import save_fixture

SEED = 20261208


def lokr_tensors(g, w1, w2, rank, alpha):
    """w1 / w2: (rows, cols, factorised?)."""
    t = {}
    for half, (rows, cols, factorised) in (("w1", w1), ("w2", w2)):
        if factorised:
            t[f"lokr_{half}_a"] = torch.randn(rows, rank, generator=g) * 0.3
            t[f"lokr_{half}_b"] = torch.randn(rank, cols, generator=g) * 0.3
        else:
            t[f"lokr_{half}"] = torch.randn(rows, cols, generator=g) * 0.3
    t["alpha"] = torch.tensor(float(alpha))
    return t


def lokr_update(t):
    get = t.get
    return lokr.diff_weight(get("lokr_w1"), get("lokr_w1_a"), get("lokr_w1_b"), get("lokr_w2"),
                            get("lokr_w2_a"), get("lokr_w2_b"), None, gamma=float(t["alpha"]))


def loha_tensors(g, rows, cols, rank, alpha):
    t = {f"hada_{w}_{p}": torch.randn(*((rows, rank) if p == "a" else (rank, cols)), generator=g) * 0.3
         for w in ("w1", "w2") for p in ("a", "b")}
    t["alpha"] = torch.tensor(float(alpha))
    return t


def loha_update(t):
    rank = t["hada_w1_b"].shape[0]
    # functional loha takes (w1d, w1u, w2d, w2u, t1, t2): down = *_b, up = *_a; gamma is the scale.
    return loha.diff_weight(t["hada_w1_b"], t["hada_w1_a"], t["hada_w2_b"], t["hada_w2_a"], None, None,
                            gamma=float(t["alpha"]) / rank)


def main() -> None:
    g = torch.Generator().manual_seed(SEED)
    shared = {  # diffusers module: tensors (both files)
        "layers.0.attention.to_q": lokr_tensors(g, (8, 8, False), (8, 8, True), 2, 1),
        "layers.0.feed_forward.w1": lokr_tensors(g, (10, 8, True), (17, 8, True), 2, 4),
        "layers.1.attention.to_out.0": lokr_tensors(g, (4, 8, False), (16, 8, False), 8, 3),
        "layers.1.feed_forward.w2": loha_tensors(g, 64, 170, 4, 2),
    }
    kohya_only = {"noise_refiner.0.attention.to_k": loha_tensors(g, 64, 64, 3, 1.5)}
    comfy_fused = lokr_tensors(g, (4, 4, False), (48, 16, True), 4, 2)  # noise_refiner.0 qkv

    def update(t):
        return lokr_update(t) if "alpha" in t and any(k.startswith("lokr") for k in t) else loha_update(t)

    kohya, comfy, updates = {}, {}, {}
    for module, tensors in {**shared, **kohya_only}.items():
        for name, t in tensors.items():
            kohya[f"lora_unet_{module.replace('.', '_')}.{name}"] = t
        updates[f"kohya.{module}.weight"] = update(tensors)
    for module, tensors in shared.items():
        original = module.replace("attention.to_out.0", "attention.out")
        for name, t in tensors.items():
            comfy[f"diffusion_model.{original}.{name}"] = t
        updates[f"comfy.{module}.weight"] = update(tensors)
    for name, t in comfy_fused.items():
        comfy[f"diffusion_model.noise_refiner.0.attention.qkv.{name}"] = t
    q, k, v = lokr_update(comfy_fused).chunk(3, dim=0)
    for part, rows in (("to_q", q), ("to_k", k), ("to_v", v)):
        updates[f"comfy.noise_refiner.0.attention.{part}.weight"] = rows

    save_fixture("lora/zimage_lycoris_kohya.safetensors", kohya, __file__, SEED)
    save_fixture("lora/zimage_lycoris_comfy.safetensors", comfy, __file__, SEED)
    save_fixture("lora/lycoris_tiny_updates.safetensors", updates, __file__, SEED)
    for name, u in updates.items():
        print(name, tuple(u.shape), f"{u.abs().max().item():.3g}")


if __name__ == "__main__":
    main()
