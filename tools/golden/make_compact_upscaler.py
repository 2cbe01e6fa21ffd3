"""Golden fixtures for Real-ESRGAN's compact upscaler (SRVGGNetCompact: realesr-general-x4v3, realesr-animevideov3)
on tiny random networks, against spandrel 0.4.2, the loader ComfyUI's "Load Upscale Model" node runs.

Writes tests/fixtures/compact_upscaler/:
  compact_x4_params.pth        4x, 8 features, 2 body convs, as Real-ESRGAN publishes its models: torch.save of
                               {"params": OrderedDict} in BasicSR's names (body.0 conv, body.1 PReLU, ...), float32
  compact_x2.safetensors       2x, 8 features, 1 body conv, the bare state dict in bfloat16
  compact_io.safetensors       the input picture (13 x 11 pixels, uint8 / 255, as ComfyUI passes a picture) and
                               each network's output
  compact_picture.png, compact_x4_picture.png   the picture, and the 4x output as 8 bits (clamp(0, 1) * 255
                               rounded half to even, A1111's conversion)
The weights are PyTorch's initial ones times 1.8 and the PReLU slopes uniform in [-0.3, 0.6] (PyTorch starts them
all at 0.25, which would hide a channel mix-up). Each file is loaded back through spandrel's ModelLoader (the .pth
from disk, so its `params` nesting is undone by spandrel) and must give the same output.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import FIXTURES, fixture_metadata, save_fixture, upscaler_setup, with_sorted_header  # noqa: E402

SEED = 20261208
OUT = FIXTURES / "compact_upscaler"
HEIGHT, WIDTH = 11, 13
WEIGHT_GAIN = 1.8

NETWORKS = {
    "x4": dict(num_feat=8, num_conv=2, upscale=4, dtype=torch.float32),
    "x2": dict(num_feat=8, num_conv=1, upscale=2, dtype=torch.bfloat16),
}


def main() -> None:
    from PIL import Image
    from safetensors.torch import save
    from spandrel import ModelLoader
    from spandrel.architectures.Compact import Compact

    picture, image = upscaler_setup(SEED, OUT, HEIGHT, WIDTH)
    io = {"image": image}
    for name, hyper in NETWORKS.items():
        dtype = hyper.pop("dtype")
        net = Compact(num_in_ch=3, num_out_ch=3, **hyper).eval()
        with torch.no_grad():
            for key, p in net.named_parameters():
                is_slope = p.ndim == 1 and not key.endswith("bias")
                value = torch.rand_like(p) * 0.9 - 0.3 if is_slope else p * WEIGHT_GAIN
                p.copy_(value.to(dtype).float())  # values exact in the stored dtype
            expected = net(image)
        state = collections.OrderedDict((k, v.detach().to(dtype)) for k, v in net.state_dict().items())
        if name == "x4":
            path = OUT / "compact_x4_params.pth"
            torch.save({"params": state}, path)
        else:
            path = OUT / f"compact_{name}.safetensors"
            path.write_bytes(with_sorted_header(save(state, metadata=fixture_metadata(__file__, SEED))))
        loaded = ModelLoader().load_from_file(path)
        assert loaded.architecture.id == "Compact" and loaded.scale == hyper["upscale"], name
        with torch.no_grad():
            assert torch.equal(loaded.model(image), expected), name
        io[f"{name}_output"] = expected
        print(f"{name}: {path.name}, scale {loaded.scale}, output {tuple(expected.shape)}, range "
              f"[{float(expected.min()):.3f}, {float(expected.max()):.3f}]")
    save_fixture("compact_upscaler/compact_io.safetensors", io, __file__, SEED)
    Image.fromarray(picture[0].permute(1, 2, 0).numpy().astype("uint8")).save(OUT / "compact_picture.png")
    eight_bits = (io["x4_output"][0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype("uint8")
    Image.fromarray(eight_bits).save(OUT / "compact_x4_picture.png")


if __name__ == "__main__":
    main()
