"""Golden fixtures for the FLUX.1 pipelines (text-to-image, img2img, inpaint; dev and schnell) on tiny
random models.

Builds diffusers FluxPipeline components from tiny random models and the REAL tokenizers
(../shared/assets/flux1_tokenizer: CLIP-L vocab/merges and the T5 tokenizer.json), runs
FluxPipeline / FluxImg2ImgPipeline / FluxInpaintPipeline with torch.Generator("cpu").manual_seed(seed)
and writes:
  tests/fixtures/flux_pipeline/tiny_dev/
      the dev pipeline saved with save_pretrained WITHOUT tokenizer/ and tokenizer_2/ (shared
      assets: the C++ test passes their paths separately)
  tests/fixtures/flux_pipeline/tiny_schnell/
      model_index.json, scheduler/ and transformer/ only: schnell shares the dev folder's text
      encoders and VAE (the C++ test passes them separately, as a user with single files would)
  tests/fixtures/flux_pipeline/tiny_dev_scheduler_<name>/
      model_index.json and scheduler/ only: the dev pipeline with a scheduler config of
      non-release values (SCHEDULERS), every other component from tiny_dev
  tests/fixtures/flux_pipeline/flux_tiny_diffusers_init.png, ..._mask.png
      the img2img / inpaint inputs (64x48, from make_zimage_pipeline.make_inputs)
  tests/fixtures/flux_pipeline/flux_tiny_diffusers_<case>_<k>.png
      each case's uint8 output images (PIL, as the pipelines return them)
  tests/fixtures/flux_pipeline/flux_tiny_diffusers_cases.json
      every case's request and expected files, plus the torch CPU capability the noise was drawn
      with (it decides torch.randn's float log/sin/cos, see src/core/rng.h)

The CLIP and T5 encoders keep their real vocabularies (49,408 and 32,128 rows) at hidden sizes 8;
every weight is rounded to bfloat16 and stored as BF16 (the reference runs in float32 on exactly
those values), so the whole set is about 2 MB.
"""

from __future__ import annotations

import json
import shutil

import torch

from common import FIXTURES, REPO, fixture_metadata
from make_zimage_pipeline import VAE, round_to_bf16_, run_cases, store_bf16

SEED = 20251129
OUT = FIXTURES / "flux_pipeline"
DEV = OUT / "tiny_dev"
SCHNELL = OUT / "tiny_schnell"
TOKENIZERS = REPO / ".." / "shared" / "assets" / "flux1_tokenizer"
PREFIX = "flux_tiny_diffusers"

CLIP = dict(
    vocab_size=49408,
    hidden_size=8,
    intermediate_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    eos_token_id=2,  # CLIP-L's legacy value: pool at argmax(ids)
    bos_token_id=0,
    pad_token_id=1,
    initializer_factor=4.0,  # far from identity layers, so the prompt visibly steers the image
)
T5 = dict(
    vocab_size=32128,
    d_model=8,
    d_kv=4,
    d_ff=16,
    num_layers=2,
    num_heads=2,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.0,
    layer_norm_epsilon=1e-6,
    feed_forward_proj="gated-gelu",
    is_encoder_decoder=True,
    tie_word_embeddings=False,
    pad_token_id=0,
    eos_token_id=1,
    initializer_factor=4.0,
)
TRANSFORMER = dict(
    patch_size=1,
    in_channels=64,
    num_layers=1,
    num_single_layers=1,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=8,
    pooled_projection_dim=8,
    axes_dims_rope=(4, 6, 6),
)
# The release scheduler configs (FLUX.1-dev / FLUX.1-schnell scheduler_config.json).
DEV_SCHEDULER = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                     max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
SCHNELL_SCHEDULER = dict(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)
# Scheduler configs with other values, each run by the dev pipeline: the dynamic shift's line
# through other points (at 64x48, 12 tokens: mu 1.61 instead of the release's 0.46), and the
# dynamic shift turned off, so the release file's otherwise unused shift 3 applies.
SCHEDULERS = {
    "dynamic": dict(DEV_SCHEDULER, base_shift=1.5, max_shift=3.0, base_image_seq_len=8, max_image_seq_len=64),
    "static": dict(DEV_SCHEDULER, use_dynamic_shifting=False),
}
# Larger weights where the text, the guidance, the time and the latents enter the transformer, so
# that the prompt, prompt_2, a short max_sequence_length, the guidance, the step count and the
# schedule's shift each move the output image by far more than the tests' tolerance (measured:
# 19-33 dB against the 40 dB bound; without the time and latent gains the velocity barely depends
# on them and the step count or a missing shift moved the image by only ~50 dB).
TRANSFORMER_GAINS = {
    "context_embedder.": 3.0,
    "time_text_embed.text_embedder.": 3.0,
    "time_text_embed.guidance_embedder.": 3.0,
    "time_text_embed.timestep_embedder.": 5.0,
    "x_embedder.": 3.0,
}

PROMPT = "a red fox sitting in fresh snow, morning light"
PROMPT_2 = "an oil painting of a lighthouse at dusk"
NEGATIVE = "blurry, grey, low quality"
NEGATIVE_2 = "a watercolour of a city street at noon"

# Every case: variant, pipeline and arguments. 64x48 gives an 8x6 latent (4x3 packed tokens).
CASES = [
    dict(name="dev", variant="dev", pipeline="txt2img", prompt=PROMPT, width=64, height=48, steps=3,
         guidance=3.5, seed=42),
    dict(name="schnell", variant="schnell", pipeline="txt2img", prompt=PROMPT, width=48, height=64, steps=2,
         seed=7),
    dict(name="dev_batch2_prompt2", variant="dev", pipeline="txt2img", prompt=PROMPT, prompt_2=PROMPT_2,
         width=32, height=32, steps=2, guidance=5.0, num_images=2, max_sequence_length=16, seed=11),
    dict(name="dev_img2img", variant="dev", pipeline="img2img", prompt=PROMPT, width=64, height=48, steps=4,
         guidance=7.0, strength=0.6, seed=5),
    dict(name="dev_inpaint", variant="dev", pipeline="inpaint", prompt=PROMPT, width=64, height=48, steps=4,
         guidance=7.0, strength=0.8, seed=9),
    dict(name="schnell_inpaint_batch2", variant="schnell", pipeline="inpaint", prompt=PROMPT, width=64,
         height=48, steps=4, strength=0.7, num_images=2, seed=10),
    # True CFG (true_cfg_scale > 1 with a negative prompt): a batch of two, and img2img on schnell
    # with a separate T5 negative prompt.
    dict(name="dev_true_cfg_batch2", variant="dev", pipeline="txt2img", prompt=PROMPT, negative_prompt=NEGATIVE,
         true_cfg_scale=4.0, width=64, height=48, steps=3, guidance=3.5, num_images=2, seed=42),
    dict(name="schnell_img2img_true_cfg", variant="schnell", pipeline="img2img", prompt=PROMPT,
         negative_prompt=NEGATIVE, negative_prompt_2=NEGATIVE_2, true_cfg_scale=2.5, width=64, height=48,
         steps=4, strength=0.8, seed=5),
    # The "dev" case (same prompt, size, steps and seed) under the scheduler configs of SCHEDULERS.
    dict(name="dev_scheduler_dynamic", variant="dev", scheduler="dynamic", pipeline="txt2img", prompt=PROMPT,
         width=64, height=48, steps=3, guidance=3.5, seed=42),
    dict(name="dev_scheduler_static", variant="dev", scheduler="static", pipeline="txt2img", prompt=PROMPT,
         width=64, height=48, steps=3, guidance=3.5, seed=42),
]


def randomize_(module: torch.nn.Module, gen: torch.Generator, gains: dict[str, float] | None = None) -> None:
    """Default inits leave norms at one and biases at zero; perturb them so they matter. Matrices
    under a prefix of `gains` are multiplied by its gain."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1:
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
                continue
            for prefix, gain in (gains or {}).items():
                if name.startswith(prefix):
                    p.mul_(gain)


def build_pipelines():
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5TokenizerFast

    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    clip = CLIPTextModel(CLIPTextConfig(**CLIP)).eval()
    t5 = T5EncoderModel(T5Config(**T5)).eval()
    vae = AutoencoderKL(**VAE).eval()
    dev = FluxTransformer2DModel(**TRANSFORMER, guidance_embeds=True).eval()
    schnell = FluxTransformer2DModel(**TRANSFORMER, guidance_embeds=False).eval()
    for m in (clip, t5, vae):
        randomize_(m, gen)
    for m in (dev, schnell):
        randomize_(m, gen, TRANSFORMER_GAINS)
    for m in (clip, t5, vae, dev, schnell):
        round_to_bf16_(m)
    common = dict(
        vae=vae,
        text_encoder=clip,
        text_encoder_2=t5,
        tokenizer=CLIPTokenizer.from_pretrained(str(TOKENIZERS / "tokenizer_clip_l")),
        tokenizer_2=T5TokenizerFast.from_pretrained(str(TOKENIZERS / "tokenizer_t5")),
    )
    pipes = {
        "dev": FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**DEV_SCHEDULER), transformer=dev, **common),
        "schnell": FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**SCHNELL_SCHEDULER), transformer=schnell,
                                **common),
    }
    for name, config in SCHEDULERS.items():
        pipes[f"dev_scheduler_{name}"] = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**config),
                                                      transformer=dev, **common)
    return pipes


def run_case(pipes: dict, case: dict, init, mask):
    from diffusers import FluxImg2ImgPipeline, FluxInpaintPipeline

    base = pipes[f"{case['variant']}_scheduler_{case['scheduler']}" if "scheduler" in case else case["variant"]]
    kwargs = dict(
        prompt=case["prompt"],
        prompt_2=case.get("prompt_2"),
        negative_prompt=case.get("negative_prompt"),
        negative_prompt_2=case.get("negative_prompt_2"),
        true_cfg_scale=case.get("true_cfg_scale", 1.0),
        num_inference_steps=case["steps"],
        num_images_per_prompt=case.get("num_images", 1),
        generator=torch.Generator("cpu").manual_seed(case["seed"]),
        max_sequence_length=case.get("max_sequence_length", 512 if case["variant"] == "dev" else 256),
        width=case["width"],
        height=case["height"],
        output_type="pil",
    )
    if "guidance" in case:
        kwargs["guidance_scale"] = case["guidance"]
    if case["pipeline"] == "txt2img":
        pipe = base
    elif case["pipeline"] == "img2img":
        pipe = FluxImg2ImgPipeline(**base.components)
        kwargs.update(image=init, strength=case["strength"])
    else:
        pipe = FluxInpaintPipeline(**base.components)
        kwargs.update(image=init, mask_image=mask, strength=case["strength"])
    pipe.set_progress_bar_config(disable=True)
    return pipe(**kwargs).images


def main() -> None:
    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    pipes = build_pipelines()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    pipes["dev"].save_pretrained(str(DEV), safe_serialization=True)
    pipes["schnell"].save_pretrained(str(SCHNELL), safe_serialization=True)
    for folder in (DEV, SCHNELL):
        shutil.rmtree(folder / "tokenizer")
        shutil.rmtree(folder / "tokenizer_2")
    for sub in ("text_encoder", "text_encoder_2", "vae"):
        shutil.rmtree(SCHNELL / sub)
        store_bf16(DEV / sub)
    store_bf16(DEV / "transformer")
    store_bf16(SCHNELL / "transformer")
    for name in SCHEDULERS:
        folder = OUT / f"tiny_dev_scheduler_{name}"
        pipes[f"dev_scheduler_{name}"].save_config(str(folder))
        pipes[f"dev_scheduler_{name}"].scheduler.save_config(str(folder / "scheduler"))

    cases = run_cases(OUT, PREFIX, CASES, lambda case, init, mask: run_case(pipes, case, init, mask))

    payload = {
        "_meta": fixture_metadata(__file__, SEED, torch_cpu_capability=torch.backends.cpu.get_cpu_capability()),
        "tokenizers": "../shared/assets/flux1_tokenizer",
        "cases": cases,
    }
    (OUT / f"{PREFIX}_cases.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
