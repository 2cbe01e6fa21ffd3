"""Golden hires-fix runs: diffusers' pipelines chained as AUTOMATIC1111's hires fix chains its passes.

On the tiny Z-Image pipeline (make_zimage_pipeline.py's folder, loaded as make_sampler_pipelines.py
loads it): ZImagePipeline makes the picture at the first size, Pillow resizes the 8-bit result to
the hires size (LANCZOS, or NEAREST), and ZImageImg2ImgPipeline repaints it there at the hires
strength; image k of a batch is repainted alone with seed + k (A1111 seeds a batch's images
seed + k). With an ESRGAN upscaler (make_esrgan.py's tiny 4x network, loaded by spandrel), the
8-bit picture goes through it as A1111's upscalers take it (v / 255, clamp(0, 1) * 255 rounded
half to even), once, as that covers the hires size, and Pillow's LANCZOS brings the result to it.

Writes tests/fixtures/hires_fix/: each case's first pictures, upscaled pictures and final 8-bit
outputs, and hires_fix_cases.json.

Run: ~/.venvs/zflow-golden/bin/python tools/golden/make_hires_fix.py
"""

from __future__ import annotations

import shutil

import torch
from diffusers import ZImageImg2ImgPipeline
from PIL import Image

from common import FIXTURES, write_cases
from make_sampler_pipelines import load_zimage

OUT = FIXTURES / "hires_fix"
PREFIX = "hires_fix"
FILTERS = {"lanczos": Image.LANCZOS, "nearest": Image.NEAREST}
ESRGAN = FIXTURES / "esrgan" / "esrgan_x4_basicsr.safetensors"

CASES = [
    dict(name="turbo_2x", prompt="a red fox sitting in fresh snow, morning light", guidance=0.0, steps=4,
         seed=42, width=32, height=32, hires_width=64, hires_height=64, hires_strength=0.6, upscaler="lanczos"),
    dict(name="cfg_batch2_nearest", prompt="a lighthouse in a storm, oil painting",
         negative_prompt="blurry, low quality", guidance=4.0, steps=4, seed=7, width=48, height=32, num_images=2,
         hires_width=80, hires_height=48, hires_strength=0.5, hires_steps=6, upscaler="nearest"),
    dict(name="turbo_esrgan", prompt="a red fox sitting in fresh snow, morning light", guidance=0.0, steps=4,
         seed=42, width=32, height=32, hires_width=64, hires_height=48, hires_strength=0.6,
         upscaler="esrgan/esrgan_x4_basicsr.safetensors"),
]


def esrgan_upscaled(picture: Image.Image, width: int, height: int) -> Image.Image:
    import numpy as np
    from safetensors.torch import load_file
    from spandrel import ModelLoader

    model = ModelLoader().load_from_state_dict(load_file(ESRGAN)).model.float().eval()
    x = torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = model(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    big = Image.fromarray((y * 255.0).round().astype(np.uint8))
    assert big.width >= width and big.height >= height  # one pass covers the hires size
    return big.resize((width, height), Image.LANCZOS)


def main() -> None:
    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    txt2img = load_zimage()
    img2img = ZImageImg2ImgPipeline(**txt2img.components)
    for pipe in (txt2img, img2img):
        pipe.set_progress_bar_config(disable=True)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    entries = []
    for case in CASES:
        common = dict(prompt=case["prompt"], negative_prompt=case.get("negative_prompt"),
                      guidance_scale=case["guidance"], output_type="pil")
        drafts = txt2img(width=case["width"], height=case["height"], num_inference_steps=case["steps"],
                         num_images_per_prompt=case.get("num_images", 1),
                         generator=torch.Generator("cpu").manual_seed(case["seed"]), **common).images
        files = []
        for k, draft in enumerate(drafts):
            size = (case["hires_width"], case["hires_height"])
            upscaled = (draft.resize(size, FILTERS[case["upscaler"]]) if case["upscaler"] in FILTERS
                        else esrgan_upscaled(draft, *size))
            final = img2img(image=upscaled, strength=case["hires_strength"],
                            num_inference_steps=case.get("hires_steps", case["steps"]),
                            generator=torch.Generator("cpu").manual_seed(case["seed"] + k), **common).images[0]
            assert final.size == (case["hires_width"], case["hires_height"])
            for what, im in (("draft", draft), ("upscaled", upscaled), ("final", final)):
                im.save(OUT / f"{PREFIX}_{case['name']}_{what}_{k}.png")
            files.append(f"{PREFIX}_{case['name']}_final_{k}.png")
            print(f"{case['name']}[{k}]: {draft.size} -> {final.size}")
        entries.append(dict(case, expected=files))

    write_cases(OUT, PREFIX, __file__, None, entries, model="zimage_pipeline/tiny")


if __name__ == "__main__":
    main()
