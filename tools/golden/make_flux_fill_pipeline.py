"""Golden fixtures for FLUX.1 Fill (black-forest-labs/FLUX.1-Fill-dev) on a tiny random model.

FLUX.1 Fill is FLUX.1-dev whose transformer takes, beside the packed noisy latents (64 features a
token), the packed latents of the masked picture (64) and the mask at pixel resolution folded into
each token (8 x 8 pixels x 2 x 2 cells = 256): in_channels 384, out_channels 64. Runs diffusers'
FluxFillPipeline with torch.Generator("cpu").manual_seed(seed) and writes:
  tests/fixtures/flux_fill_pipeline/tiny_fill/
      model_index.json (FluxFillPipeline), scheduler/ and transformer/ only: the text encoders and
      VAE are those of tests/fixtures/flux_pipeline/tiny_dev (make_flux_pipeline.py builds them
      again, bit for bit; this script checks that), passed separately by the C++ test
  tests/fixtures/flux_fill_pipeline/flux_fill_tiny_diffusers_init.png, ..._mask.png
      the init image (64x48, make_zimage_pipeline.make_inputs) and a mask whose edges cut latent cells
  tests/fixtures/flux_fill_pipeline/flux_fill_tiny_diffusers_<case>_<k>.png, ..._cases.json
      each case's uint8 output images, and the cases
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn; tiny_dev was built under it too
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from common import FIXTURES, write_cases
from make_flux_pipeline import DEV, DEV_SCHEDULER, OUT as FLUX_OUT, PROMPT, PROMPT_2, TRANSFORMER, TRANSFORMER_GAINS
from make_flux_pipeline import build_pipelines, randomize_
from make_zimage_pipeline import make_inputs, round_to_bf16_, run_cases, store_bf16

SEED = 20261206
OUT = FIXTURES / "flux_fill_pipeline"
FILL = OUT / "tiny_fill"
PREFIX = "flux_fill_tiny_diffusers"

# 16 latent channels and 8 x 8 pixels a latent cell (the tiny VAE, as the release's): 64 + 64 + 256.
FILL_TRANSFORMER = dict(TRANSFORMER, in_channels=384, out_channels=64)
# The condition's columns of x_embedder (the masked picture's 64 and the mask's 256 features) get
# this further gain, so the condition moves the output far more than the tests' tolerance.
CONDITION_GAIN = 4.0

CASES = [
    # FluxFillPipeline's defaults but the step count: strength 1 (pure noise), guidance 30.
    dict(name="fill", pipeline="inpaint", prompt=PROMPT, width=64, height=48, steps=3, guidance=30.0, seed=3),
    # A batch of two from part way along the schedule, with a separate T5 prompt.
    dict(name="fill_batch2_strength", pipeline="inpaint", prompt=PROMPT, prompt_2=PROMPT_2, width=64, height=48,
         steps=4, guidance=10.0, strength=0.7, num_images=2, seed=8),
    # An init image and mask of another size (resized to 64x48 with Lanczos by the processors).
    dict(name="fill_resized", pipeline="inpaint", prompt=PROMPT, width=64, height=48, steps=2, guidance=30.0,
         input_size=(80, 56), seed=12),
]


def make_fill_inputs():
    """make_inputs' picture, and a mask whose edges cut through 8 x 8 latent cells (a disc and a strip
    3 pixels in from the left), so each cell's folded mask pixels differ."""
    init, _ = make_inputs()
    y, x = np.mgrid[0:48, 0:64]
    mask = ((x - 37) ** 2 + (y - 21) ** 2 < 13**2) | ((x >= 3) & (x < 11))
    return init, Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L")


def check_same_as_committed(pipe) -> None:
    """The rebuilt text encoders and VAE must be the committed tiny_dev's, which the C++ test loads."""
    for sub in ("text_encoder", "text_encoder_2", "vae"):
        committed = {}
        for path in (DEV / sub).glob("*.safetensors"):
            committed.update(load_file(str(path)))
        state = getattr(pipe, sub).state_dict()
        for name, t in committed.items():
            assert torch.equal(t.float(), state[name].float()), f"{sub}.{name} differs from {DEV / sub}"


def conditioned_pipeline(pipeline_class, config: dict, seed: int):
    """pipeline_class with a tiny FLUX.1 transformer of `config` (bf16-rounded random weights, the condition's
    columns of x_embedder (past the 64 noisy features) times CONDITION_GAIN) and tiny_dev's text encoders and VAE,
    checked to be the committed ones."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    dev = build_pipelines()["dev"]
    check_same_as_committed(dev)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(**config, guidance_embeds=True).eval()
    randomize_(transformer, gen, TRANSFORMER_GAINS)
    with torch.no_grad():
        transformer.x_embedder.weight[:, 64:] *= CONDITION_GAIN
    round_to_bf16_(transformer)
    pipe = pipeline_class(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(**DEV_SCHEDULER),
                          **{k: dev.components[k] for k in ("vae", "text_encoder", "text_encoder_2", "tokenizer",
                                                            "tokenizer_2")})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_beside_dev(pipe, out: Path, folder: Path) -> None:
    """Empties `out` and saves the pipeline's model_index, scheduler and bf16 transformer in `folder`: the rest
    is tiny_dev's."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    for sub in ("tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2", "vae"):
        shutil.rmtree(folder / sub)
    store_bf16(folder / "transformer")


def beside_dev_fields() -> dict:
    """Where a fixture made by conditioned_pipeline finds its tokenizers and the models it borrows."""
    return {"tokenizers": "../shared/assets/flux1_tokenizer",
            "text_encoders_and_vae": str(DEV.relative_to(FLUX_OUT.parent))}


def main() -> None:
    from diffusers import FluxFillPipeline

    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    pipe = conditioned_pipeline(FluxFillPipeline, FILL_TRANSFORMER, SEED)
    save_beside_dev(pipe, OUT, FILL)

    def run(case, init, mask):
        kwargs = dict(
            prompt=case["prompt"],
            prompt_2=case.get("prompt_2"),
            image=init,
            mask_image=mask,
            num_inference_steps=case["steps"],
            guidance_scale=case["guidance"],
            strength=case.get("strength", 1.0),
            num_images_per_prompt=case.get("num_images", 1),
            generator=torch.Generator("cpu").manual_seed(case["seed"]),
            max_sequence_length=512,
            width=case["width"],
            height=case["height"],
            output_type="pil",
        )
        return pipe(**kwargs).images

    write_cases(OUT, PREFIX, __file__, SEED, run_cases(OUT, PREFIX, CASES, run, inputs=make_fill_inputs()),
                **beside_dev_fields())


if __name__ == "__main__":
    main()
