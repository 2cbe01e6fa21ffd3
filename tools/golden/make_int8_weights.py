"""Golden fixtures for ComfyUI's int8 weights (format "int8_tensorwise", optionally "convrot"), made
and run by comfy-kitchen 0.2.40's eager (PyTorch) backend, the code ComfyUI calls.

  int8/int8_linear_cases.safetensors   per case (shapes below): a float32 weight `w`, its
        quantisation by comfy-kitchen (`q`, `scale`: quantize_int8_convrot_weight for a ConvRot
        group, quantize_int8_rowwise for group 0, quantize_int8_tensorwise for "tensorwise"),
        `dequantised` (dequantize_int8_convrot_weight / dequantize_int8_simple), inputs `x` and
        bias `b`, and `y` = int8_linear(x, q, scale, b, float32, convrot, group): ComfyUI's W8A8
        matmul (activations rotated, quantised per row, integer product, rescaled).
  zimage_dit/zimage_dit_tiny_comfy_int8.safetensors   make_zimage_dit.py's tiny transformer with
        the layers make_zimage_fp8.py quantises stored as ComfyUI's int8 layers: those whose rows
        (64 values) take ConvRot groups of 64 rotated, feed_forward.w2 (rows of 170) row-wise
        without rotation, and layers.1's w2 with one scale for the whole tensor; settings in
        `<layer>.comfy_quant` except the refiners', which only `_quantization_metadata` lists.
  zimage_dit/zimage_dit_tiny_int8_io.safetensors   per case of zimage_dit_tiny_diffusers_io (same
        inputs): diffusers' ZImageTransformer2DModel with every quantised nn.Linear running
        comfy-kitchen's int8_linear instead (float32 activations).
"""

from __future__ import annotations

import json

import torch
from comfy_kitchen.backends.eager import quantization as ck
from diffusers import ZImageTransformer2DModel
from safetensors.torch import load_file

from common import FIXTURES, save_fixture
from make_zimage_fp8 import CASES, quantized, run, to_diffusers

SEED = 20261207
LINEAR_CASES = {  # name: (rows, cols, batch rows, ConvRot group or 0, "tensorwise")
    "h256": (48, 512, 5, 256, False),
    "h64": (24, 192, 3, 64, False),
    "h4": (8, 12, 2, 4, False),
    "rowwise": (20, 40, 4, 0, False),
    "tensorwise": (16, 24, 3, 0, True),
}


def quantize(w: torch.Tensor, group: int, tensorwise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if tensorwise:
        return ck.quantize_int8_tensorwise(w)
    if group:
        return ck.quantize_int8_convrot_weight(w, group)
    return ck.quantize_int8_rowwise(w)


def dequantize(q: torch.Tensor, scale: torch.Tensor, group: int) -> torch.Tensor:
    return ck.dequantize_int8_convrot_weight(q, scale, group) if group else ck.dequantize_int8_simple(q, scale)


def settings(group: int) -> dict:
    conf = {"format": "int8_tensorwise"}
    if group:
        conf.update(convrot=True, convrot_groupsize=group)
    return conf


def linear_cases() -> None:
    g = torch.Generator().manual_seed(SEED)
    out = {}
    for name, (rows, cols, batch, group, tensorwise) in LINEAR_CASES.items():
        w = torch.randn(rows, cols, generator=g) * 0.05
        w[0, : cols // 2] *= 20  # an outlier row, as real layers have
        x = torch.randn(batch, cols, generator=g)
        x[:, 1] *= 30  # an outlier feature, which ConvRot spreads over its group
        b = torch.randn(rows, generator=g)
        q, scale = quantize(w, group, tensorwise)
        out.update({f"{name}.w": w, f"{name}.q": q, f"{name}.scale": scale, f"{name}.x": x, f"{name}.b": b,
                    f"{name}.dequantised": dequantize(q, scale, group),
                    f"{name}.y": ck.int8_linear(x, q, scale, b, torch.float32, convrot=bool(group),
                                                convrot_groupsize=group or 256)})
        err = (out[f"{name}.y"] - (x @ w.T + b)).norm() / (x @ w.T + b).norm()
        print(name, "int8 vs float32 linear, relative L2", err.item())
    save_fixture("int8/int8_linear_cases.safetensors", out, __file__, SEED,
                 cases=json.dumps({k: list(v) for k, v in LINEAR_CASES.items()}))


class Int8Linear(torch.nn.Module):
    def __init__(self, q: torch.Tensor, scale: torch.Tensor, bias, group: int):
        super().__init__()
        self.q, self.scale, self.bias, self.group = q, scale, bias, group

    def forward(self, x):
        return ck.int8_linear(x, self.q, self.scale, self.bias, x.dtype, convrot=bool(self.group),
                              convrot_groupsize=self.group or 256)


def zimage() -> None:
    folder = FIXTURES / "zimage_dit"
    original = load_file(folder / "zimage_dit_tiny_original_bf16.safetensors")
    stored, listed, quantised = {}, {}, {}
    for name, w in original.items():
        if not quantized(name, w):
            stored[name] = w
            continue
        layer = name[: -len(".weight")]
        group = 64 if w.shape[1] % 64 == 0 else 0
        tensorwise = layer == "layers.1.feed_forward.w2"
        q, scale = quantize(w, group, tensorwise)
        stored[name], stored[layer + ".weight_scale"] = q, scale
        if "refiner" in layer:
            listed[layer] = settings(group)
        else:
            stored[layer + ".comfy_quant"] = torch.tensor(list(json.dumps(settings(group)).encode()), dtype=torch.uint8)
        quantised[name] = (q, scale, group)
    print(len(quantised), "int8 layers,", len(listed), "listed in _quantization_metadata only")
    save_fixture("zimage_dit/zimage_dit_tiny_comfy_int8.safetensors", stored, __file__, SEED,
                 _quantization_metadata=json.dumps({"format_version": "1.0", "layers": listed}))

    config = json.loads((folder / "tiny_diffusers" / "transformer" / "config.json").read_text())
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    model = ZImageTransformer2DModel(**config).eval()
    model.load_state_dict(to_diffusers({k: v.float() for k, v in original.items()}))
    # Each quantised original weight is one diffusers Linear, or (fused qkv) three: their rows.
    for name, (q, scale, group) in quantised.items():
        for dname, rows in to_diffusers({name: torch.arange(q.shape[0])}).items():
            module = model.get_submodule(dname[: -len(".weight")])
            scale_rows = scale if scale.numel() == 1 else scale[rows]
            parent_name, _, child = dname[: -len(".weight")].rpartition(".")
            model.get_submodule(parent_name).register_module(child, Int8Linear(q[rows], scale_rows, module.bias, group))

    io_in = load_file(folder / "zimage_dit_tiny_diffusers_io.safetensors")
    io = {}
    for case in CASES:
        latents = list(io_in[f"{case}.latents"])
        caps = [io_in[f"{case}.caption{i}"] for i in range(len(latents))]
        io[f"{case}.output_int8"] = run(model, latents, io_in[f"{case}.t"], caps)
        ref = io_in[f"{case}.output_bf16w"]
        print(case, "int8 vs bf16 weights, relative L2", ((io[f"{case}.output_int8"] - ref).norm() / ref.norm()).item())
    save_fixture("zimage_dit/zimage_dit_tiny_int8_io.safetensors", io, __file__, SEED, cases=CASES)


if __name__ == "__main__":
    linear_cases()
    zimage()
