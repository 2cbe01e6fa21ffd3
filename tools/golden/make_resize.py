"""Image-resize fixtures: Pillow's `Image.resize((w, h), resample=f)` on deterministic
random RGB and greyscale ("L") images, for every filter zflow implements, over sizes that
break naive code: up and down by non-integer ratios, one axis only (Pillow skips the other
pass), 1-pixel sides, big reductions (1000 -> 37), an exact halving and the identity.
One case goes through diffusers' VaeImageProcessor itself (preprocess with no size given,
vae_scale_factor 16 as in the Z-Image pipelines), so its expected bytes and size come from
diffusers, not from a restatement of what it does.

Writes tests/fixtures/resize/pillow_resize_rgb_l_cases.safetensors: for case <name>,
`<name>.input` [h, w, c] uint8 and `<name>.<filter>` [H, W, c] uint8; the metadata key
"cases" lists name, mode, source and target sizes. tests/io/test_image_resize.cpp
requires every byte to match.
Run: /work/venv-golden/bin/python tools/golden/make_resize.py
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from common import save_fixture

SEED = 0
NAME = "resize/pillow_resize_rgb_l_cases.safetensors"

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

# (name, mode, (source w, h), (target w, h))
CASES = [
    ("up_37x23_to_50x40", "RGB", (37, 23), (50, 40)),
    ("down_64x48_to_37x23", "RGB", (64, 48), (37, 23)),
    ("mixed_31x33_to_33x31", "RGB", (31, 33), (33, 31)),
    ("half_64x48_to_32x24", "RGB", (64, 48), (32, 24)),
    ("double_16x12_to_32x24", "RGB", (16, 12), (32, 24)),
    ("width_only_1000x3_to_37x3", "RGB", (1000, 3), (37, 3)),
    ("height_only_4x1000_to_4x37", "RGB", (4, 1000), (4, 37)),
    ("both_1000x6_to_37x5", "RGB", (1000, 6), (37, 5)),
    ("one_pixel_1x1_to_7x5", "RGB", (1, 1), (7, 5)),
    ("to_one_pixel_13x11_to_1x1", "RGB", (13, 11), (1, 1)),
    ("row_17x1_to_5x40", "RGB", (17, 1), (5, 40)),
    ("big_up_3x2_to_50x40", "RGB", (3, 2), (50, 40)),
    ("long_up_7x5_to_997x2", "RGB", (7, 5), (997, 2)),
    # Pillow 13 runs the vertical pass first when the height loses more than twice as many
    # pixels as the width: 40 - 29 > 2 * (30 - 25) does, 40 - 30 does not.
    ("vertical_first_30x40_to_25x29", "RGB", (30, 40), (25, 29)),
    ("horizontal_first_30x40_to_25x30", "RGB", (30, 40), (25, 30)),
    ("vertical_first_widen_20x30_to_27x22", "RGB", (20, 30), (27, 22)),
    ("identity_9x7", "RGB", (9, 7), (9, 7)),
    ("grey_down_37x23_to_16x16", "L", (37, 23), (16, 16)),
    ("grey_up_20x30_to_64x48", "L", (20, 30), (64, 48)),
]


def random_image(rng: np.random.Generator, mode: str, size: tuple[int, int]) -> np.ndarray:
    """Half smooth gradient, half noise: smooth content is what real photos hold, and the
    noise drives Lanczos and bicubic past 0 and 255 so the clipping is exercised."""
    w, h = size
    channels = 3 if mode == "RGB" else 1
    y, x = np.mgrid[0:h, 0:w]
    smooth = np.stack([(x * 7 + y * 3 + 40 * c) % 256 for c in range(channels)], axis=-1)
    noise = rng.integers(0, 256, size=(h, w, channels))
    pixels = np.where(rng.random((h, w, 1)) < 0.5, smooth, noise).astype(np.uint8)
    return pixels


def as_pil(pixels: np.ndarray, mode: str) -> Image.Image:
    return Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)


def as_tensor(image: Image.Image, mode: str) -> torch.Tensor:
    array = np.asarray(image, dtype=np.uint8)
    if mode == "L":
        array = array[..., None]
    return torch.from_numpy(array.copy())


def diffusers_case(rng: np.random.Generator, tensors: dict, cases: list) -> None:
    """Z-Image img2img: image_processor.preprocess(image) with no height/width resizes a
    100x75 image to 96x64 (each side down to a multiple of 16) with LANCZOS and maps
    [0, 255] to [-1, 1]; undoing that map recovers the resized bytes exactly."""
    from diffusers.image_processor import VaeImageProcessor

    name, size = "diffusers_zimage_default_100x75", (100, 75)
    pixels = random_image(rng, "RGB", size)
    processor = VaeImageProcessor(vae_scale_factor=16)
    out = processor.preprocess(as_pil(pixels, "RGB"))  # [1, 3, H, W] in [-1, 1]
    rgb = torch.round((out[0].permute(1, 2, 0).double() + 1.0) * 127.5).to(torch.uint8)
    direct = as_tensor(as_pil(pixels, "RGB").resize((96, 64), Image.Resampling.LANCZOS), "RGB")
    assert torch.equal(rgb, direct), "diffusers' preprocess is not Image.resize(LANCZOS)"
    tensors[f"{name}.input"] = torch.from_numpy(pixels)
    tensors[f"{name}.lanczos"] = rgb
    cases.append({"name": name, "mode": "RGB", "source": list(size), "target": [96, 64], "filters": ["lanczos"]})


def main() -> None:
    rng = np.random.default_rng(SEED)
    tensors: dict[str, torch.Tensor] = {}
    cases = []
    for name, mode, source, target in CASES:
        pixels = random_image(rng, mode, source)
        image = as_pil(pixels, mode)
        tensors[f"{name}.input"] = torch.from_numpy(pixels)
        for filter_name, resample in FILTERS.items():
            resized = image.resize(target, resample=resample)
            assert resized.size == target and resized.mode == mode
            tensors[f"{name}.{filter_name}"] = as_tensor(resized, mode)
        cases.append({"name": name, "mode": mode, "source": list(source), "target": list(target), "filters": list(FILTERS)})
    diffusers_case(rng, tensors, cases)
    path = save_fixture(NAME, tensors, __file__, seed=SEED, cases=cases)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
