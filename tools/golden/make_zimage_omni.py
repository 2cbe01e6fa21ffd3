"""Golden fixtures for Z-Image Omni (diffusers ZImageOmniPipeline: editing and multi-image conditioning) on tiny
random models.

Omni is ZImageTransformer2DModel with `siglip_feat_dim` set: each sample is a list of images (clean condition
images, then the noisy target) with one caption segment per image plus one, and a SigLIP 2 (NaFlex) grid per
condition image. Condition tokens are modulated with the embedding of t = 1, the target's with the step's t. Builds
that with a tiny transformer, a tiny Siglip2VisionModel and Siglip2ImageProcessor beside the committed tiny Z-Image
text encoder and VAE (make_zimage_pipeline.py) and writes:
  tests/fixtures/zimage_omni/tiny_omni/
      model_index.json (ZImageOmniPipeline), scheduler/, transformer/ (bf16, pad tokens f32), siglip/ (bf16),
      siglip_processor/; the text encoder and VAE are zimage_pipeline/tiny's
  tests/fixtures/zimage_omni/zimage_omni_siglip_io.safetensors
      for each input image: the processor's pixel_values (real patches only), spatial_shapes, and the tower's
      last_hidden_state on those pixels
  tests/fixtures/zimage_omni/zimage_omni_transformer_io.safetensors
      one omni forward of the transformer: a batch of two (different caption segment lengths, different t), two
      condition images of different sizes with SigLIP grids, and a text-to-image forward (no condition)
  tests/fixtures/zimage_omni/zimage_omni_tiny_*.png, ..._cases.json: the input images and each case's outputs

diffusers 0.42.1 encodes the condition images with `vae.encode(image.bfloat16())`, which needs a bf16 VAE; the
float32 VAE here gets the same bf16-rounded pixels, cast back (a wrapper below), as zflow does.
"""

from __future__ import annotations

import os
import shutil

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from common import FIXTURES, save_case_images, save_fixture, write_cases  # noqa: E402
from make_zimage_pipeline import (  # noqa: E402
    CAPTION_GAIN, SHIFT, TINY as ZIMAGE_TINY, TOKENIZER, TRANSFORMER, make_inputs, randomize_, round_to_bf16_,
    store_bf16)

SEED = 20261207
OUT = FIXTURES / "zimage_omni"
OMNI = OUT / "tiny_omni"
PREFIX = "zimage_omni_tiny"

# A 4 x 4 grid of learned positions (num_patches 16), resized per image; 24 patches of 4 pixels at most.
SIGLIP = dict(hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2, num_channels=3,
              patch_size=4, num_patches=16, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")
MAX_PATCHES = 24
OMNI_TRANSFORMER = dict(TRANSFORMER, siglip_feat_dim=SIGLIP["hidden_size"])

PROMPT = "make the disc a blue moon over the snow"
NEGATIVE = "blurry"

CASES = [
    # One condition image: the output takes its size (80x64 -> 80x64).
    dict(name="edit", prompt=PROMPT, images=["a"], steps=3, guidance=0.0, seed=4),
    # Two condition images of different sizes, CFG with a negative prompt, an explicit size.
    dict(name="two_images_cfg", prompt=PROMPT, negative_prompt=NEGATIVE, images=["a", "b"], width=48, height=64,
         steps=3, guidance=3.0, seed=5),
    # A batch of two from one condition image, CFG truncated after the first step.
    dict(name="batch2", prompt=PROMPT, images=["b"], steps=3, guidance=2.0, cfg_truncation=0.1, num_images=2,
         seed=6),
    # No condition image: text to image in omni mode.
    dict(name="text_only", prompt=PROMPT, width=64, height=48, steps=2, guidance=0.0, seed=7),
]


def condition_images() -> dict[str, Image.Image]:
    """Two condition images (FLUX.2's image processor wants sides of 64 or more): 80x64 and 70x100 (cropped to
    64x96 for the VAE; SigLIP sees the whole picture)."""
    init, _ = make_inputs()
    return {"a": init.resize((80, 64), Image.BICUBIC),
            "b": init.transpose(Image.FLIP_TOP_BOTTOM).resize((70, 100), Image.BICUBIC)}


def float32_vae_encode(vae) -> None:
    """diffusers calls vae.encode(image.bfloat16()); a float32 VAE gets those bf16 values back in float32."""
    encode = vae.encode
    vae.encode = lambda x, *args, **kwargs: encode(x.float(), *args, **kwargs)


def siglip_fixture(siglip, processor, images: dict[str, Image.Image]) -> None:
    tensors = {}
    # The processor enlarges "small"; "wide" gets a 2-row grid, so the 4 x 4 positions also shrink.
    extra = {"small": images["a"].resize((10, 7), Image.BICUBIC), "wide": images["b"].resize((120, 18), Image.BICUBIC)}
    for name, image in (("a", images["a"]), ("b", images["b"]), *extra.items()):
        inputs = processor(images=[image], return_tensors="pt")
        h, w = inputs["spatial_shapes"][0].tolist()
        with torch.no_grad():
            hidden = siglip(**inputs).last_hidden_state[0, : h * w]
        tensors[f"{name}.pixel_values"] = inputs["pixel_values"][0, : h * w]
        tensors[f"{name}.spatial_shapes"] = inputs["spatial_shapes"][0].to(torch.int32)
        tensors[f"{name}.last_hidden_state"] = hidden
        print(f"siglip {name}: {image.size} -> {h}x{w} patches")
    for name, image in extra.items():
        image.save(OUT / f"{PREFIX}_{name}.png")
    save_fixture("zimage_omni/zimage_omni_siglip_io.safetensors", tensors, __file__, SEED,
                 patch_size=SIGLIP["patch_size"], max_num_patches=MAX_PATCHES)


def transformer_fixture(transformer) -> None:
    gen = torch.Generator().manual_seed(SEED + 1)

    def randn(*shape):
        return torch.randn(shape, generator=gen)

    cap = OMNI_TRANSFORMER["cap_feat_dim"]
    sig = SIGLIP["hidden_size"]
    conds = [randn(16, 1, 8, 10), randn(16, 1, 12, 8)]  # 4x5 and 6x4 tokens
    targets = [randn(16, 1, 6, 8), randn(16, 1, 6, 8)]
    # Segments per sample: two clean ones (shared template pieces), the prompt's, the closing one.
    lengths = [[5, 3, 9, 4], [5, 3, 40, 4]]
    segments = [[randn(n, cap) for n in sample] for sample in lengths]
    siglips = [randn(3, 4, sig), randn(5, 2, sig)]
    t = torch.tensor([0.25, 0.7])
    with torch.no_grad():
        out = transformer(x=[conds + [targets[0]], conds + [targets[1]]], t=t, cap_feats=segments,
                          siglip_feats=[siglips + [None], siglips + [None]], image_noise_mask=[[0, 0, 1], [0, 0, 1]],
                          return_dict=False)[0]
        text_only = transformer(x=[[targets[0]]], t=t[:1], cap_feats=[[segments[0][2]]], siglip_feats=[None],
                                image_noise_mask=[[1]], return_dict=False)[0]
    tensors = {"t": t, "cond0": conds[0][:, 0], "cond1": conds[1][:, 0], "siglip0": siglips[0],
               "siglip1": siglips[1], "out_text_only": text_only[0][:, 0]}
    for b in range(2):
        tensors[f"target{b}"] = targets[b][:, 0]
        tensors[f"out{b}"] = out[b][:, 0]
        for j, seg in enumerate(segments[b]):
            tensors[f"caption{b}.{j}"] = seg
    save_fixture("zimage_omni/zimage_omni_transformer_io.safetensors", tensors, __file__, SEED)


def main() -> None:
    from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImageOmniPipeline,
                           ZImageTransformer2DModel)
    from transformers import AutoTokenizer, Qwen3Model, Siglip2ImageProcessor, Siglip2VisionConfig, Siglip2VisionModel

    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    transformer = ZImageTransformer2DModel(**OMNI_TRANSFORMER).eval()
    siglip = Siglip2VisionModel(Siglip2VisionConfig(**SIGLIP)).eval()
    randomize_(transformer, gen, gain_prefixes=("layers.", "cap_embedder.", "siglip_embedder."))
    randomize_(siglip, gen)
    for m in (transformer, siglip):
        round_to_bf16_(m)
    processor = Siglip2ImageProcessor(patch_size=SIGLIP["patch_size"], max_num_patches=MAX_PATCHES)
    text_encoder = Qwen3Model.from_pretrained(str(ZIMAGE_TINY / "text_encoder"), torch_dtype=torch.float32).eval()
    vae = AutoencoderKL.from_pretrained(str(ZIMAGE_TINY / "vae"), torch_dtype=torch.float32).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=SHIFT, use_dynamic_shifting=False)
    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER))
    pipe = ZImageOmniPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                              transformer=transformer, siglip=siglip, siglip_processor=processor)
    pipe.set_progress_bar_config(disable=True)

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    pipe.save_pretrained(str(OMNI), safe_serialization=True)
    for sub in ("tokenizer", "text_encoder", "vae"):
        shutil.rmtree(OMNI / sub)
    store_bf16(OMNI / "transformer", keep_f32=lambda name: "pad_token" in name)
    store_bf16(OMNI / "siglip")
    float32_vae_encode(vae)

    images = condition_images()
    for name, image in images.items():
        image.save(OUT / f"{PREFIX}_{name}.png")
    siglip_fixture(siglip, processor, images)
    transformer_fixture(transformer)

    entries = []
    for case in CASES:
        names = case.get("images", [])
        kwargs = dict(prompt=case["prompt"], negative_prompt=case.get("negative_prompt"),
                      num_inference_steps=case["steps"], guidance_scale=case["guidance"],
                      cfg_truncation=case.get("cfg_truncation", 1.0), num_images_per_prompt=case.get("num_images", 1),
                      generator=torch.Generator("cpu").manual_seed(case["seed"]), width=case.get("width"),
                      height=case.get("height"), output_type="pil")
        with torch.no_grad():
            out = pipe(image=[images[n] for n in names] or None, **kwargs).images
        files = save_case_images(OUT, PREFIX, case["name"], out)
        entries.append(dict(case, images=[f"{PREFIX}_{n}.png" for n in names], expected=files))

    write_cases(OUT, PREFIX, __file__, SEED, entries, tokenizer="../shared/assets/qwen3_tokenizer",
                models=str(ZIMAGE_TINY.relative_to(OUT.parent)), caption_gain=CAPTION_GAIN)


if __name__ == "__main__":
    main()
