"""Golden fixtures for FLUX.1 Kontext (black-forest-labs/FLUX.1-Kontext-dev) on the tiny FLUX.1 models.

Kontext is FLUX.1-dev's architecture trained to edit: the reference image's latents (VAE mode, no
noise drawn) join the noisy latents as further tokens at positions (1, row, col), and the output is
the first tokens. The reference is first resized (Lanczos) to the Kontext resolution nearest its
aspect ratio (PREFERRED_KONTEXT_RESOLUTIONS, about a megapixel). Runs diffusers' FluxKontextPipeline
with the tiny dev transformer (make_flux_pipeline.py; the architecture is the same) and
torch.Generator("cpu").manual_seed(seed), and writes:
  tests/fixtures/flux_kontext_pipeline/tiny_kontext/
      model_index.json (FluxKontextPipeline) and scheduler/ only: every model is tiny_dev's, passed
      separately by the C++ test
  tests/fixtures/flux_kontext_pipeline/flux_kontext_tiny_diffusers_<case>_ref.png, ..._<case>_<k>.png
      each case's reference image and uint8 output images; ..._cases.json the cases
Output sizes are given with max_area = width * height, so diffusers keeps them (it otherwise
rescales any size to a megapixel).
"""

from __future__ import annotations

import os
import shutil

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn; tiny_dev was built under it too
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from common import FIXTURES, save_case_images, write_cases  # noqa: E402
from make_flux_fill_pipeline import check_same_as_committed  # noqa: E402
from make_flux_pipeline import DEV_SCHEDULER, NEGATIVE, PROMPT, build_pipelines  # noqa: E402
from make_zimage_pipeline import make_inputs  # noqa: E402

OUT = FIXTURES / "flux_kontext_pipeline"
KONTEXT = OUT / "tiny_kontext"
PREFIX = "flux_kontext_tiny_diffusers"

EDIT = "make the disc blue and the sky stormy"
CASES = [
    # A landscape reference (64x48: 1184x880 after the resize), output at its aspect, guidance 2.5.
    dict(name="kontext", prompt=EDIT, ref_size=(64, 48), width=64, height=48, steps=2, guidance=2.5, seed=4),
    # A portrait reference of odd size (36x52: 832x1248), a batch of two at another size, true CFG.
    dict(name="kontext_batch2_true_cfg", prompt=PROMPT, negative_prompt=NEGATIVE, true_cfg_scale=2.0,
         ref_size=(36, 52), width=48, height=64, steps=2, guidance=3.5, num_images=2, seed=9),
]


def reference(size) -> Image.Image:
    init, _ = make_inputs()
    return init if init.size == tuple(size) else init.resize(size, Image.BICUBIC)


def main() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxKontextPipeline

    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    dev = build_pipelines()["dev"]
    check_same_as_committed(dev)
    pipe = FluxKontextPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**DEV_SCHEDULER),
                               **{k: dev.components[k] for k in ("vae", "text_encoder", "text_encoder_2",
                                                                 "tokenizer", "tokenizer_2", "transformer")})
    pipe.set_progress_bar_config(disable=True)

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    pipe.save_config(str(KONTEXT))
    pipe.scheduler.save_config(str(KONTEXT / "scheduler"))

    entries = []
    for case in CASES:
        ref = reference(case["ref_size"])
        ref_name = f"{PREFIX}_{case['name']}_ref.png"
        ref.save(OUT / ref_name)
        images = pipe(
            image=ref,
            prompt=case["prompt"],
            negative_prompt=case.get("negative_prompt"),
            true_cfg_scale=case.get("true_cfg_scale", 1.0),
            num_inference_steps=case["steps"],
            guidance_scale=case["guidance"],
            num_images_per_prompt=case.get("num_images", 1),
            generator=torch.Generator("cpu").manual_seed(case["seed"]),
            width=case["width"],
            height=case["height"],
            max_area=case["width"] * case["height"],
            max_sequence_length=512,
            output_type="pil",
        ).images
        files = save_case_images(OUT, PREFIX, case["name"], images)
        entries.append(dict(case, reference=ref_name, expected=files))

    write_cases(OUT, PREFIX, __file__, None, entries, tokenizers="../shared/assets/flux1_tokenizer",
                models="flux_pipeline/tiny_dev")


if __name__ == "__main__":
    main()
