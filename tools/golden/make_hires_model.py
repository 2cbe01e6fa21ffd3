"""Golden hires-fix runs whose second pass is another model (AUTOMATIC1111's hr_checkpoint_name): a draft made by
one family repainted by the other, diffusers' pipelines chained as A1111 chains the passes.

Z-Image was trained on FLUX.1's autoencoder, so its latents are FLUX.1's: with a latent upscaler the tiny Z-Image
pipeline's latents (output_type="latent") are resized by torch.nn.functional.interpolate and FluxImg2ImgPipeline
repaints from them as they are; with Lanczos the tiny FLUX.1-dev pipeline's 8-bit picture is resized by Pillow and
ZImageImg2ImgPipeline repaints it. The second pass runs with its img2img pipeline's defaults (FluxImg2ImgPipeline's
guidance 7) unless the case sets its own prompt, negative prompt, CFG scale or guidance (hr_prompt,
hr_negative_prompt, Forge's hr_cfg / hr_distilled_cfg); image k of a batch is repainted alone with seed + k. On the
tiny Z-Image and FLUX.1-dev folders (make_zimage_pipeline.py, make_flux_pipeline.py).

Writes tests/fixtures/hires_model/: each case's final 8-bit outputs and hires_model_cases.json.

Run: ~/.venvs/zflow-golden/bin/python tools/golden/make_hires_model.py
"""

from __future__ import annotations

import shutil

import torch
from diffusers import FluxImg2ImgPipeline, ZImageImg2ImgPipeline
from PIL import Image

from common import FIXTURES, write_cases
from make_latent_hires_fix import resized_latents
from make_latent_upscale import MODES
from make_sampler_pipelines import load_flux, load_zimage

OUT = FIXTURES / "hires_model"
PREFIX = "hires_model"

CASES = [
    dict(name="zimage_to_flux_latent", family="zimage", prompt="a red fox sitting in fresh snow, morning light",
         guidance=0.0, steps=4, seed=42, width=32, height=32, hires_width=64, hires_height=48, hires_strength=0.6,
         hires_steps=4, hires_prompt="a red fox in fresh snow, detailed fur, soft light", upscaler="Latent"),
    dict(name="flux_to_zimage_lanczos_batch2", family="flux", prompt="a cabin by a lake at dusk", guidance=3.5,
         steps=3, seed=5, width=32, height=32, num_images=2, hires_width=48, hires_height=48, hires_strength=0.5,
         hires_steps=4, hires_cfg_scale=4.0, hires_negative_prompt="blurry, low quality", upscaler="lanczos"),
]


def main() -> None:
    torch.set_num_threads(1)
    zimage = load_zimage()
    zimage_img2img = ZImageImg2ImgPipeline(**zimage.components)
    flux = load_flux()
    flux_img2img = FluxImg2ImgPipeline(**flux.components)
    for pipe in (zimage, zimage_img2img, flux, flux_img2img):
        pipe.set_progress_bar_config(disable=True)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    entries = []
    for case in CASES:
        first_flux = case["family"] == "flux"
        txt2img, img2img = (flux, zimage_img2img) if first_flux else (zimage, flux_img2img)
        latent = case["upscaler"] in MODES
        drafts = txt2img(prompt=case["prompt"], guidance_scale=case["guidance"], width=case["width"],
                         height=case["height"], num_inference_steps=case["steps"],
                         num_images_per_prompt=case.get("num_images", 1), output_type="latent" if latent else "pil",
                         generator=torch.Generator("cpu").manual_seed(case["seed"])).images
        # The second model's own arguments: its defaults where the case sets nothing.
        second = dict(prompt=case.get("hires_prompt", case["prompt"]), strength=case["hires_strength"],
                      num_inference_steps=case["hires_steps"], width=case["hires_width"],
                      height=case["hires_height"])
        for key, arg in (("hires_cfg_scale", "guidance_scale"), ("hires_guidance", "guidance_scale"),
                         ("hires_negative_prompt", "negative_prompt")):
            if key in case:
                second[arg] = case[key]
        files = []
        for k in range(len(drafts)):
            image = (resized_latents(drafts, k, case) if latent
                     else drafts[k].resize((case["hires_width"], case["hires_height"]), Image.LANCZOS))
            final = img2img(image=image, generator=torch.Generator("cpu").manual_seed(case["seed"] + k),
                            **second).images[0]
            assert final.size == (case["hires_width"], case["hires_height"])
            name = f"{PREFIX}_{case['name']}_{k}.png"
            final.save(OUT / name)
            files.append(name)
            print(f"{case['name']}[{k}]: -> {final.size}")
        entries.append(dict(case, expected=files))

    write_cases(OUT, PREFIX, __file__, None, entries, zimage_model="zimage_pipeline/tiny",
                flux_model="flux_pipeline/tiny_dev")


if __name__ == "__main__":
    main()
