"""Golden fixtures for FLUX.1 Canny-dev / Depth-dev (BFL's "FLUX Tools") on a tiny random model.

Canny-dev and Depth-dev are FLUX.1-dev fine-tunes whose transformer takes, beside the packed noisy
latents (64 features a token), the packed latents of the control image (an edge or depth map, 64):
in_channels 128, out_channels 64. The control image is resized to the output size, VAE-encoded as a
posterior sample drawn from the generator before the start noise, and normalised. Runs diffusers'
FluxControlPipeline (and FluxControlImg2ImgPipeline, which starts from an init image part way along the schedule,
and FluxControlInpaintPipeline) with torch.Generator("cpu").manual_seed(seed) and writes:
  tests/fixtures/flux_control_pipeline/tiny_control/
      model_index.json (FluxControlPipeline), scheduler/ and transformer/ only: the text encoders and
      VAE are those of tests/fixtures/flux_pipeline/tiny_dev (checked bit-equal), passed separately
  tests/fixtures/flux_control_pipeline/flux_control_tiny_diffusers_<case>_control.png
      each case's control image (white edges on black, as a Canny map, RGB); ..._init.png, ..._mask.png the init
      image and mask (make_zimage_pipeline.make_inputs)
  tests/fixtures/flux_control_pipeline/flux_control_tiny_diffusers_<case>_<k>.png, ..._cases.json
      each case's uint8 output images, and the cases
"""

from __future__ import annotations

import os

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn; tiny_dev was built under it too
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from common import FIXTURES, save_case_images, write_cases  # noqa: E402
from make_flux_fill_pipeline import beside_dev_fields, conditioned_pipeline, save_beside_dev  # noqa: E402
from make_flux_pipeline import PROMPT, PROMPT_2, TRANSFORMER  # noqa: E402
from make_zimage_pipeline import make_inputs  # noqa: E402

SEED = 20261207
OUT = FIXTURES / "flux_control_pipeline"
CONTROL = OUT / "tiny_control"
PREFIX = "flux_control_tiny_diffusers"

# 16 latent channels (the tiny VAE, as the release's): 64 + 64.
CONTROL_TRANSFORMER = dict(TRANSFORMER, in_channels=128, out_channels=64)
# The control image's columns of x_embedder carry make_flux_fill_pipeline's CONDITION_GAIN, so the
# condition moves the output far more than the tests' tolerance.

CASES = [
    # The model cards' Canny settings but the step count: guidance 30; the control image at the output size.
    dict(name="control", prompt=PROMPT, control_size=(64, 48), width=64, height=48, steps=3, guidance=30.0,
         seed=3),
    # A batch of two (each its own posterior sample of the control image) with a separate T5 prompt, the
    # control image of another size (Lanczos-resized by the processor), Depth's guidance 10.
    dict(name="control_batch2_resized", prompt=PROMPT, prompt_2=PROMPT_2, control_size=(80, 56), width=64,
         height=48, steps=2, guidance=10.0, num_images=2, seed=8),
    # FluxControlImg2ImgPipeline: from an init image part way along the schedule, its default guidance (7), a
    # batch of two (the control image's samples, then the init image's, then the noise, from one generator).
    dict(name="control_img2img", pipeline="img2img", prompt=PROMPT, control_size=(64, 48), width=64, height=48,
         steps=4, strength=0.7, num_images=2, seed=5),
    # FluxControlInpaintPipeline: the masked picture's (unused) sample, the control image's, the init image's,
    # then the noise; the kept part blended back after every step.
    dict(name="control_inpaint", pipeline="inpaint", prompt=PROMPT, control_size=(64, 48), width=64, height=48,
         steps=4, strength=0.8, guidance=12.0, seed=6),
]


def make_control(size) -> Image.Image:
    """White one-pixel edges on black, as a Canny map: a circle's outline and a diagonal."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot(x - 0.6 * w, y - 0.45 * h)
    edges = (np.abs(r - 0.3 * h) < 0.7) | (np.abs(y - 0.7 * x) < 0.6)
    gray = np.where(edges, 255, 0).astype(np.uint8)
    return Image.fromarray(np.stack([gray] * 3, -1), "RGB")


def run_control_case(pipe, case: dict, kwargs: dict, init, mask, control_name: str, out, prefix: str) -> dict:
    """Runs a case of a control pipeline: its kind (case "pipeline": txt2img, img2img or inpaint) adds the init
    image, strength and mask to kwargs; saves the images and returns the case's entry for the cases file."""
    kind = case.get("pipeline", "txt2img")
    if kind != "txt2img":
        kwargs.update(image=init, strength=case["strength"])
    if kind == "inpaint":
        kwargs.update(mask_image=mask)
    images = pipe(**kwargs).images
    files = save_case_images(out, prefix, case["name"], images)
    entry = dict(case, control_image=control_name, expected=files)
    if kind != "txt2img":
        entry["init_image"] = f"{prefix}_init.png"
    if kind == "inpaint":
        entry["mask_image"] = f"{prefix}_mask.png"
    return entry


def main() -> None:
    from diffusers import FluxControlImg2ImgPipeline, FluxControlInpaintPipeline, FluxControlPipeline

    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    pipe = conditioned_pipeline(FluxControlPipeline, CONTROL_TRANSFORMER, SEED)
    save_beside_dev(pipe, OUT, CONTROL)
    pipes = {"txt2img": pipe, "img2img": FluxControlImg2ImgPipeline(**pipe.components),
             "inpaint": FluxControlInpaintPipeline(**pipe.components)}
    for p in pipes.values():
        p.set_progress_bar_config(disable=True)
    init, mask = make_inputs()
    init.save(OUT / f"{PREFIX}_init.png")
    mask.save(OUT / f"{PREFIX}_mask.png")

    entries = []
    for case in CASES:
        control = make_control(case["control_size"])
        control_name = f"{PREFIX}_{case['name']}_control.png"
        control.save(OUT / control_name)
        kwargs = dict(
            prompt=case["prompt"],
            prompt_2=case.get("prompt_2"),
            control_image=control,
            num_inference_steps=case["steps"],
            num_images_per_prompt=case.get("num_images", 1),
            generator=torch.Generator("cpu").manual_seed(case["seed"]),
            width=case["width"],
            height=case["height"],
            max_sequence_length=512,
            output_type="pil",
        )
        if "guidance" in case:  # else the pipeline's default
            kwargs["guidance_scale"] = case["guidance"]
        pipe = pipes[case.get("pipeline", "txt2img")]
        entries.append(run_control_case(pipe, case, kwargs, init, mask, control_name, OUT, PREFIX))

    write_cases(OUT, PREFIX, __file__, SEED, entries, **beside_dev_fields())


if __name__ == "__main__":
    main()
