"""Golden hires-fix runs with AUTOMATIC1111's latent upscalers: diffusers' pipelines chained as A1111 chains them.

The first pass keeps its latents (output_type="latent"; FLUX.1's unpacked to [B, 16, h, w] by the pipeline's own
_unpack_latents), torch.nn.functional.interpolate resizes them to the hires grid with the upscaler's mode and
antialias flag (A1111's shared.latent_upscale_modes, modules/processing.py sample_hr_pass), and the img2img pipeline
repaints from them (diffusers takes latents passed as its image as they are, without encoding or drawing a posterior
sample); image k of a batch alone with seed + k. ZImageImg2ImgPipeline's image processor is built without
vae_latent_channels, so it would take 16-channel latents for a picture: the script gives it the latent channel count
FluxImg2ImgPipeline's processor has. On the tiny Z-Image and FLUX.1-dev folders (make_zimage_pipeline.py,
make_flux_pipeline.py).

Writes tests/fixtures/latent_hires_fix/: each case's final 8-bit outputs and latent_hires_fix_cases.json.
"""

from __future__ import annotations

import shutil

import torch
from diffusers import FluxImg2ImgPipeline, ZImageImg2ImgPipeline

from common import FIXTURES, write_cases
from make_latent_upscale import MODES
from make_sampler_pipelines import load_flux, load_zimage

OUT = FIXTURES / "latent_hires_fix"
PREFIX = "latent_hires_fix"

CASES = [
    dict(name="zimage_latent", family="zimage", prompt="a red fox sitting in fresh snow, morning light",
         guidance=0.0, steps=4, seed=42, width=32, height=32, hires_width=64, hires_height=48, hires_strength=0.6,
         upscaler="Latent"),
    dict(name="zimage_bicubic_aa_batch2", family="zimage", prompt="a lighthouse in a storm, oil painting",
         negative_prompt="blurry, low quality", guidance=4.0, steps=4, seed=7, width=48, height=32, num_images=2,
         hires_width=80, hires_height=48, hires_strength=0.5, hires_steps=6, upscaler="Latent (bicubic antialiased)"),
    dict(name="flux_nearest_exact", family="flux", prompt="a cabin by a lake at dusk", guidance=3.5, steps=3,
         seed=5, width=32, height=32, hires_width=64, hires_height=64, hires_strength=0.7,
         upscaler="Latent (nearest-exact)"),
]


def resized_latents(latents: torch.Tensor, k: int, case: dict) -> torch.Tensor:
    """Image k's latents brought to the case's hires grid by its A1111 latent upscaler, as A1111's sample_hr_pass."""
    cell = case["width"] // latents.shape[-1]
    mode, antialias = MODES[case["upscaler"]]
    return torch.nn.functional.interpolate(latents[k : k + 1], size=(case["hires_height"] // cell,
                                                                     case["hires_width"] // cell),
                                           mode=mode, antialias=antialias)


def main() -> None:
    torch.set_num_threads(1)
    zimage = load_zimage()
    zimage_img2img = ZImageImg2ImgPipeline(**zimage.components)
    zimage_img2img.image_processor.register_to_config(vae_latent_channels=zimage.vae.config.latent_channels)
    flux = load_flux()
    flux_img2img = FluxImg2ImgPipeline(**flux.components)
    for pipe in (zimage, zimage_img2img, flux, flux_img2img):
        pipe.set_progress_bar_config(disable=True)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    entries = []
    for case in CASES:
        is_flux = case["family"] == "flux"
        txt2img, img2img = (flux, flux_img2img) if is_flux else (zimage, zimage_img2img)
        common = dict(prompt=case["prompt"], guidance_scale=case["guidance"])
        if not is_flux:
            common["negative_prompt"] = case.get("negative_prompt")
        latents = txt2img(width=case["width"], height=case["height"], num_inference_steps=case["steps"],
                          num_images_per_prompt=case.get("num_images", 1), output_type="latent",
                          generator=torch.Generator("cpu").manual_seed(case["seed"]), **common).images
        if is_flux:
            latents = txt2img._unpack_latents(latents, case["height"], case["width"], txt2img.vae_scale_factor)
        files = []
        for k in range(latents.shape[0]):
            big = resized_latents(latents, k, case)
            final = img2img(image=big, width=case["hires_width"], height=case["hires_height"],
                            strength=case["hires_strength"], num_inference_steps=case.get("hires_steps", case["steps"]),
                            generator=torch.Generator("cpu").manual_seed(case["seed"] + k), **common).images[0]
            assert final.size == (case["hires_width"], case["hires_height"])
            name = f"{PREFIX}_{case['name']}_{k}.png"
            final.save(OUT / name)
            files.append(name)
            print(f"{case['name']}[{k}]: latents {tuple(latents.shape[-2:])} -> {tuple(big.shape[-2:])}")
        entries.append(dict(case, expected=files))

    write_cases(OUT, PREFIX, __file__, None, entries, zimage_model="zimage_pipeline/tiny",
                flux_model="flux_pipeline/tiny_dev")


if __name__ == "__main__":
    main()
