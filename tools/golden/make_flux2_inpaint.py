"""Golden fixtures for FLUX.2 klein inpainting (and img2img as inpainting under a white mask) on the tiny random
klein model of make_flux2_pipeline.py.

Rebuilds that script's components (same seed, so the same weights as tests/fixtures/flux2_pipeline/tiny_klein*,
checked below), wraps them in diffusers' Flux2KleinInpaintPipeline (distilled and base) with the REAL Qwen3
tokenizer, runs it with torch.Generator("cpu").manual_seed(seed) and writes to tests/fixtures/flux2_pipeline/:
  flux2_inpaint_tiny_diffusers_<input>.png   the init images and masks the cases pass (PNG, lossless)
  flux2_inpaint_tiny_diffusers_<case>_<k>.png each case's uint8 output images (a case with "crop": [x, y, w, h]
                                              keeps that part)
  flux2_inpaint_tiny_diffusers_cases.json     every case's request and expected files, the torch CPU capability
Cases: the default strength (0.8) over 4 steps (the whole schedule), a strength that cuts it, a mask whose edges
cut latent tokens (fractional mask cells), the base model with CFG and two images, a white mask (img2img), and an
init image past 1024^2 pixels (resized, then fitted to whole tokens) with a mask of its raw size and a reference
image (t = 20, after the init image's t = 10).
"""

from __future__ import annotations

import json
import os

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # as make_flux2_pipeline.py: zflow's default randn

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from common import fixture_metadata  # noqa: E402
from make_flux2_pipeline import OUT, PROMPT, PROMPT_2, SCHEDULER, build_pipelines, make_references  # noqa: E402

PREFIX = "flux2_inpaint_tiny_diffusers"


def make_inputs() -> dict:
    refs = make_references()
    w, h = refs["ref_a"].size  # 80 x 64

    def mask(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
        m = np.zeros((height, width), np.uint8)
        x0, y0, x1, y1 = box
        m[y0:y1, x0:x1] = 255
        return Image.fromarray(m, "L").convert("RGB")

    large = refs["ref_large"]  # 1040 x 1100
    return {
        "init_a": refs["ref_a"],
        "mask_tokens": mask(w, h, (16, 16, 48, 48)),  # whole 16-pixel tokens
        "mask_edges": mask(w, h, (10, 5, 61, 40)),  # cuts tokens: fractional cells
        "mask_white": mask(w, h, (0, 0, w, h)),
        "init_b": refs["ref_c"],  # 100 x 72: resized (not cropped) to 96 x 64
        "mask_b": mask(100, 72, (30, 10, 90, 60)),
        "init_large": large,
        "mask_large": mask(large.width, large.height, (300, 200, 800, 900)),
        "ref_a": refs["ref_b"],
    }


CASES = [
    dict(name="inpaint", model="tiny_klein", prompt=PROMPT, init="init_a", mask="mask_tokens", steps=4, seed=31),
    dict(name="inpaint_cut", model="tiny_klein", prompt=PROMPT_2, init="init_a", mask="mask_edges", steps=3,
         strength=0.6, seed=32),
    dict(name="inpaint_base", model="tiny_klein_base", prompt=PROMPT, init="init_b", mask="mask_b", steps=3,
         strength=0.7, guidance=4.0, num_images=2, seed=33),
    dict(name="img2img", model="tiny_klein", prompt=PROMPT, init="init_a", mask="mask_white", steps=4, strength=0.5,
         seed=34),
    # Its 992 x 1040 output is kept as a 160 x 160 crop across the mask's corner (1.6 MB whole).
    dict(name="inpaint_large", model="tiny_klein", prompt=PROMPT_2, init="init_large", mask="mask_large", steps=2,
         strength=0.9, seed=35, reference="ref_a", crop=[200, 110, 160, 160]),
]


def main() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinInpaintPipeline
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    pipes = {}
    for model, pipe in build_pipelines().items():
        saved = load_file(str(OUT / model / "transformer" / "diffusion_pytorch_model.safetensors"))
        for name, p in pipe.transformer.state_dict().items():
            assert torch.equal(saved[name].float(), p.float()), f"{model} {name}: rebuilt weights differ"
        pipes[model] = Flux2KleinInpaintPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER), vae=pipe.vae, text_encoder=pipe.text_encoder,
            tokenizer=pipe.tokenizer, transformer=pipe.transformer, is_distilled=pipe.config.is_distilled)
        pipes[model].set_progress_bar_config(disable=True)

    inputs = make_inputs()
    for stale in OUT.glob(f"{PREFIX}_*"):
        stale.unlink()
    for name, im in inputs.items():
        im.save(OUT / f"{PREFIX}_{name}.png")
    cases = []
    for case in CASES:
        outputs = pipes[case["model"]](
            image=inputs[case["init"]], mask_image=inputs[case["mask"]],
            image_reference=inputs[case["reference"]] if "reference" in case else None, prompt=case["prompt"],
            num_inference_steps=case["steps"], strength=case.get("strength", 0.8),
            guidance_scale=case.get("guidance", 4.0), num_images_per_prompt=case.get("num_images", 1),
            generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="pil").images
        files = []
        for k, im in enumerate(outputs):
            name = f"{PREFIX}_{case['name']}_{k}.png"
            if "crop" in case:
                x, y, w, h = case["crop"]
                im = im.crop((x, y, x + w, y + h))
            im.save(OUT / name)
            files.append(name)
            print(f"{case['name']}[{k}]: {im.size}, mean {np.asarray(im).mean():.1f}")
        entry = dict(case, expected=files, init=f"{PREFIX}_{case['init']}.png", mask=f"{PREFIX}_{case['mask']}.png")
        if "reference" in case:
            entry["reference"] = f"{PREFIX}_{case['reference']}.png"
        cases.append(entry)
    payload = {
        "_meta": fixture_metadata(__file__, None, torch_cpu_capability=torch.backends.cpu.get_cpu_capability()),
        "tokenizer": "../shared/assets/qwen3_tokenizer",
        "cases": cases,
    }
    (OUT / f"{PREFIX}_cases.json").write_text(json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases")


if __name__ == "__main__":
    main()
