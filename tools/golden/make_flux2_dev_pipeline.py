"""Golden fixtures for the FLUX.2-dev pipeline (text-to-image and editing with a reference image) on a tiny
random model.

Builds diffusers' Flux2Pipeline from tiny random components, the REAL Mistral tokenizer
(../shared/assets/flux2_mistral_tokenizer, wrapped as make_mistral_tokenizer.py builds it: left padding,
Mistral's chat template) and make_flux2_pipeline.py's autoencoder, scheduler and reference pictures; runs it
with torch.Generator("cpu").manual_seed(seed) and writes:
  tests/fixtures/flux2_pipeline/tiny_dev/
      the diffusers folder (save_pretrained) WITHOUT tokenizer/ (a shared asset, passed separately)
  tests/fixtures/flux2_pipeline/flux2_dev_tiny_diffusers_<case>_<k>.png
      each case's uint8 output images
  tests/fixtures/flux2_pipeline/flux2_dev_tiny_diffusers_cases.json
      every case's request and expected files, plus the torch CPU capability the noise was drawn with

Sizes: the text encoder is a Mistral3ForConditionalGeneration (a tiny Pixtral tower beside it) whose language
model keeps the real 131,072-row vocabulary at hidden size 3 and has 32 layers, so the pipeline's own taps
(10, 20, 30) apply; the transformer (guidance embedder on: dev) reads 3 x 3 = 9 text features. Every weight is
rounded to bfloat16 (kept as float32 in torch) and stored as BF16; the BatchNorm statistics stay float32.
"""

from __future__ import annotations

import json
import os
import shutil

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # as make_flux2_pipeline.py: zflow's default randn

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import fixture_metadata  # noqa: E402
from make_flux2_pipeline import (OUT, PROMPT, PROMPT_2, SCHEDULER, TRANSFORMER, VAE, make_references,  # noqa: E402
                                 randomize_)
from make_mistral_tokenizer import reference_tokenizer  # noqa: E402
from make_zimage_pipeline import round_to_bf16_, store_bf16  # noqa: E402

SEED = 20263
PREFIX = "flux2_dev_tiny_diffusers"
MODEL = "tiny_dev"

TEXT = dict(vocab_size=131072, hidden_size=3, intermediate_size=8, num_hidden_layers=32, num_attention_heads=2,
            num_key_value_heads=1, head_dim=8, max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=1e9,
            sliding_window=None, tie_word_embeddings=False, initializer_range=0.5)
VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, head_dim=8,
              image_size=32, patch_size=8, num_channels=3)

CASES = [
    dict(name="dev", prompt=PROMPT, width=64, height=48, steps=3, guidance=4.0, seed=42),
    dict(name="dev_batch2", prompt=PROMPT_2, width=48, height=64, steps=2, guidance=2.5, num_images=2, seed=7),
    dict(name="dev_maxlen", prompt=PROMPT, width=32, height=32, steps=2, guidance=4.0, max_sequence_length=40,
         seed=3),
    dict(name="dev_edit", prompt=PROMPT_2, steps=2, guidance=3.0, seed=21, references=["ref_a"]),
]


def build_pipeline():
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Pipeline, Flux2Transformer2DModel
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration, MistralConfig, PixtralVisionConfig

    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    transformer = Flux2Transformer2DModel(**dict(TRANSFORMER, guidance_embeds=True)).eval()
    text_encoder = Mistral3ForConditionalGeneration(Mistral3Config(
        vision_config=PixtralVisionConfig(**VISION), text_config=MistralConfig(**TEXT), image_token_index=10,
        spatial_merge_size=2)).eval()
    vae = AutoencoderKLFlux2(**VAE).eval()
    randomize_(transformer, gen, gain_prefixes=("context_embedder", "transformer_blocks."))
    randomize_(text_encoder, gen)
    randomize_(vae, gen)
    with torch.no_grad():
        vae.bn.running_mean.copy_(0.3 * torch.randn(vae.bn.running_mean.shape, generator=gen))
        vae.bn.running_var.copy_(0.5 + torch.rand(vae.bn.running_var.shape, generator=gen))
    for m in (transformer, text_encoder, vae):
        round_to_bf16_(m)
    _, tokenizer = reference_tokenizer()
    pipe = Flux2Pipeline(scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER), vae=vae, text_encoder=text_encoder,
                         tokenizer=tokenizer, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main() -> None:
    torch.set_num_threads(1)
    pipe = build_pipeline()
    folder = OUT / MODEL
    if folder.exists():
        shutil.rmtree(folder)
    for stale in OUT.glob(f"{PREFIX}_*"):
        stale.unlink()
    pipe.save_pretrained(str(folder), safe_serialization=True)
    shutil.rmtree(folder / "tokenizer")
    store_bf16(folder / "text_encoder")
    store_bf16(folder / "transformer")
    store_bf16(folder / "vae", keep_f32=lambda name: name.startswith("bn."))

    references = make_references()
    cases = []
    for case in CASES:
        images = [references[name] for name in case.get("references", [])]
        outputs = pipe(image=images or None, prompt=case["prompt"], width=case.get("width"),
                       height=case.get("height"), num_inference_steps=case["steps"],
                       guidance_scale=case["guidance"], num_images_per_prompt=case.get("num_images", 1),
                       generator=torch.Generator("cpu").manual_seed(case["seed"]),
                       max_sequence_length=case.get("max_sequence_length", 512), output_type="pil").images
        files = []
        for k, im in enumerate(outputs):
            name = f"{PREFIX}_{case['name']}_{k}.png"
            im.save(OUT / name)
            files.append(name)
            arr = np.asarray(im)
            print(f"{case['name']}[{k}]: {im.size}, mean {arr.mean():.1f}, std {arr.std():.1f}")
        entry = dict(case, model=MODEL, expected=files)
        if "references" in case:
            entry["references"] = [f"flux2_tiny_diffusers_{name}.png" for name in case["references"]]
        cases.append(entry)
    payload = {
        "_meta": fixture_metadata(__file__, SEED, torch_cpu_capability=torch.backends.cpu.get_cpu_capability()),
        "tokenizer": "../shared/assets/flux2_mistral_tokenizer",
        "cases": cases,
    }
    (OUT / f"{PREFIX}_cases.json").write_text(json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"wrote {folder} ({total / 1e6:.2f} MB) and {len(cases)} cases")


if __name__ == "__main__":
    main()
