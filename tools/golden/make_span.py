"""Golden fixtures for SPAN upscalers (Swift Parameter-free Attention Network: 4x-ClearRealityV1, the Nomos SPAN
models) on tiny random networks, against spandrel 0.4.2, the loader ComfyUI's "Load Upscale Model" node runs.

Writes tests/fixtures/span/:
  span_x4.safetensors     4x, 4 features, normalising its input (the published default), float32
  span_x2_no_norm.pth     2x, 4 features, with the `no_norm` buffer (no input normalisation), bfloat16, as a
                          torch.save'd state dict
  span_io.safetensors     the input picture (13 x 11 pixels, uint8 / 255) and each network's output
Every Conv3XC's training convs are random (PyTorch's initial values, the skip and the chain's ends times 0.6 so the
six attention blocks keep a moderate range); the files also carry `eval_conv`, the fold spandrel caches, here filled
with noise: spandrel recomputes the fold from the training convs on every call, so it must not matter. Each file is
loaded back through spandrel's ModelLoader and must give the same output (to 1e-6 of its scale).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import FIXTURES, fixture_metadata, save_fixture, upscaler_setup, with_sorted_header  # noqa: E402

SEED = 20261209
OUT = FIXTURES / "span"
HEIGHT, WIDTH = 11, 13

NETWORKS = {
    "x4": dict(upscale=4, norm=True, dtype=torch.float32, file="span_x4.safetensors"),
    "x2": dict(upscale=2, norm=False, dtype=torch.bfloat16, file="span_x2_no_norm.pth"),
}


def main() -> None:
    from safetensors.torch import save
    from spandrel import ModelLoader
    from spandrel.architectures.SPAN import SPAN

    picture, image = upscaler_setup(SEED, OUT, HEIGHT, WIDTH)
    io = {"image": image}
    for name, spec in NETWORKS.items():
        net = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=spec["upscale"], norm=spec["norm"]).eval()
        with torch.no_grad():
            for key, p in net.named_parameters():
                if ".eval_conv." in key:
                    p.copy_(torch.randn_like(p))  # spandrel's cache: overwritten on every call
                elif ".sk." in key or ".conv.0." in key or ".conv.2." in key:
                    p.mul_(0.6)
                p.copy_(p.to(spec["dtype"]).float())  # values exact in the stored dtype
        state = {k: v.detach().to(spec["dtype"]) if v.is_floating_point() else v for k, v in net.state_dict().items()}
        with torch.no_grad():
            expected = net(image)
        path = OUT / spec["file"]
        if path.suffix == ".pth":
            torch.save(state, path)
        else:
            path.write_bytes(with_sorted_header(save(state, metadata=fixture_metadata(__file__, SEED))))
        loaded = ModelLoader().load_from_file(path)
        assert loaded.architecture.id == "SPAN" and loaded.scale == spec["upscale"], name
        with torch.no_grad():
            # The same up to float32 rounding (the fold runs through conv2d's own summation order).
            assert float((loaded.model(image) - expected).abs().max()) <= 1e-6 * float(expected.abs().max()), name
        io[f"{name}_output"] = expected
        print(f"{name}: {path.name}, {len(state)} tensors, scale {loaded.scale}, output {tuple(expected.shape)}, "
              f"range [{float(expected.min()):.3f}, {float(expected.max()):.3f}]")
    save_fixture("span/span_io.safetensors", io, __file__, SEED)


if __name__ == "__main__":
    main()
