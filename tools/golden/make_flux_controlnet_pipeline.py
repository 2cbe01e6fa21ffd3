"""Golden fixtures for FLUX.1 with a ControlNet (diffusers FluxControlNetPipeline and its img2img / inpaint
variants) on tiny random models: tests/fixtures/flux_pipeline/tiny_dev (checked bit-equal to a rebuild) and two
tiny ControlNets of its width:
  union   InstantX / Shakker style: the control image's VAE latents (a posterior sample drawn from the
          generator before the start noise), 1 double + 1 single block, 3 modes, guidance embedder
  xlabs   XLabs style: the control image's pixels in [-1, 1] through the hint block (no random draw), 1 double
          block, patch 2
Their zero-initialised layers (controlnet_blocks, controlnet_x_embedder) are random here, with gains so the
control moves the output far past the tests' tolerance; every weight is bf16-rounded and stored bf16. Runs with
torch.Generator("cpu").manual_seed(seed) and writes tests/fixtures/flux_controlnet_pipeline/:
  union/, xlabs/                              the ControlNets (save_pretrained: config.json + safetensors)
  flux_controlnet_tiny_diffusers_<case>_control.png, ..._init.png, ..._mask.png   the inputs
  flux_controlnet_tiny_diffusers_<case>_<k>.png, ..._cases.json                     the outputs and the cases
"""

from __future__ import annotations

import os

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn; tiny_dev was built under it too
import shutil  # noqa: E402

import torch  # noqa: E402

from common import FIXTURES, save_case_images, write_cases  # noqa: E402
from make_flux_control_pipeline import make_control, run_control_case  # noqa: E402
from make_flux_fill_pipeline import beside_dev_fields, check_same_as_committed  # noqa: E402
from make_flux_pipeline import PROMPT, PROMPT_2, TRANSFORMER, TRANSFORMER_GAINS, build_pipelines, randomize_  # noqa: E402
from make_zimage_pipeline import make_inputs, round_to_bf16_, store_bf16  # noqa: E402

SEED = 20261209
OUT = FIXTURES / "flux_controlnet_pipeline"
PREFIX = "flux_controlnet_tiny_diffusers"
CONTROLNETS = {
    "union": dict(TRANSFORMER, num_layers=1, num_single_layers=1, num_mode=3, guidance_embeds=True),
    "xlabs": dict(TRANSFORMER, num_layers=1, num_single_layers=0, patch_size=2, conditioning_embedding_channels=16,
                  guidance_embeds=True),
    # Union's blocks without modes, to run beside it.
    "plain": dict(TRANSFORMER, num_layers=1, num_single_layers=1, guidance_embeds=True),
}
# The layers diffusers starts at zero, and the hint block's convolutions, get weights of this scale (over
# sqrt(fan_in)), so the control shows through.
CONTROL_GAIN = 2.0
# The Union cases keep 16 T5 tokens: the mode is one more text token, and among 512 it would hardly show.
UNION_T5_TOKENS = 16

CASES = [
    # The Union ControlNet's mode 2 (depth in the InstantX / Shakker releases) at scale 0.7.
    dict(name="union", controlnet="union", prompt=PROMPT, control_size=(64, 48), mode=2, scale=0.7, width=64,
         height=48, steps=3, guidance=3.5, max_sequence_length=UNION_T5_TOKENS, seed=3),
    # A batch of two under true CFG with a separate T5 prompt, the control image of another size (resized), and
    # the ControlNet off for the first of 3 steps (control_guidance_start 0.3: step i acts when i / 3 >= 0.3).
    dict(name="union_true_cfg_batch2_window", controlnet="union", prompt=PROMPT, prompt_2=PROMPT_2,
         negative_prompt="blurry", true_cfg_scale=2.0, control_size=(80, 56), mode=0, scale=1.0,
         control_start=0.3, width=64, height=48, steps=3, guidance=4.0, num_images=2,
         max_sequence_length=UNION_T5_TOKENS, seed=8),
    # XLabs: the pixels through the hint block, its single sample repeated; off for the last step.
    dict(name="xlabs", controlnet="xlabs", prompt=PROMPT, control_size=(64, 48), scale=0.9, control_end=0.7,
         width=64, height=48, steps=3, guidance=3.5, seed=4),
    # FluxControlNetImg2ImgPipeline: the control image's sample, then the init image's, then the noise.
    dict(name="union_img2img", controlnet="union", pipeline="img2img", prompt=PROMPT, control_size=(64, 48),
         mode=1, scale=0.8, width=64, height=48, steps=4, strength=0.7, guidance=7.0,
         max_sequence_length=UNION_T5_TOKENS, seed=5),
    # Two controls for the one Union ControlNet (FluxMultiControlNetModel([union]): their samples add up), each
    # with its mode and scale, the second (the edges mirrored) off for the last step; each control image's
    # posterior sample drawn in turn before the noise.
    dict(name="union_two_controls", controlnet="union", prompt=PROMPT,
         controls=[dict(size=(64, 48), mode=2, scale=0.6), dict(size=(64, 48), mirrored=True, mode=0, scale=0.5,
                                                                   end=0.7)],
         width=64, height=48, steps=3, guidance=3.5, max_sequence_length=UNION_T5_TOKENS, seed=12),
    # Two ControlNets side by side (FluxMultiControlNetModel([union, plain])), one control image each; the plain
    # one acts from step 2 of 3.
    dict(name="union_plain_side_by_side", controlnet=["union", "plain"], prompt=PROMPT,
         controls=[dict(size=(64, 48), mode=2, scale=0.7), dict(size=(64, 48), mirrored=True, scale=0.6,
                                                                   start=0.3)],
         width=64, height=48, steps=3, guidance=3.5, max_sequence_length=UNION_T5_TOKENS, seed=13),
    # FluxControlNetInpaintPipeline: as img2img, the kept part blended back after every step.
    dict(name="xlabs_inpaint", controlnet="xlabs", pipeline="inpaint", prompt=PROMPT, control_size=(64, 48),
         scale=1.0, width=64, height=48, steps=4, strength=0.8, guidance=5.0, seed=6),
]


def make_controlnet(config: dict, gen: torch.Generator):
    from diffusers import FluxControlNetModel

    net = FluxControlNetModel(**config).eval()
    randomize_(net, gen, TRANSFORMER_GAINS)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim == 2 and (name.startswith("controlnet_blocks") or name.startswith("controlnet_single_blocks")
                                or name.startswith("controlnet_x_embedder")):
                p.copy_(CONTROL_GAIN * torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            elif name.startswith("input_hint_block.") and p.ndim == 4:
                p.copy_(CONTROL_GAIN * torch.randn(p.shape, generator=gen) / (p.shape[1] * 9) ** 0.5)
    round_to_bf16_(net)
    return net


def run_multi_control_case(nets, dev, case: dict) -> dict:
    """A case of several controls, as FluxControlNetPipeline runs a FluxMultiControlNetModel holding `nets` (one:
    it reads every control; several: one control each); each control's image is saved as <case>_control<i>.png."""
    from diffusers import FluxControlNetPipeline, FluxMultiControlNetModel
    from PIL import Image

    pipe = FluxControlNetPipeline(controlnet=FluxMultiControlNetModel(nets), **{k: dev.components[k] for k in (
        "scheduler", "transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")})
    pipe.set_progress_bar_config(disable=True)
    images, controls = [], []
    for i, c in enumerate(case["controls"]):
        image = make_control(c["size"])
        if c.get("mirrored"):
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        name = f"{PREFIX}_{case['name']}_control{i}.png"
        image.save(OUT / name)
        images.append(image)
        controls.append({k: v for k, v in dict(c, image=name).items() if k not in ("size", "mirrored")})
    outputs = pipe(
        prompt=case["prompt"],
        control_image=images,
        control_mode=[c.get("mode") for c in case["controls"]],
        controlnet_conditioning_scale=[c["scale"] for c in case["controls"]],
        control_guidance_start=[c.get("start", 0.0) for c in case["controls"]],
        control_guidance_end=[c.get("end", 1.0) for c in case["controls"]],
        num_inference_steps=case["steps"],
        guidance_scale=case["guidance"],
        generator=torch.Generator("cpu").manual_seed(case["seed"]),
        width=case["width"],
        height=case["height"],
        max_sequence_length=case["max_sequence_length"],
        output_type="pil",
    ).images
    return dict(case, controls=controls, expected=save_case_images(OUT, PREFIX, case["name"], outputs))


def main() -> None:
    from diffusers import FluxControlNetImg2ImgPipeline, FluxControlNetInpaintPipeline, FluxControlNetPipeline

    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    dev = build_pipelines()["dev"]
    check_same_as_committed(dev)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    nets = {name: make_controlnet(config, gen) for name, config in CONTROLNETS.items()}
    for name, net in nets.items():
        net.save_pretrained(str(OUT / name), safe_serialization=True)
        store_bf16(OUT / name)
    classes = {"txt2img": FluxControlNetPipeline, "img2img": FluxControlNetImg2ImgPipeline,
               "inpaint": FluxControlNetInpaintPipeline}
    init, mask = make_inputs()
    init.save(OUT / f"{PREFIX}_init.png")
    mask.save(OUT / f"{PREFIX}_mask.png")

    entries = []
    for case in CASES:
        if "controls" in case:
            names = case["controlnet"] if isinstance(case["controlnet"], list) else [case["controlnet"]]
            entries.append(run_multi_control_case([nets[n] for n in names], dev, case))
            continue
        kind = case.get("pipeline", "txt2img")
        pipe = classes[kind](controlnet=nets[case["controlnet"]], **{k: dev.components[k] for k in (
            "scheduler", "transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")})
        pipe.set_progress_bar_config(disable=True)
        control = make_control(case["control_size"])
        control_name = f"{PREFIX}_{case['name']}_control.png"
        control.save(OUT / control_name)
        kwargs = dict(
            prompt=case["prompt"],
            prompt_2=case.get("prompt_2"),
            control_image=control,
            control_mode=case.get("mode"),
            controlnet_conditioning_scale=case["scale"],
            control_guidance_start=case.get("control_start", 0.0),
            control_guidance_end=case.get("control_end", 1.0),
            num_inference_steps=case["steps"],
            guidance_scale=case["guidance"],
            num_images_per_prompt=case.get("num_images", 1),
            generator=torch.Generator("cpu").manual_seed(case["seed"]),
            width=case["width"],
            height=case["height"],
            max_sequence_length=case.get("max_sequence_length", 512),
            output_type="pil",
        )
        if "true_cfg_scale" in case:
            kwargs.update(negative_prompt=case["negative_prompt"], true_cfg_scale=case["true_cfg_scale"])
        entries.append(run_control_case(pipe, case, kwargs, init, mask, control_name, OUT, PREFIX))

    write_cases(OUT, PREFIX, __file__, SEED, entries, **beside_dev_fields())


if __name__ == "__main__":
    main()
