"""Golden fixtures for float8 Z-Image weights: the tiny transformer of make_zimage_dit.py with its
linear weights quantised to scaled e4m3 exactly as ComfyUI does, in the two layouts ComfyUI
publishes, and diffusers' output on the dequantised weights.

Quantised: the 2-D weights zflow's `--fp8` rule picks (io/fp8_weights.h: more than 1024 values,
no embedder / modulation / norm / final-layer / pad-token name): every block's attention qkv and
out, and feed_forward w1 / w2 / w3. Each is quantised from the bf16 single file's values as
comfy-kitchen's TensorCoreFP8Layout.quantize + eager quantize_per_tensor_fp8 compute it (that
package is not installed here; its four tensor operations are written out below, same dtypes):
    scale = (amax(|w|) / 448).to(float32)            # the division in bf16, w's dtype
    q = clamp(w * (1.0 / scale).to(bf16), -448, 448).to(float8_e4m3fn)
Everything else keeps the bf16 values. Written as
  zimage_dit_tiny_comfy_scaled_fp8.safetensors   the older "scaled fp8" layout: prefix
        model.diffusion_model., `<layer>.scale_weight`, a `scaled_fp8` marker, and one
        `scale_input` of 1.0 (ComfyUI drops those)
  zimage_dit_tiny_comfy_quant_fp8.safetensors    the newer per-layer layout: `<layer>.weight_scale`,
        `<layer>.comfy_quant` JSON bytes and the `_quantization_metadata` header
  zimage_dit_tiny_fp8_io.safetensors             per case of zimage_dit_tiny_diffusers_io (same
        inputs): diffusers' output with the weights dequantised in float32 (q.float() * scale)
"""

from __future__ import annotations

import json

import torch
from diffusers import ZImageTransformer2DModel
from safetensors.torch import load_file

from common import FIXTURES, save_fixture

SEED = 20260  # make_zimage_dit.py's; nothing here is random
PREFIX = "model.diffusion_model."
HIGH_PRECISION = ["embedder", "embed_tokens", "token_embd", "img_in.", "txt_in.", "time_in.",
                  "vector_in.", "guidance_in.", "modulation", "final_layer.", "norm", "pad_token"]
CASES = ["sq8_cap1_t0", "h6w10_cap31_t03", "h16w6_cap33_t05", "batch_sq8_cap33_cap5"]


def quantized(name: str, t: torch.Tensor) -> bool:
    return t.ndim == 2 and t.numel() > 1024 and not any(p in name for p in HIGH_PRECISION)


def quantize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = (torch.amax(w.abs()) / torch.finfo(torch.float8_e4m3fn).max).to(torch.float32)
    temp = w * (1.0 / scale).to(w.dtype)
    temp = torch.clamp(temp, -448.0, 448.0)
    return temp.to(torch.float8_e4m3fn), scale


def to_diffusers(sd: dict) -> dict:
    """ComfyUI / original names -> diffusers names (the inverse of make_zimage_dit.to_original)."""
    out = {}
    for name, t in sd.items():
        if name.startswith("x_embedder."):
            out["all_x_embedder.2-1." + name[len("x_embedder."):]] = t
        elif name.startswith("final_layer."):
            out["all_final_layer.2-1." + name[len("final_layer."):]] = t
        elif name.endswith(".attention.qkv.weight"):
            prefix = name[: -len("qkv.weight")]
            q, k, v = t.chunk(3, dim=0)
            out[prefix + "to_q.weight"], out[prefix + "to_k.weight"], out[prefix + "to_v.weight"] = q, k, v
        elif ".attention.out." in name:
            out[name.replace(".attention.out.", ".attention.to_out.0.")] = t
        elif ".attention.q_norm." in name:
            out[name.replace(".attention.q_norm.", ".attention.norm_q.")] = t
        elif ".attention.k_norm." in name:
            out[name.replace(".attention.k_norm.", ".attention.norm_k.")] = t
        else:
            out[name] = t
    return out


def run(model, latents, t, caps):
    with torch.no_grad():
        out = model(x=[l.unsqueeze(1) for l in latents], t=t, cap_feats=caps, return_dict=False)[0]
    return torch.stack([o.squeeze(1) for o in out])


def main() -> None:
    folder = FIXTURES / "zimage_dit"
    original = load_file(folder / "zimage_dit_tiny_original_bf16.safetensors")

    old_layout, new_layout, layers, dequantised = {}, {}, {}, {}
    for name, w in original.items():
        if not quantized(name, w):
            old_layout[PREFIX + name] = w
            new_layout[name] = w
            dequantised[name] = w.float()
            continue
        q, scale = quantize(w)
        layer = name[: -len(".weight")]
        old_layout[PREFIX + name] = q
        old_layout[PREFIX + layer + ".scale_weight"] = scale
        new_layout[name] = q
        new_layout[layer + ".weight_scale"] = scale
        conf = {"format": "float8_e4m3fn"}
        new_layout[layer + ".comfy_quant"] = torch.tensor(list(json.dumps(conf).encode()), dtype=torch.uint8)
        layers[layer] = conf
        dequantised[name] = q.float() * scale
    old_layout[PREFIX + "scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    old_layout[PREFIX + "layers.0.attention.qkv.scale_input"] = torch.tensor(1.0)
    print(len(layers), "quantised layers")

    save_fixture("zimage_dit/zimage_dit_tiny_comfy_scaled_fp8.safetensors", old_layout, __file__, SEED)
    save_fixture("zimage_dit/zimage_dit_tiny_comfy_quant_fp8.safetensors", new_layout, __file__, SEED,
                 _quantization_metadata=json.dumps({"format_version": "1.0", "layers": layers}))

    config = json.loads((folder / "tiny_diffusers" / "transformer" / "config.json").read_text())
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    model = ZImageTransformer2DModel(**config).eval()
    model.load_state_dict(to_diffusers(dequantised))

    io_in = load_file(folder / "zimage_dit_tiny_diffusers_io.safetensors")
    io = {}
    for case in CASES:
        latents = list(io_in[f"{case}.latents"])
        caps = [io_in[f"{case}.caption{i}"] for i in range(len(latents))]
        io[f"{case}.output_fp8"] = run(model, latents, io_in[f"{case}.t"], caps)
        err = (io[f"{case}.output_fp8"] - io_in[f"{case}.output_bf16w"]).norm() / io_in[f"{case}.output_bf16w"].norm()
        print(case, "fp8 vs bf16 weights, relative L2", err.item())
    save_fixture("zimage_dit/zimage_dit_tiny_fp8_io.safetensors", io, __file__, SEED, cases=CASES)


if __name__ == "__main__":
    main()
