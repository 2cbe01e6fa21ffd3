"""Golden fixtures for inpainting only the masked area (diffusers' padding_mask_crop; AUTOMATIC1111's "Only masked").

The pipelines that take padding_mask_crop find the rectangle holding every non-zero mask pixel, widen it by the padding
and then to the output's aspect ratio (VaeImageProcessor.get_crop_region), crop the picture and the mask to it and
resize them to the output size keeping the aspect ratio, filling any rest with stretched edge rows or columns
(resize_mode "fill"), inpaint that, and paste the result back into the whole picture through the mask
(VaeImageProcessor.apply_overlay: Pillow's RGBa paste and alpha_composite). Writes tests/fixtures/mask_crop/:
  mask_crop_picture.png, mask_crop_mask_<name>.png           the inputs (100x72; soft-edged masks)
  mask_crop_steps.json + mask_crop_<case>_{image,mask,overlay}.png, mask_crop_generated_<case>.png
      the processor's steps on their own: each case's crop box, the cropped-and-filled picture and mask, and the
      overlay of a made-up generated image
  mask_crop_blur_<source>_<radius>.png      ImageFilter.GaussianBlur (VaeImageProcessor.blur) of masks and the picture
  mask_crop_<pipeline case>_<k>.png, mask_crop_cases.json
      FluxInpaintPipeline on the tiny FLUX.1 dev model (make_flux_pipeline.py) with padding_mask_crop, and
      Flux2KleinInpaintPipeline on tiny_klein (make_flux2_pipeline.py): outputs at the whole picture's size

Flux2KleinInpaintPipeline's own padding_mask_crop pastes back a centre crop of its output without resizing it
(Flux2ImageProcessor._resize_and_crop only crops), so the inpainted box lands at the wrong scale; zflow pastes back
as FluxInpaintPipeline does for every model. The klein case is therefore built from diffusers' pieces: the klein
inpainting pipeline on the cropped-and-filled picture and mask, pasted back by VaeImageProcessor.apply_overlay.
"""

from __future__ import annotations

import json
import os

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn; the tiny models' cases were made under it too
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from common import FIXTURES, fixture_metadata  # noqa: E402

OUT = FIXTURES / "mask_crop"
W, H = 100, 72

# Processor steps: (mask, output width, output height, padding). "blob" is inside the picture; "edge" touches the
# right and bottom borders, so the widened box is pushed back inside; 64x48 vs 48x64 vs 32x32 exercise both
# widening directions and the edge-row fill when the box's ratio cannot match exactly.
STEPS = [
    dict(name="blob_64x48_pad8", mask="blob", width=64, height=48, pad=8),
    dict(name="blob_48x64_pad0", mask="blob", width=48, height=64, pad=0),
    dict(name="edge_64x48_pad12", mask="edge", width=64, height=48, pad=12),
    dict(name="edge_96x64_pad12", mask="edge", width=96, height=64, pad=12),
    dict(name="edge_32x32_pad3", mask="edge", width=32, height=32, pad=3),
    dict(name="thin_64x48_pad2", mask="thin", width=64, height=48, pad=2),
]

# Masks softened as diffusers' VaeImageProcessor.blur does it (ImageFilter.GaussianBlur), and the picture itself:
# radii below one box pixel, typical, fractional, and larger than the image.
BLURS = [("blob", 4.0), ("blob", 0.7), ("edge", 2.5), ("thin", 33.0), ("picture", 3.0)]

CASES = [
    dict(name="flux1_inpaint", pipeline="flux1", mask="blob", width=64, height=48, pad=8, steps=3, strength=0.9,
         guidance=3.5, seed=5),
    # The mask softened first with mask_processor.blur, as diffusers' docs suggest.
    dict(name="flux1_inpaint_blur", pipeline="flux1", mask="blob", blur=4.0, width=64, height=48, pad=8, steps=3,
         strength=0.9, guidance=3.5, seed=5),
    # Flux2KleinInpaintPipeline inpaints at the picture's size rounded down to whole tokens (96x64).
    dict(name="flux2_inpaint", pipeline="flux2", mask="edge", pad=12, steps=3, strength=0.9, seed=6),
]


def picture() -> Image.Image:
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    img = np.stack([255 * x / (W - 1), 255 * y / (H - 1), 128 + 100 * np.sin(x / 7 + y / 5)], -1)
    img[(x - 70) ** 2 + (y - 30) ** 2 < 14 ** 2] = [240, 220, 40]
    return Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")


def masks() -> dict[str, Image.Image]:
    """Soft-edged masks: 255 inside, a ramp of mid values at the edge, 0 outside."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)

    def soft(distance: np.ndarray) -> Image.Image:
        return Image.fromarray(np.clip(np.round(255 * (1 - distance / 4)), 0, 255).astype(np.uint8), "L")

    blob = np.hypot((x - 38) / 1.4, y - 30) - 9
    edge = np.maximum(88 - x, 58 - y)
    thin = np.where((y >= 40) & (y < 43), np.abs(x - 50) - 20, 99.0)
    return {"blob": soft(blob), "edge": soft(edge), "thin": soft(thin)}


def generated(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def processor_steps(image: Image.Image, mask_images: dict[str, Image.Image]) -> list[dict]:
    from diffusers.image_processor import VaeImageProcessor

    processor = VaeImageProcessor(vae_scale_factor=16)
    mask_processor = VaeImageProcessor(vae_scale_factor=16, do_normalize=False, do_binarize=True,
                                       do_convert_grayscale=True)
    entries = []
    for k, step in enumerate(STEPS):
        mask = mask_images[step["mask"]]
        box = mask_processor.get_crop_region(mask, step["width"], step["height"], pad=step["pad"])
        # preprocess(..., crops_coords=box, resize_mode="fill") before its tensor conversion.
        cropped = processor.resize(image.crop(box), step["height"], step["width"], resize_mode="fill")
        cropped_mask = mask_processor.convert_to_grayscale(
            mask_processor.resize(mask.crop(box), step["height"], step["width"], resize_mode="fill"))
        made = generated(step["width"], step["height"], k)
        overlay = processor.apply_overlay(mask, image, made, box)
        names = {what: f"mask_crop_{step['name']}_{what}.png" for what in ("cropped_image", "cropped_mask", "overlay")}
        cropped.save(OUT / names["cropped_image"])
        cropped_mask.save(OUT / names["cropped_mask"])
        overlay.save(OUT / names["overlay"])
        made.save(OUT / f"mask_crop_generated_{step['name']}.png")
        entries.append(dict(step, box=list(box), generated=f"mask_crop_generated_{step['name']}.png", **names))
        print(f"{step['name']}: box {box}")
    return entries


def blurs(image: Image.Image, mask_images: dict[str, Image.Image]) -> list[dict]:
    from PIL import ImageFilter

    entries = []
    for source, radius in BLURS:
        src = image if source == "picture" else mask_images[source]
        name = f"mask_crop_blur_{source}_{radius:g}.png"
        src.filter(ImageFilter.GaussianBlur(radius)).save(OUT / name)
        entries.append(dict(source="mask_crop_picture.png" if source == "picture" else f"mask_crop_mask_{source}.png",
                            radius=radius, expected=name))
    return entries


def run_pipelines(image: Image.Image, mask_images: dict[str, Image.Image]) -> list[dict]:
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinInpaintPipeline, FluxInpaintPipeline

    import make_flux2_pipeline
    import make_flux_pipeline

    flux1 = make_flux_pipeline.build_pipelines()["dev"]
    klein = make_flux2_pipeline.build_pipelines()["tiny_klein"]
    pipes = {
        "flux1": FluxInpaintPipeline(**flux1.components),
        "flux2": Flux2KleinInpaintPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**make_flux2_pipeline.SCHEDULER),
                                           vae=klein.vae, text_encoder=klein.text_encoder, tokenizer=klein.tokenizer,
                                           transformer=klein.transformer, is_distilled=True),
    }
    from diffusers.image_processor import VaeImageProcessor

    processor = VaeImageProcessor(vae_scale_factor=16)
    entries = []
    for case in CASES:
        pipe = pipes[case["pipeline"]]
        pipe.set_progress_bar_config(disable=True)
        mask = mask_images[case["mask"]]
        if "blur" in case:
            mask = processor.blur(mask, case["blur"])
        kwargs = dict(prompt=make_flux_pipeline.PROMPT, num_inference_steps=case["steps"], strength=case["strength"],
                      generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="pil")
        if "guidance" in case:
            kwargs["guidance_scale"] = case["guidance"]
        with torch.no_grad():
            if case["pipeline"] == "flux1":
                images = pipe(image=image, mask_image=mask, width=case["width"], height=case["height"],
                              padding_mask_crop=case["pad"], **kwargs).images
            else:  # klein inpaints at the picture's size rounded down to whole tokens
                width, height = image.width // 16 * 16, image.height // 16 * 16
                box = processor.get_crop_region(mask, width, height, pad=case["pad"])
                cropped = processor.resize(image.crop(box), height, width, resize_mode="fill")
                cropped_mask = processor.resize(mask.crop(box), height, width, resize_mode="fill").convert("L")
                images = [processor.apply_overlay(mask, image, im, box)
                          for im in pipe(image=cropped, mask_image=cropped_mask, **kwargs).images]
        files = []
        for k, im in enumerate(images):
            name = f"mask_crop_{case['name']}_{k}.png"
            im.save(OUT / name)
            files.append(name)
            print(f"{case['name']}[{k}]: {im.size}")
        entries.append(dict(case, prompt=make_flux_pipeline.PROMPT, expected=files))
    return entries


def main() -> None:
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("*"):
        stale.unlink()
    image = picture()
    image.save(OUT / "mask_crop_picture.png")
    mask_images = masks()
    for name, mask in mask_images.items():
        mask.save(OUT / f"mask_crop_mask_{name}.png")
    steps = processor_steps(image, mask_images)
    blurred = blurs(image, mask_images)
    cases = run_pipelines(image, mask_images)
    payload = {
        "_meta": fixture_metadata(__file__, None, torch_cpu_capability=torch.backends.cpu.get_cpu_capability()),
        "picture": "mask_crop_picture.png",
        "masks": {name: f"mask_crop_mask_{name}.png" for name in mask_images},
        "steps": steps,
        "blurs": blurred,
        "cases": cases,
        "flux1_model": "flux_pipeline/tiny_dev",
        "flux2_model": "flux2_pipeline/tiny_klein",
    }
    (OUT / "mask_crop_cases.json").write_text(json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
