"""Golden hires fix with a ControlNet: diffusers' FLUX.1 ControlNet pipelines chained as AUTOMATIC1111's hires fix
chains its passes when its ControlNet extension is on (the control image steers both passes, each resizing it to
its own size).

On tiny_dev with make_flux_controlnet_pipeline.py's Union ControlNet (mode 2, scale 0.7; 16 T5 tokens, as its
Union cases): FluxControlNetPipeline makes the picture at the first size from the control image, Pillow's LANCZOS
resizes the 8-bit result to the hires size, and FluxControlNetImg2ImgPipeline repaints it there at the hires
strength with the same control image; image k of a batch is repainted alone with seed + k.

Writes tests/fixtures/hires_fix_controlnet/: the control image, each case's first, upscaled and final 8-bit
pictures, and hires_fix_controlnet_cases.json.

Run: ~/.venvs/zflow-golden/bin/python tools/golden/make_hires_fix_controlnet.py
"""

from __future__ import annotations

import os

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn, as the other FLUX goldens
import shutil  # noqa: E402

import torch  # noqa: E402
from diffusers import FluxControlNetImg2ImgPipeline, FluxControlNetModel, FluxControlNetPipeline  # noqa: E402
from PIL import Image  # noqa: E402

from common import FIXTURES, write_cases  # noqa: E402
from make_flux_control_pipeline import make_control  # noqa: E402
from make_sampler_pipelines import load_flux  # noqa: E402

OUT = FIXTURES / "hires_fix_controlnet"
PREFIX = "hires_fix_controlnet"
CONTROLNET = FIXTURES / "flux_controlnet_pipeline" / "union"
CONTROL_SIZE = (64, 48)

CASES = [
    dict(name="union_batch2", prompt="a glass teapot on a wooden table", mode=2, scale=0.7, guidance=3.5, steps=3,
         seed=11, width=48, height=32, num_images=2, hires_width=64, hires_height=48, hires_strength=0.6,
         max_sequence_length=16),
]


def main() -> None:
    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    dev = load_flux()
    controlnet = FluxControlNetModel.from_pretrained(str(CONTROLNET), torch_dtype=torch.float32)
    parts = {k: dev.components[k] for k in ("scheduler", "transformer", "vae", "text_encoder", "text_encoder_2",
                                             "tokenizer", "tokenizer_2")}
    txt2img = FluxControlNetPipeline(controlnet=controlnet, **parts)
    img2img = FluxControlNetImg2ImgPipeline(controlnet=controlnet, **parts)
    for pipe in (txt2img, img2img):
        pipe.set_progress_bar_config(disable=True)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    control = make_control(CONTROL_SIZE)
    control_name = f"{PREFIX}_control.png"
    control.save(OUT / control_name)

    entries = []
    for case in CASES:
        common = dict(prompt=case["prompt"], control_image=control, control_mode=case["mode"],
                      controlnet_conditioning_scale=case["scale"], guidance_scale=case["guidance"],
                      num_inference_steps=case["steps"], max_sequence_length=case["max_sequence_length"],
                      output_type="pil")
        drafts = txt2img(width=case["width"], height=case["height"], num_images_per_prompt=case["num_images"],
                         generator=torch.Generator("cpu").manual_seed(case["seed"]), **common).images
        files = []
        for k, draft in enumerate(drafts):
            size = (case["hires_width"], case["hires_height"])
            upscaled = draft.resize(size, Image.LANCZOS)
            final = img2img(image=upscaled, strength=case["hires_strength"], width=size[0], height=size[1],
                            generator=torch.Generator("cpu").manual_seed(case["seed"] + k), **common).images[0]
            assert final.size == size
            for what, im in (("draft", draft), ("upscaled", upscaled), ("final", final)):
                im.save(OUT / f"{PREFIX}_{case['name']}_{what}_{k}.png")
            files.append(f"{PREFIX}_{case['name']}_final_{k}.png")
            print(f"{case['name']}[{k}]: {draft.size} -> {final.size}")
        entries.append(dict(case, control_image=control_name, expected=files))

    write_cases(OUT, PREFIX, __file__, None, entries, model="flux_pipeline/tiny_dev",
                controlnet="flux_controlnet_pipeline/union")


if __name__ == "__main__":
    main()
