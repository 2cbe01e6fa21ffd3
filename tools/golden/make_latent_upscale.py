"""Golden fixtures for AUTOMATIC1111's latent upscalers (the hires fix's "Latent", "Latent (bicubic antialiased)", ...).

A1111 resizes the first pass's latents with torch.nn.functional.interpolate(samples, size=..., mode=...,
antialias=...) (modules/processing.py, sample_hr_pass; the modes are shared.latent_upscale_modes). This runs it on
random float32 latents for every mode, enlarging by non-integer and integer factors and shrinking.

Writes tests/fixtures/latent_upscale/latent_upscale.safetensors: "input" [2, 3, 5, 7] and one output per case,
"<mode>_<h>x<w>", with the cases' names, modes and sizes in the metadata.
"""

from __future__ import annotations

import torch

from common import save_fixture

# A1111's table: name -> (mode, antialias).
MODES = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
SIZES = [(10, 14), (8, 11), (13, 6), (3, 4)]  # 2x, 1.6x, mixed, shrinking


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7)
    tensors = {"input": x}
    cases = []
    for name, (mode, antialias) in MODES.items():
        for h, w in SIZES:
            key = f"{mode}{'_aa' if antialias else ''}_{h}x{w}"
            tensors[key] = torch.nn.functional.interpolate(x, size=(h, w), mode=mode, antialias=antialias)
            cases.append({"name": name, "key": key, "height": h, "width": w})
    save_fixture("latent_upscale/latent_upscale.safetensors", tensors, __file__, 0, cases=cases)


if __name__ == "__main__":
    main()
