"""Golden AUTOMATIC1111 inpainting overlays: how A1111 lays the original picture back over a whole-picture inpaint.

StableDiffusionProcessingImg2Img (modules/processing.py) rounds the mask first (create_binary_mask with mask_round:
grey above 128 white), inverts it for "Inpaint not masked", blurs it, then doubles it for the overlay
(mask_for_overlay = clip(2 * mask, 0, 255)); the original is pasted into a transparent RGBa picture through the
inverse of that and alpha-composited over the decoded result (apply_overlay). Restated here on Pillow 13, with the
blur Pillow's GaussianBlur, as zflow softens masks (A1111 blurs with OpenCV). On mask_crop's picture and soft masks
(make_mask_crop.py) and a made-up result (the picture turned half round).

Writes tests/fixtures/inpaint_overlay/: each case's prepared mask and overlay, inpaint_overlay_cases.json.

Run: ~/.venvs/zflow-golden/bin/python tools/golden/make_inpaint_overlay.py
"""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from common import FIXTURES, fixture_metadata

OUT = FIXTURES / "inpaint_overlay"
CROP = FIXTURES / "mask_crop"

CASES = [
    dict(name="blob_soft", mask="blob", round=False, invert=False, blur=0),
    dict(name="blob_round", mask="blob", round=True, invert=False, blur=0),
    dict(name="blob_round_blur4", mask="blob", round=True, invert=False, blur=4.0),
    dict(name="edge_round_invert_blur2.5", mask="edge", round=True, invert=True, blur=2.5),
    dict(name="thin_soft_blur1", mask="thin", round=False, invert=False, blur=1.0),
]


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    picture = Image.open(CROP / "mask_crop_picture.png").convert("RGB")
    generated = picture.rotate(180)
    generated.save(OUT / "inpaint_overlay_generated.png")
    entries = []
    for case in CASES:
        mask = Image.open(CROP / f"mask_crop_mask_{case['mask']}.png").convert("L")
        if case["round"]:
            mask = mask.point(lambda x: 255 if x > 128 else 0)
        if case["invert"]:
            mask = ImageOps.invert(mask)
        if case["blur"]:
            mask = mask.filter(ImageFilter.GaussianBlur(case["blur"]))
        for_overlay = Image.fromarray(np.clip(np.array(mask).astype(np.float32) * 2, 0, 255).astype(np.uint8))
        masked = Image.new("RGBa", picture.size)
        masked.paste(picture.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(for_overlay.convert("L")))
        result = generated.convert("RGBA")
        result.alpha_composite(masked.convert("RGBA"))
        result = result.convert("RGB")
        mask.save(OUT / f"inpaint_overlay_{case['name']}_mask.png")
        result.save(OUT / f"inpaint_overlay_{case['name']}.png")
        entries.append(case)
        kept = (np.array(for_overlay) == 0).mean()
        print(f"{case['name']}: the original wholly kept on {kept:.0%} of the picture")
    payload = {"_meta": fixture_metadata(__file__, None), "cases": entries}
    (OUT / "inpaint_overlay_cases.json").write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
