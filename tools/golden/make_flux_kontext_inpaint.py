"""Golden fixtures for FLUX.1 Kontext inpainting (diffusers FluxKontextInpaintPipeline) on the tiny FLUX.1 models.

The picture to inpaint is resized to its Kontext resolution (unless _auto_resize=False: its size floored to 16
pixels) and encoded by its posterior mode (no draw); the start is the scheduler's scale_noise of those latents
(strength 1 by default: pure noise); every forward reads the noisy tokens followed by the reference's at (1, row,
col) -- the picture's own latents, or those of a separate `image_reference` (resized to its own Kontext
resolution) -- and the kept part is blended back after every step as in FluxInpaintPipeline. Runs with tiny_dev's
models (the architecture is the same) and torch.Generator("cpu").manual_seed(seed), and writes
tests/fixtures/flux_kontext_inpaint/:
  flux_kontext_inpaint_tiny_diffusers_init.png, ..._mask.png, ..._<case>_ref.png   the inputs
  flux_kontext_inpaint_tiny_diffusers_<case>_<k>.png, ..._cases.json               the outputs and the cases
The model folder is tests/fixtures/flux_kontext_pipeline/tiny_kontext (make_flux_kontext_pipeline.py).
"""

from __future__ import annotations

import os
import shutil

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn; tiny_dev was built under it too
import torch  # noqa: E402

from common import FIXTURES, save_case_images, write_cases  # noqa: E402
from make_flux_fill_pipeline import check_same_as_committed  # noqa: E402
from make_flux_kontext_pipeline import EDIT, reference  # noqa: E402
from make_flux_pipeline import DEV_SCHEDULER, NEGATIVE, build_pipelines  # noqa: E402
from make_zimage_pipeline import make_inputs  # noqa: E402

OUT = FIXTURES / "flux_kontext_inpaint"
PREFIX = "flux_kontext_inpaint_tiny_diffusers"

CASES = [
    # The picture's own size (_auto_resize=False: 64x48 stays), its own latents as the reference, the pipeline's
    # defaults (strength 1, guidance 3.5) but the step count; a batch of two under true CFG.
    dict(name="kontext_inpaint", prompt=EDIT, negative_prompt=NEGATIVE, true_cfg_scale=2.0, width=64, height=48,
         auto_resize=False, steps=2, num_images=2, seed=5),
    # Auto-resized to the picture's Kontext resolution (64x48: 1184x880), a separate portrait reference (36x52:
    # 832x1248), strength 0.8, guidance 2.5.
    dict(name="kontext_inpaint_reference", prompt=EDIT, ref_size=(36, 52), auto_resize=True, steps=2,
         strength=0.8, guidance=2.5, seed=7),
]


def main() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxKontextInpaintPipeline

    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    dev = build_pipelines()["dev"]
    check_same_as_committed(dev)
    pipe = FluxKontextInpaintPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**DEV_SCHEDULER),
                                      **{k: dev.components[k] for k in ("vae", "text_encoder", "text_encoder_2",
                                                                        "tokenizer", "tokenizer_2", "transformer")})
    pipe.set_progress_bar_config(disable=True)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    init, mask = make_inputs()
    init.save(OUT / f"{PREFIX}_init.png")
    mask.save(OUT / f"{PREFIX}_mask.png")

    entries = []
    for case in CASES:
        kwargs = dict(
            image=init,
            mask_image=mask,
            prompt=case["prompt"],
            negative_prompt=case.get("negative_prompt"),
            true_cfg_scale=case.get("true_cfg_scale", 1.0),
            num_inference_steps=case["steps"],
            num_images_per_prompt=case.get("num_images", 1),
            generator=torch.Generator("cpu").manual_seed(case["seed"]),
            max_sequence_length=512,
            _auto_resize=case["auto_resize"],
            output_type="pil",
        )
        if "guidance" in case:
            kwargs["guidance_scale"] = case["guidance"]
        if "strength" in case:
            kwargs["strength"] = case["strength"]
        entry = dict(case, init_image=f"{PREFIX}_init.png", mask_image=f"{PREFIX}_mask.png")
        if "ref_size" in case:
            ref = reference(case["ref_size"])
            entry["reference"] = f"{PREFIX}_{case['name']}_ref.png"
            ref.save(OUT / entry["reference"])
            kwargs["image_reference"] = ref
        images = pipe(**kwargs).images
        entry["expected"] = save_case_images(OUT, PREFIX, case["name"], images)
        entries.append(entry)

    write_cases(OUT, PREFIX, __file__, None, entries, tokenizers="../shared/assets/flux1_tokenizer",
                models="flux_pipeline/tiny_dev", model_folder="flux_kontext_pipeline/tiny_kontext")


if __name__ == "__main__":
    main()
