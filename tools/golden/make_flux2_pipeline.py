"""Golden fixtures for the FLUX.2 klein pipeline (text-to-image and editing with reference images,
distilled and base) on a tiny random model.

Builds diffusers' Flux2KleinPipeline from tiny random components and the REAL Qwen3 tokenizer
(../shared/assets/qwen3_tokenizer), runs it with torch.Generator("cpu").manual_seed(seed), and writes:
  tests/fixtures/flux2_pipeline/tiny_klein/, tests/fixtures/flux2_pipeline/tiny_klein_base/
      the diffusers folders (save_pretrained) WITHOUT tokenizer/ (a shared asset, passed separately):
      the same weights, is_distilled true (4-step klein: no CFG) and false (klein base: CFG against
      the empty prompt)
  tests/fixtures/flux2_pipeline/flux2_tiny_diffusers_<case>_<k>.png
      each case's uint8 output images (PIL, as the pipeline returns them)
  tests/fixtures/flux2_pipeline/flux2_tiny_diffusers_ref_*.png
      the reference images the editing cases pass, and as ..._prepared.png each as the pipeline hands
      it to the VAE (checked, resized past 1024^2 pixels, cropped; the [-1, 1] tensor's pixels),
      restated from its __call__ with its own image processor
  tests/fixtures/flux2_pipeline/flux2_tiny_diffusers_cases.json
      every case's request and expected files, plus the torch CPU capability the noise was drawn with

Sizes: the text encoder keeps Qwen3's 151,936-row embedding (the real tokenizer's ids reach 151,668)
at hidden size 3, and 28 layers so the pipeline's own hidden-state taps (9, 18, 27) apply; the
transformer's text width is then 3 x 3 = 9. The autoencoder has FLUX.2's 4 levels (16 pixels per
latent token after the 2x2 patchify) at 8 channels. Every weight is rounded to bfloat16 (kept as
float32 in torch, so the reference runs in float32 on exactly those numbers) and stored as BF16; the
BatchNorm statistics stay float32.
"""

from __future__ import annotations

import json
import os
import shutil

# torch.randn's float math follows the CPU kernel; AVX2's is what zflow reproduces by default
# (--torch-rng avx2), so the command-line test can compare with these images too.
os.environ["ATEN_CPU_CAPABILITY"] = "avx2"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import FIXTURES, REPO, fixture_metadata  # noqa: E402
from PIL import Image  # noqa: E402
from make_zimage_pipeline import round_to_bf16_, store_bf16  # noqa: E402

SEED = 20262
OUT = FIXTURES / "flux2_pipeline"
TOKENIZER = REPO / ".." / "shared" / "assets" / "qwen3_tokenizer"
PREFIX = "flux2_tiny_diffusers"

TEXT_ENCODER = dict(
    hidden_size=3,
    intermediate_size=8,
    num_hidden_layers=28,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=8,
    vocab_size=151936,
    max_position_embeddings=1024,
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
    initializer_range=0.5,  # far from identity layers, so the prompt visibly steers the image
)
TRANSFORMER = dict(
    patch_size=1,
    in_channels=128,
    num_layers=1,
    num_single_layers=2,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=9,
    timestep_guidance_channels=256,
    mlp_ratio=3.0,
    axes_dims_rope=(4, 4, 4, 4),
    rope_theta=2000,
    eps=1e-6,
    guidance_embeds=False,
)
VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[8, 8, 8, 8],
    layers_per_block=1,
    latent_channels=32,
    norm_num_groups=4,
    sample_size=64,
    use_quant_conv=True,
    use_post_quant_conv=True,
    mid_block_add_attention=True,
    batch_norm_eps=1e-4,
    patch_size=[2, 2],
)
SCHEDULER = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                 max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096,
                 time_shift_type="exponential")
# Larger text-path weights, so that the prompt and CFG move the image by far more than the tolerance.
TEXT_GAIN = 30.0

PROMPT = "a red fox sitting in fresh snow, morning light"
PROMPT_2 = "一只在雪地里的红狐狸"

# width x height: 64x48 gives a 4x3 grid of latent tokens.
CASES = [
    dict(name="klein", model="tiny_klein", prompt=PROMPT, width=64, height=48, steps=3, seed=42),
    dict(name="klein_batch2", model="tiny_klein", prompt=PROMPT_2, width=48, height=64, steps=2,
         num_images=2, seed=7),
    dict(name="klein_maxlen", model="tiny_klein", prompt=PROMPT, width=32, height=32, steps=2,
         max_sequence_length=10, seed=3),
    dict(name="base", model="tiny_klein_base", prompt=PROMPT, width=64, height=48, steps=3,
         guidance=4.0, seed=5),
    dict(name="base_batch2", model="tiny_klein_base", prompt=PROMPT_2, width=32, height=48, steps=2,
         guidance=2.5, num_images=2, seed=11),
    # Reference images (klein's editing): the output takes the first reference's size unless given;
    # a reference of another size is centre-cropped to multiples of 16, one over 1024^2 pixels first
    # Lanczos-resized to that area.
    dict(name="klein_edit", model="tiny_klein", prompt=PROMPT, steps=3, seed=21, references=["ref_a"]),
    dict(name="klein_edit_two", model="tiny_klein", prompt=PROMPT_2, width=48, height=48, steps=2, seed=22,
         references=["ref_b", "ref_c"]),
    dict(name="base_edit_large", model="tiny_klein_base", prompt=PROMPT, width=64, height=64, steps=2,
         guidance=3.0, seed=23, references=["ref_large"]),
]


def randomize_(module: torch.nn.Module, gen: torch.Generator, gain_prefixes: tuple[str, ...] = ()) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1:
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
            elif name.startswith(gain_prefixes):
                p.mul_(TEXT_GAIN)


def build_pipelines():
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    transformer = Flux2Transformer2DModel(**TRANSFORMER).eval()
    text_encoder = Qwen3ForCausalLM(Qwen3Config(**TEXT_ENCODER)).eval()
    vae = AutoencoderKLFlux2(**VAE).eval()
    randomize_(transformer, gen, gain_prefixes=("context_embedder", "transformer_blocks."))
    randomize_(text_encoder, gen)
    randomize_(vae, gen)
    with torch.no_grad():
        vae.bn.running_mean.copy_(0.3 * torch.randn(vae.bn.running_mean.shape, generator=gen))
        vae.bn.running_var.copy_(0.5 + torch.rand(vae.bn.running_var.shape, generator=gen))
    for m in (transformer, text_encoder, vae):
        round_to_bf16_(m)
    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER))
    pipes = {}
    for model, distilled in (("tiny_klein", True), ("tiny_klein_base", False)):
        pipes[model] = Flux2KleinPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER), vae=vae,
                                          text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
                                          is_distilled=distilled)
        pipes[model].set_progress_bar_config(disable=True)
    return pipes


def make_references() -> dict:
    """Smooth pictures (small PNGs) of several sizes, every side at least the pipeline's 64: 80x64 (whole
    tokens), 87x69 and 100x72 (cropped), 1040x1100 (over 1024^2 pixels: resized, then cropped)."""
    from PIL import Image

    def picture(w: int, h: int, phase: float) -> Image.Image:
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        img = np.stack([255 * x / (w - 1), 255 * y / (h - 1), 128 + 100 * np.sin(x / 9 + y / 13 + phase)], -1)
        disc = (x - 0.6 * w) ** 2 + (y - 0.4 * h) ** 2 < (0.2 * min(w, h)) ** 2
        img[disc] = [250, 240, 30]
        return Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")

    def blocks(w: int, h: int) -> Image.Image:  # flat 80-pixel squares: a large picture in a small PNG
        colours = np.random.default_rng(SEED).integers(0, 256, (h // 80 + 1, w // 80 + 1, 3))
        return Image.fromarray(colours.repeat(80, 0).repeat(80, 1)[:h, :w].astype(np.uint8), "RGB")

    return {"ref_a": picture(80, 64, 0.0), "ref_b": picture(87, 69, 1.0), "ref_c": picture(100, 72, 2.0),
            "ref_large": blocks(1040, 1100)}


def prepare_reference(pipe, image) -> torch.Tensor:
    """What Flux2KleinPipeline.__call__ hands the VAE for one reference image: [1, 3, h, w] in [-1, 1]."""
    pipe.image_processor.check_image_input(image)
    if image.width * image.height > 1024 * 1024:
        image = pipe.image_processor._resize_to_target_area(image, 1024 * 1024)
    multiple = pipe.vae_scale_factor * 2
    width, height = image.width // multiple * multiple, image.height // multiple * multiple
    return pipe.image_processor.preprocess(image, height=height, width=width, resize_mode="crop")


def run_case(pipes: dict, case: dict, references: dict):
    images = [references[name] for name in case.get("references", [])]
    return pipes[case["model"]](
        image=images or None,
        prompt=case["prompt"],
        width=case.get("width"),
        height=case.get("height"),
        num_inference_steps=case["steps"],
        guidance_scale=case.get("guidance", 4.0),  # the pipeline's default; distilled ignores it
        num_images_per_prompt=case.get("num_images", 1),
        generator=torch.Generator("cpu").manual_seed(case["seed"]),
        max_sequence_length=case.get("max_sequence_length", 512),
        output_type="pil",
    ).images


def main() -> None:
    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    pipes = build_pipelines()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    for model, pipe in pipes.items():
        folder = OUT / model
        pipe.save_pretrained(str(folder), safe_serialization=True)
        shutil.rmtree(folder / "tokenizer")
        store_bf16(folder / "text_encoder")
        store_bf16(folder / "transformer")
        store_bf16(folder / "vae", keep_f32=lambda name: name.startswith("bn."))

    references = make_references()
    for name, im in references.items():
        im.save(OUT / f"{PREFIX}_{name}.png")
        # The prepared tensor is x / 255 * 2 - 1 of 8-bit pixels: kept as those pixels (a PNG).
        tensor = prepare_reference(pipes["tiny_klein"], im)
        pixels = torch.round((tensor[0].permute(1, 2, 0) + 1) / 2 * 255).to(torch.uint8)
        assert torch.equal(pixels.float() / 255 * 2 - 1, tensor[0].permute(1, 2, 0)), name
        Image.fromarray(pixels.numpy(), "RGB").save(OUT / f"{PREFIX}_{name}_prepared.png")
    cases = []
    for case in CASES:
        files = []
        for k, im in enumerate(run_case(pipes, case, references)):
            name = f"{PREFIX}_{case['name']}_{k}.png"
            im.save(OUT / name)
            files.append(name)
            arr = np.asarray(im)
            print(f"{case['name']}[{k}]: {im.size}, mean {arr.mean():.1f}, std {arr.std():.1f}, "
                  f"0s {np.mean(arr == 0):.2f}, 255s {np.mean(arr == 255):.2f}")
        entry = dict(case, expected=files)
        if "references" in case:
            entry["references"] = [f"{PREFIX}_{name}.png" for name in case["references"]]
        cases.append(entry)

    payload = {
        "_meta": fixture_metadata(__file__, SEED, torch_cpu_capability=torch.backends.cpu.get_cpu_capability()),
        "tokenizer": "../shared/assets/qwen3_tokenizer",
        "cases": cases,
    }
    (OUT / f"{PREFIX}_cases.json").write_text(json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
