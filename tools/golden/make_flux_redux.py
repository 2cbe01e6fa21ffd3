"""Golden fixtures for FLUX.1 Redux (black-forest-labs/FLUX.1-Redux-dev) on tiny random models.

Redux makes variations of a picture: SigLIP's vision tower reads it (SiglipImageProcessor: bicubic to the tower's
size, (x / 255 - 0.5) / 0.5), ReduxImageEncoder maps its last hidden state to T5-wide tokens, and those tokens are
appended to the prompt's T5 states (diffusers' FluxPriorReduxPipeline with its text encoders, T5 length 512); the
FLUX.1 pipeline then runs on those states. Runs that with a tiny SigLIP tower and Redux embedder beside the tiny
FLUX.1 dev models (make_flux_pipeline.py) and writes:
  tests/fixtures/flux_redux/tiny_redux/
      model_index.json (FluxPriorReduxPipeline), image_encoder/ (SiglipVisionModel, bf16), feature_extractor/,
      image_embedder/ (ReduxImageEncoder, bf16)
  tests/fixtures/flux_redux/flux_redux_siglip_io.safetensors
      pixel_values (the processor's output for the input image), last_hidden_state, image_embeds
  tests/fixtures/flux_redux/flux_redux_tiny_image.png, ..._image_b.png, ..._<case>_<k>.png, ..._cases.json
      the input images (50x38 and 44x60: the processor resizes them), each case's uint8 outputs, and the cases
Two cases go past what diffusers offers, built from its outputs in one line each: a Redux strength (the image
tokens, prompt_embeds[:, 512:], times it: ComfyUI's "multiply" StyleModelApply strength; diffusers'
prompt_embeds_scale would scale the T5 states too) and two pictures (the second's tokens after the first's, as
ComfyUI's chained StyleModelApply nodes append them).
"""

from __future__ import annotations

import os
import shutil

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn; tiny_dev was built under it too
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from common import FIXTURES, save_case_images, write_cases  # noqa: E402
from make_flux_fill_pipeline import check_same_as_committed  # noqa: E402
from make_flux_pipeline import DEV, OUT as FLUX_OUT, PROMPT, PROMPT_2, build_pipelines, randomize_  # noqa: E402
from make_zimage_pipeline import make_inputs, round_to_bf16_, store_bf16  # noqa: E402

SEED = 20261208
OUT = FIXTURES / "flux_redux"
REDUX = OUT / "tiny_redux"
PREFIX = "flux_redux_tiny"

# 16 patches of 14 pixels; T5's width (8) for the Redux tokens.
SIGLIP = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=56,
              patch_size=14, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")
TXT_IN = 8

CASES = [
    dict(name="redux", prompt=PROMPT, width=64, height=48, steps=2, guidance=3.5, seed=3),
    # A batch of two with a separate T5 prompt.
    dict(name="redux_batch2_prompt2", prompt=PROMPT, prompt_2=PROMPT_2, width=48, height=64, steps=2,
         guidance=2.5, num_images=2, seed=11),
    dict(name="redux_strength", prompt=PROMPT, redux_strength=0.4, width=64, height=48, steps=2, guidance=3.5,
         seed=3),
    dict(name="redux_two_images", prompt=PROMPT, more_images=True, width=64, height=48, steps=2, guidance=3.5,
         seed=5),
]


def main() -> None:
    from diffusers import FluxPriorReduxPipeline
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    dev = build_pipelines()["dev"]
    check_same_as_committed(dev)
    dev.set_progress_bar_config(disable=True)
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    siglip = SiglipVisionModel(SiglipVisionConfig(**SIGLIP)).eval()
    embedder = ReduxImageEncoder(redux_dim=SIGLIP["hidden_size"], txt_in_features=TXT_IN).eval()
    for m in (siglip, embedder):
        randomize_(m, gen)
        round_to_bf16_(m)
    processor = SiglipImageProcessor(size={"height": SIGLIP["image_size"], "width": SIGLIP["image_size"]},
                                     resample=Image.BICUBIC, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    prior = FluxPriorReduxPipeline(image_encoder=siglip, feature_extractor=processor, image_embedder=embedder,
                                   **{k: dev.components[k] for k in ("text_encoder", "tokenizer", "text_encoder_2",
                                                                     "tokenizer_2")})

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    prior.save_pretrained(str(REDUX), safe_serialization=True)
    for sub in ("tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2"):
        shutil.rmtree(REDUX / sub, ignore_errors=True)
    for sub in ("image_encoder", "image_embedder"):
        store_bf16(REDUX / sub)

    init, _ = make_inputs()
    image = init.resize((50, 38), Image.BICUBIC)
    image.save(OUT / f"{PREFIX}_image.png")
    image_b = init.transpose(Image.FLIP_LEFT_RIGHT).resize((44, 60), Image.BICUBIC)
    image_b.save(OUT / f"{PREFIX}_image_b.png")
    with torch.no_grad():
        pixels = processor.preprocess(images=image, do_resize=True, return_tensors="pt",
                                      do_convert_rgb=True)["pixel_values"]
        hidden = siglip(pixel_values=pixels).last_hidden_state
        embeds = embedder(hidden).image_embeds
    save_file({"pixel_values": pixels.contiguous(), "last_hidden_state": hidden.contiguous(),
               "image_embeds": embeds.contiguous()}, str(OUT / "flux_redux_siglip_io.safetensors"))

    entries = []
    for case in CASES:
        with torch.no_grad():
            prior_out = prior(image=image, prompt=case["prompt"], prompt_2=case.get("prompt_2"))
            prompt_embeds = prior_out.prompt_embeds.clone()
            prompt_embeds[:, 512:] *= case.get("redux_strength", 1.0)
            if case.get("more_images"):
                other = prior(image=image_b, prompt=case["prompt"], prompt_2=case.get("prompt_2"))
                prompt_embeds = torch.cat([prompt_embeds, other.prompt_embeds[:, 512:]], dim=1)
        images = dev(
            prompt_embeds=prompt_embeds,
            pooled_prompt_embeds=prior_out.pooled_prompt_embeds,
            num_inference_steps=case["steps"],
            guidance_scale=case["guidance"],
            num_images_per_prompt=case.get("num_images", 1),
            generator=torch.Generator("cpu").manual_seed(case["seed"]),
            width=case["width"],
            height=case["height"],
            output_type="pil",
        ).images
        files = save_case_images(OUT, PREFIX, case["name"], images)
        entry = dict(case, reference=f"{PREFIX}_image.png", expected=files)
        if entry.pop("more_images", False):
            entry["more_references"] = [f"{PREFIX}_image_b.png"]
        entries.append(entry)

    write_cases(OUT, PREFIX, __file__, SEED, entries, tokenizers="../shared/assets/flux1_tokenizer",
                models=str(DEV.relative_to(FLUX_OUT.parent)))


if __name__ == "__main__":
    main()
