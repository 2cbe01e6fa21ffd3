"""Golden fixtures for AUTOMATIC1111's "Masked content: fill" (its API's inpainting_fill 0, the default there).

A1111 paints the masked area over with its surroundings' colours before inpainting (modules/masking.py, fill): the
picture's unmasked pixels are pasted into a transparent premultiplied RGBa picture through the inverted mask, that
picture is blurred with ImageFilter.GaussianBlur at radii 256, 64, 16, 4, 2 and 0, and each blur is
alpha-composited over the ones before it (1, 1, 2, 4, 2 and 1 times); the result's RGB is the filled picture. The
function is restated below from A1111 (it is not on PyPI) and run with Pillow, the oracle of its arithmetic.

Writes tests/fixtures/masked_content/: the inputs and fills as PNG, and masked_content_cases.json listing them.
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from common import FIXTURES, fixture_metadata
from make_mask_crop import masks, picture

OUT = FIXTURES / "masked_content"


def a1111_fill(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's masking.fill (stable-diffusion-webui 1.10), restated."""
    image_mod = Image.new("RGBA", (image.width, image.height))
    image_masked = Image.new("RGBa", (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    image_masked = image_masked.convert("RGBa")
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        blurred = image_masked.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            image_mod.alpha_composite(blurred)
    return image_mod.convert("RGB")


def random_pair(width: int, height: int, seed: int) -> tuple[Image.Image, Image.Image]:
    """A random picture and a random RGB mask (every grey level, coloured so its luma matters)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB"), Image.fromarray(mask, "RGB")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("*"):
        stale.unlink()
    inputs: dict[str, Image.Image] = {"picture": picture()}
    for name, mask in masks().items():
        inputs[f"mask_{name}"] = mask
    # The blob softened as A1111 softens masks before filling (its mask blur), and every pixel masked.
    inputs["mask_blob_blurred"] = inputs["mask_blob"].filter(ImageFilter.GaussianBlur(4))
    inputs["mask_white"] = Image.new("L", inputs["picture"].size, 255)
    # A picture smaller than every box (radius 256 reaches past both borders many times).
    inputs["small_picture"], inputs["small_mask"] = random_pair(7, 5, 3)
    for name, image in inputs.items():
        image.convert("RGB").save(OUT / f"masked_content_{name}.png")

    cases = []
    for picture_name, mask_name in [("picture", "mask_blob"), ("picture", "mask_edge"), ("picture", "mask_thin"),
                                    ("picture", "mask_blob_blurred"), ("picture", "mask_white"),
                                    ("small_picture", "small_mask")]:
        # The mask as zflow reads it: the RGB file (an L mask saved as RGB is grey, luma unchanged).
        mask = Image.open(OUT / f"masked_content_{mask_name}.png")
        filled = a1111_fill(inputs[picture_name], mask)
        name = f"masked_content_fill_{picture_name}_{mask_name}.png"
        filled.save(OUT / name)
        cases.append({"picture": f"masked_content_{picture_name}.png", "mask": f"masked_content_{mask_name}.png",
                      "expected": name})
        print(name)
    payload = {"_meta": fixture_metadata(__file__), "fills": cases}
    (OUT / "masked_content_cases.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
