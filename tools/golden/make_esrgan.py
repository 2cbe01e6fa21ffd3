"""Golden fixtures for ESRGAN upscalers (RRDBNet: ESRGAN, Real-ESRGAN, BSRGAN and the community models built on
them) on tiny random models, against spandrel 0.4.2, the loader ComfyUI's "Load Upscale Model" node runs.

Three networks, each saved in the key layouts published files use (the same weights in each):
  x4       4x, no pixel unshuffle (RealESRGAN_x4plus, 4x-UltraSharp):
           esrgan_x4_basicsr.safetensors   conv_first / body.N.rdbR.convC / conv_body / conv_upK / conv_hr / conv_last
           esrgan_x4_original.safetensors  model.0 / model.1.sub.N.RDBR.convC.0 / model.1.sub.NB / model.3K / ...
           esrgan_x4_bsrgan.safetensors    conv_first / RRDB_trunk.N.RDBR.convC / trunk_conv / upconvK / HRconv
  x2       2x Real-ESRGAN (RealESRGAN_x2plus): the picture is reflect-padded to even sides, pixel-unshuffled by 2
           into 12 channels, run through the 4x network and cropped: esrgan_x2_basicsr.safetensors
  plus_x4  ESRGAN+ (a 1x1 convolution added inside each dense block): esrgan_plus_x4_original.safetensors
and esrgan_io.safetensors: per network the input picture (13 x 11 pixels, uint8 / 255, as ComfyUI passes a
picture) and spandrel's output; for x4 also the output tiled as ComfyUI's ImageUpscaleWithModel tiles it
(comfy.utils.tiled_scale, restated below) with 8-pixel tiles overlapping by 2, so the picture needs 2 x 2 tiles
and the last ones are short. The picture is also esrgan_picture.png, and x4's output as 8 bits (clamp(0, 1) * 255
rounded half to even, A1111's conversion) esrgan_x4_picture.png.

The networks are tiny (8 features, 1-2 blocks; spandrel fixes the growth channels at 32, as the releases have), their
weights PyTorch's initial ones times 1.8 (so the output spans about [-1, 1]) rounded to bf16 and stored so.
Every converted layout is loaded back through spandrel and must give the same output, so the key maps here are the
ones spandrel understands.
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import FIXTURES, fixture_metadata, save_fixture, upscaler_setup, with_sorted_header  # noqa: E402

SEED = 20261207
OUT = FIXTURES / "esrgan"
HEIGHT, WIDTH = 11, 13
TILE, OVERLAP = 8, 2
WEIGHT_GAIN = 1.8

NETWORKS = {
    "x4": dict(in_nc=3, num_blocks=1, scale=4),
    "x2": dict(in_nc=12, num_blocks=2, scale=4, shuffle_factor=2),
    "plus_x4": dict(in_nc=3, num_blocks=1, scale=4, plus=True),
}
LAYOUTS = {"x4": ("basicsr", "original", "bsrgan"), "x2": ("basicsr",), "plus_x4": ("original",)}


def renamed(old: dict, layout: str, num_blocks: int) -> dict:
    """The original (old-arch, model.N) state dict in another layout's names."""
    if layout == "original":
        return dict(old)
    trunk, rdb, body, up, hr = {
        "basicsr": ("body", "rdb", "conv_body", "conv_up", "conv_hr"),
        "bsrgan": ("RRDB_trunk", "RDB", "trunk_conv", "upconv", "HRconv"),
    }[layout]
    last = max(int(k.split(".")[1]) for k in old)  # conv_last; the hr conv is two before it
    out = {}
    for key, value in old.items():
        index, rest = key.split(".", 2)[1], key.split(".", 2)[2]
        if index == "0":
            name = f"conv_first.{rest}"
        elif m := re.fullmatch(r"sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", rest):
            name = f"{trunk}.{m[1]}.{rdb}{m[2]}.conv{m[3]}.{m[4]}"
        elif rest.startswith(f"sub.{num_blocks}."):
            name = f"{body}.{rest.split('.')[-1]}"
        elif int(index) == last:
            name = f"conv_last.{rest}"
        elif int(index) == last - 2:
            name = f"{hr}.{rest}"
        else:
            name = f"{up}{int(index) // 3}.{rest}"
        out[name] = value
    return out


def comfy_tiled_scale(image: torch.Tensor, function, tile: int, overlap: int, scale: int) -> torch.Tensor:
    """ComfyUI's comfy.utils.tiled_scale_multidim for one 2-D picture, restated (ComfyUI is not on PyPI): tiles
    start every tile - overlap pixels (the last ones shorter, never moved back), each tile's output is weighted by
    a mask that ramps up over overlap * scale pixels at its every edge, and the sums are divided by the weights."""
    _, _, h, w = image.shape
    if h <= tile and w <= tile:
        return function(image)
    out = torch.zeros(1, 3, h * scale, w * scale)
    weight = torch.zeros_like(out)
    positions = [range(0, size - overlap, tile - overlap) if size > tile else [0] for size in (h, w)]
    for y, x in itertools.product(*positions):
        y = max(0, min(h - overlap, y))
        x = max(0, min(w - overlap, x))
        part = image[:, :, y : y + min(tile, h - y), x : x + min(tile, w - x)]
        result = function(part)
        mask = torch.ones_like(result)
        feather = overlap * scale
        for d in (2, 3):
            if feather >= mask.shape[d]:
                continue
            for t in range(feather):
                mask.narrow(d, t, 1).mul_((t + 1) / feather)
                mask.narrow(d, mask.shape[d] - 1 - t, 1).mul_((t + 1) / feather)
        rows = slice(y * scale, y * scale + mask.shape[2])
        cols = slice(x * scale, x * scale + mask.shape[3])
        out[:, :, rows, cols] += result * mask
        weight[:, :, rows, cols] += mask
    return out / weight


def main() -> None:
    from safetensors.torch import save
    from spandrel import ModelLoader
    from spandrel.architectures.ESRGAN import ESRGAN

    picture, image = upscaler_setup(SEED, OUT, HEIGHT, WIDTH)
    io = {"image": image}
    for name, hyper in NETWORKS.items():
        net = ESRGAN(out_nc=3, num_filters=8, **hyper).eval()
        with torch.no_grad():  # bf16 values (half the file size), scaled up so the output is not near 0
            for p in net.parameters():
                p.copy_((p * WEIGHT_GAIN).to(torch.bfloat16).float())
        old = {k: v.detach().to(torch.bfloat16) for k, v in net.state_dict().items()}
        with torch.no_grad():
            expected = net(image)
            for layout in LAYOUTS[name]:
                state = renamed(old, layout, hyper["num_blocks"])
                loaded = ModelLoader().load_from_state_dict(state)
                assert torch.equal(loaded.model(image), expected), (name, layout)
                blob = save(state, metadata=fixture_metadata(__file__, SEED, scale=loaded.scale))
                (OUT / f"esrgan_{name}_{layout}.safetensors").write_bytes(with_sorted_header(blob))
            io[f"{name}_output"] = expected
            if name == "x4":
                io["x4_tiled_output"] = comfy_tiled_scale(image, net, TILE, OVERLAP, 4)
                print(f"x4 tiled vs whole: max {float((io['x4_tiled_output'] - expected).abs().max()):.4f}")
        print(f"{name}: scale {loaded.scale}, output {tuple(expected.shape)}, range "
              f"[{float(expected.min()):.3f}, {float(expected.max()):.3f}]")
    save_fixture("esrgan/esrgan_io.safetensors", io, __file__, SEED, tile=TILE, overlap=OVERLAP)
    to_png(picture[0].permute(1, 2, 0).numpy().astype("uint8"), OUT / "esrgan_picture.png")
    eight_bits = (io["x4_output"][0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype("uint8")
    to_png(eight_bits, OUT / "esrgan_x4_picture.png")


def to_png(pixels, path: Path) -> None:
    from PIL import Image

    Image.fromarray(pixels).save(path)


if __name__ == "__main__":
    main()
