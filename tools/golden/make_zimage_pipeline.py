"""Golden fixtures for the Z-Image pipelines (text-to-image, img2img, inpaint) on a tiny random model.

Builds a diffusers ZImagePipeline from tiny random components and the REAL Qwen3 tokenizer
(../shared/assets/qwen3_tokenizer), runs ZImagePipeline / ZImageImg2ImgPipeline /
ZImageInpaintPipeline with torch.Generator("cpu").manual_seed(seed), and writes:
  tests/fixtures/zimage_pipeline/tiny/
      the diffusers folder (save_pretrained) WITHOUT tokenizer/: the 11 MB tokenizer is a shared
      asset, and the C++ test passes its path separately
  tests/fixtures/zimage_pipeline/zimage_tiny_diffusers_init.png, ..._mask.png
      the img2img / inpaint inputs (64x48; the mask is grey-level, white = repaint)
  tests/fixtures/zimage_pipeline/zimage_tiny_diffusers_<case>_<k>.png
      each case's uint8 output images (PIL, as the pipelines return them)
  tests/fixtures/zimage_pipeline/zimage_tiny_diffusers_cases.json
      every case's request and expected files, plus the torch CPU capability the noise was drawn
      with (it decides torch.randn's float log/sin/cos, see src/core/rng.h)

Sizes (1.8 MB in all): the text encoder must keep Qwen3's 151,936-row embedding (the real
tokenizer's ids reach 151,668), so its hidden size is 3 (odd on purpose); every weight of the three
models is rounded to bfloat16 (kept as float32 in torch, so the reference runs in float32 on exactly
those numbers) and stored as BF16, halving the bytes. The transformer's pad tokens stay float32.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from common import FIXTURES, REPO, fixture_metadata

SEED = 20251128
OUT = FIXTURES / "zimage_pipeline"
TINY = OUT / "tiny"
TOKENIZER = REPO / ".." / "shared" / "assets" / "qwen3_tokenizer"
PREFIX = "zimage_tiny_diffusers"

TEXT_ENCODER = dict(
    hidden_size=3,
    intermediate_size=8,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=8,
    vocab_size=151936,
    max_position_embeddings=512,
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
    initializer_range=0.5,  # far from identity layers, so the prompt visibly steers the image
)
TRANSFORMER = dict(
    all_patch_size=(2,),
    all_f_patch_size=(1,),
    in_channels=16,
    dim=32,
    n_layers=1,
    n_refiner_layers=1,
    n_heads=2,
    n_kv_heads=2,
    norm_eps=1e-5,
    qk_norm=True,
    cap_feat_dim=3,
    rope_theta=256.0,
    t_scale=1000.0,
    axes_dims=[8, 4, 4],
    axes_lens=[256, 32, 32],
)
VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=16,
    block_out_channels=[8, 8, 8, 8],
    layers_per_block=1,
    norm_num_groups=4,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    act_fn="silu",
    scaling_factor=0.3611,
    shift_factor=0.1159,
    use_quant_conv=False,
    use_post_quant_conv=False,
    mid_block_add_attention=True,
    sample_size=64,
    force_upcast=True,
)
# Larger weights in the joint image+caption blocks and the caption embedder, so that the prompt, the
# negative prompt and the CFG options each move the output image by far more than the tests' tolerance.
CAPTION_GAIN = 3.0
SHIFT = 3.0  # Z-Image Turbo's scheduler_config.json value

PROMPT = "a red fox sitting in fresh snow, morning light"
NEGATIVE = "blurry, low quality"

# Every case: the pipeline and its arguments. width x height; 64x48 gives an 8x6 latent (4x3 patches).
CASES = [
    dict(name="turbo", pipeline="txt2img", prompt=PROMPT, width=64, height=48, steps=3,
         guidance=0.0, seed=42),
    dict(name="base", pipeline="txt2img", prompt=PROMPT, negative_prompt=NEGATIVE, width=48,
         height=64, steps=3, guidance=4.0, seed=7),
    dict(name="base_cfgnorm", pipeline="txt2img", prompt=PROMPT, negative_prompt=NEGATIVE,
         width=32, height=32, steps=3, guidance=4.0, cfg_normalization=True, seed=7),
    # t_norm = 1 - sigma is 0, 0.143, 0.4 over the three steps: CFG runs on the first only.
    dict(name="base_cfgtrunc", pipeline="txt2img", prompt=PROMPT, negative_prompt=NEGATIVE,
         width=32, height=32, steps=3, guidance=4.0, cfg_truncation=0.1, seed=8),
    # 8 tokens cut the prompt and the template's tail: max_sequence_length counts the template.
    dict(name="maxlen", pipeline="txt2img", prompt=PROMPT, width=32, height=32, steps=2,
         guidance=0.0, max_sequence_length=8, seed=3),
    dict(name="batch2", pipeline="txt2img", prompt=PROMPT, negative_prompt="", width=32, height=48,
         steps=2, guidance=3.0, num_images=2, seed=11),
    dict(name="img2img", pipeline="img2img", prompt=PROMPT, width=64, height=48, steps=4,
         guidance=0.0, strength=0.6, seed=5),
    dict(name="img2img_batch2", pipeline="img2img", prompt=PROMPT, negative_prompt=NEGATIVE,
         width=64, height=48, steps=3, guidance=2.0, strength=0.8, num_images=2, seed=6),
    dict(name="inpaint", pipeline="inpaint", prompt=PROMPT, width=64, height=48, steps=3,
         guidance=0.0, strength=1.0, seed=9),
    dict(name="inpaint_strength", pipeline="inpaint", prompt=PROMPT, negative_prompt=NEGATIVE,
         width=64, height=48, steps=4, guidance=4.0, strength=0.7, seed=10),
    # Inputs of a size that is not whole patches: the pipelines Lanczos-resize them to 64x48
    # (the size rounded down to multiples of 16) before encoding.
    dict(name="img2img_resized", pipeline="img2img", prompt=PROMPT, width=64, height=48, steps=3,
         guidance=0.0, strength=0.7, seed=12, input_size=(71, 53)),
    dict(name="inpaint_resized", pipeline="inpaint", prompt=PROMPT, width=64, height=48, steps=3,
         guidance=0.0, strength=1.0, seed=13, input_size=(71, 53)),
]


def round_to_bf16_(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))


def randomize_(module: torch.nn.Module, gen: torch.Generator, gain_prefixes: tuple[str, ...] = ()) -> None:
    """Default inits leave norms at one and pad tokens at zero; perturb them so they matter.
    Matrices under gain_prefixes are multiplied by CAPTION_GAIN."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 or "pad_token" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
            elif name.startswith(gain_prefixes):
                p.mul_(CAPTION_GAIN)


def store_bf16(folder: Path, keep_f32=lambda name: False) -> None:
    """Rewrites every safetensors file in `folder` with BF16 tensors (exact: values are bf16 already)."""
    for path in folder.glob("*.safetensors"):
        tensors = load_file(str(path))
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            meta = json.loads(f.read(header_len)).get("__metadata__", {})
        out = {}
        for name, t in tensors.items():
            if not keep_f32(name):
                assert torch.equal(t.to(torch.bfloat16).to(torch.float32), t), name
                t = t.to(torch.bfloat16)
            out[name] = t.contiguous()
        save_file(out, str(path), metadata=meta)


def make_inputs() -> tuple[Image.Image, Image.Image]:
    """A 64x48 init image (smooth colours plus a disc) and a grey-level mask with values around 127/128."""
    h, w = 48, 64
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([255 * x / (w - 1), 255 * y / (h - 1), 128 + 100 * np.sin(x / 5 + y / 7)], -1)
    disc = (x - 40) ** 2 + (y - 20) ** 2 < 12**2
    img[disc] = [250, 240, 30]
    init = Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")
    mask = np.zeros((h, w), np.uint8)
    mask[8:40, 16:56] = 255
    mask[8:40, 16:24] = 128  # >= 0.5 after /255: repaint
    mask[8:40, 48:56] = 127  # < 0.5: keep
    return init, Image.fromarray(mask, "L")


def build_pipeline():
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import AutoTokenizer, Qwen3Config, Qwen3Model

    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    transformer = ZImageTransformer2DModel(**TRANSFORMER).eval()
    text_encoder = Qwen3Model(Qwen3Config(**TEXT_ENCODER)).eval()
    vae = AutoencoderKL(**VAE).eval()
    randomize_(transformer, gen, gain_prefixes=("layers.", "cap_embedder."))
    randomize_(text_encoder, gen)
    randomize_(vae, gen)
    for m in (transformer, text_encoder, vae):
        round_to_bf16_(m)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=SHIFT, use_dynamic_shifting=False)
    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER))
    return ZImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          transformer=transformer)


def run_case(pipes: dict, case: dict, init: Image.Image, mask: Image.Image) -> list[Image.Image]:
    kwargs = dict(
        prompt=case["prompt"],
        negative_prompt=case.get("negative_prompt"),
        num_inference_steps=case["steps"],
        guidance_scale=case["guidance"],
        cfg_normalization=case.get("cfg_normalization", False),
        cfg_truncation=case.get("cfg_truncation", 1.0),
        num_images_per_prompt=case.get("num_images", 1),
        generator=torch.Generator("cpu").manual_seed(case["seed"]),
        max_sequence_length=case.get("max_sequence_length", 512),
        output_type="pil",
    )
    if case["pipeline"] == "txt2img":
        out = pipes["txt2img"](width=case["width"], height=case["height"], **kwargs)
    elif case["pipeline"] == "img2img":
        out = pipes["img2img"](image=init, strength=case["strength"], **kwargs)
    else:
        out = pipes["inpaint"](image=init, mask_image=mask, strength=case["strength"], **kwargs)
    return out.images


def run_cases(out, prefix: str, cases: list[dict], run, inputs=None) -> list[dict]:
    """Saves the init image and mask (`inputs`, else make_inputs()), runs every case with run(case, init,
    mask) -> PIL images, saves them as <prefix>_<case>_<k>.png and returns the cases with their expected
    files and inputs."""
    init, mask = inputs or make_inputs()
    init.save(out / f"{prefix}_init.png")
    mask.save(out / f"{prefix}_mask.png")
    entries = []
    for case in cases:
        files = []
        case_init, case_mask = init, mask
        init_name, mask_name = f"{prefix}_init.png", f"{prefix}_mask.png"
        if "input_size" in case:
            case_init = init.resize(case["input_size"], Image.BICUBIC)
            case_mask = mask.resize(case["input_size"], Image.BICUBIC)
            init_name, mask_name = f"{prefix}_{case['name']}_init.png", f"{prefix}_{case['name']}_mask.png"
            case_init.save(out / init_name)
            if case["pipeline"] == "inpaint":
                case_mask.save(out / mask_name)
        for k, im in enumerate(run(case, case_init, case_mask)):
            name = f"{prefix}_{case['name']}_{k}.png"
            im.save(out / name)
            files.append(name)
            arr = np.asarray(im)
            print(f"{case['name']}[{k}]: {im.size}, mean {arr.mean():.1f}, std {arr.std():.1f}, "
                  f"0s {np.mean(arr == 0):.2f}, 255s {np.mean(arr == 255):.2f}")
        entry = dict(case, expected=files)
        if case["pipeline"] != "txt2img":
            entry["init_image"] = init_name
        if case["pipeline"] == "inpaint":
            entry["mask_image"] = mask_name
        entries.append(entry)
    return entries


def main() -> None:
    from diffusers import ZImageImg2ImgPipeline, ZImageInpaintPipeline

    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    pipe = build_pipeline()
    pipes = {
        "txt2img": pipe,
        "img2img": ZImageImg2ImgPipeline(**pipe.components),
        "inpaint": ZImageInpaintPipeline(**pipe.components),
    }
    for p in pipes.values():
        p.set_progress_bar_config(disable=True)

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    pipe.save_pretrained(str(TINY), safe_serialization=True)
    shutil.rmtree(TINY / "tokenizer")
    store_bf16(TINY / "text_encoder")
    store_bf16(TINY / "vae")
    store_bf16(TINY / "transformer", keep_f32=lambda name: "pad_token" in name)

    cases = run_cases(OUT, PREFIX, CASES, lambda case, init, mask: run_case(pipes, case, init, mask))

    payload = {
        "_meta": fixture_metadata(__file__, SEED, torch_cpu_capability=torch.backends.cpu.get_cpu_capability()),
        "model": "tiny",
        "tokenizer": "../shared/assets/qwen3_tokenizer",
        "shift": SHIFT,
        "cases": cases,
    }
    (OUT / f"{PREFIX}_cases.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
