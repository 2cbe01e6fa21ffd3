"""Golden fixtures for Z-Image with a ControlNet, end to end (diffusers ZImageControlNetPipeline and
ZImageControlNetInpaintPipeline).

The tiny Z-Image pipeline of make_zimage_pipeline.py (tests/fixtures/zimage_pipeline/tiny, with the
real Qwen3 tokenizer) plus two tiny random ControlNets for its transformer (dim 32, 1 main layer,
1 refiner layer), stored as the released single files are (control keys only, BF16, no config):
  v1   control_in_dim 16, one control layer at main layer 0, 2 plain refiner blocks (Union 1.0)
  v21  control_in_dim 33, one control layer at 0, 2 control refiner blocks whose first hint goes
       to the main noise refiner (Union 2.1)
The 2.x refiner hints are added to the main model's noise refiner as the model's authors
(VideoX-Fun) and ComfyUI do; diffusers 0.42.1 adds them only to the ControlNet's own copy of that
stream, so for v21 the pipeline's ControlNet and transformer are hooked (`VideoXRefinerHints`, the
same rule as make_zimage_controlnet.py). Everything else is the diffusers pipelines unchanged.

Writes tests/fixtures/zimage_controlnet_pipeline/:
  zimage_controlnet_pipeline_tiny_<v>.safetensors   the ControlNets
  zimage_controlnet_pipeline_control.png, ..._init.png, ..._mask.png   the inputs (64x48), and a
      71x53 control image for the case that resizes it
  zimage_controlnet_pipeline_<case>_<k>.png          each case's output images
  zimage_controlnet_pipeline_cases.json              the cases, their files, the torch CPU capability
"""

from __future__ import annotations

import copy
import json
import os
import shutil

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # as make_flux2_pipeline.py: zflow's default randn

import numpy as np
import torch
from PIL import Image

from common import FIXTURES, fixture_metadata, save_fixture
from make_zimage_controlnet import refiner_hint_source
from make_zimage_pipeline import PROMPT, NEGATIVE, TINY, TOKENIZER, make_inputs, round_to_bf16_

SEED = 20261207
OUT = FIXTURES / "zimage_controlnet_pipeline"
PREFIX = "zimage_controlnet_pipeline"
SHARED = dict(dim=32, n_refiner_layers=2, n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True)
CONTROLNETS = {
    "v1": dict(control_layers_places=[0], control_refiner_layers_places=None, control_in_dim=16,
               add_control_noise_refiner=None),
    "v21": dict(control_layers_places=[0], control_refiner_layers_places=[0], control_in_dim=33,
                add_control_noise_refiner="control_noise_refiner"),
}
# Control scales above the usual 0.75 and weights scaled up (CONTROL_GAIN) so the control image
# moves the output far past the tests' tolerance.
CONTROL_GAIN = 3.0
CASES = [
    dict(name="v1_turbo", pipeline="control", controlnet="v1", prompt=PROMPT, width=64, height=48,
         steps=3, guidance=0.0, scale=1.0, seed=21),
    dict(name="v1_batch2_resized", pipeline="control", controlnet="v1", prompt=PROMPT, width=64,
         height=48, steps=2, guidance=0.0, scale=0.75, seed=22, num_images=2, control_size=(71, 53)),
    dict(name="v21_cfg", pipeline="control", controlnet="v21", prompt=PROMPT, negative_prompt=NEGATIVE,
         width=64, height=48, steps=3, guidance=3.0, scale=0.9, seed=23),
    dict(name="v21_inpaint", pipeline="inpaint", controlnet="v21", prompt=PROMPT, width=64, height=48,
         steps=3, guidance=0.0, scale=1.0, seed=24),
]


def make_control() -> Image.Image:
    """A 64x48 edge-map-like control image: white lines on black."""
    h, w = 48, 64
    img = np.zeros((h, w, 3), np.uint8)
    img[10:12, 6:58] = 255
    img[10:40, 30:32] = 255
    y, x = np.mgrid[0:h, 0:w]
    ring = np.abs(np.hypot(x - 18, y - 30) - 9) < 1.2
    img[ring] = 255
    return Image.fromarray(img, "RGB")


def randomize_(module: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 and "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(CONTROL_GAIN * torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)


class VideoXRefinerHints:
    """Adds a 2.x ControlNet's refiner hints to the main noise refiner (module docstring)."""

    def __init__(self, pipe):
        cn, tr = pipe.controlnet, pipe.transformer
        source = refiner_hint_source(cn)
        places = cn.config.control_refiner_layers_places
        self.hints = None
        self.inside = False
        plain_forward = cn.forward

        def forward(x, t, cap_feats, control_context, conditioning_scale=1.0, **kwargs):
            captured = {}

            def capture(module, args, output, j):
                captured.setdefault(j, output[-2])  # returns None: the output stays as it is

            hooks = [source[j].register_forward_hook(lambda m, a, o, j=j: capture(m, a, o, j)) for j in places]
            self.inside = True
            try:
                out = plain_forward(x, t, cap_feats, control_context, conditioning_scale=conditioning_scale,
                                    **kwargs)
            finally:
                self.inside = False
                for h in hooks:
                    h.remove()
            assert sorted(captured) == places
            self.hints = {j: h * conditioning_scale for j, h in captured.items()}
            return out

        cn.forward = forward
        for j in places:
            tr.noise_refiner[j].register_forward_hook(
                lambda m, a, o, j=j: o if self.inside or self.hints is None else o + self.hints[j])


def main() -> None:
    from diffusers import (ZImageControlNetInpaintPipeline, ZImageControlNetModel, ZImageControlNetPipeline,
                           ZImagePipeline)
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    base = ZImagePipeline.from_pretrained(str(TINY), tokenizer=AutoTokenizer.from_pretrained(str(TOKENIZER)),
                                          torch_dtype=torch.float32)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    pipes = {}
    for name, config in CONTROLNETS.items():
        controlnet = ZImageControlNetModel(**SHARED, **config).eval()
        randomize_(controlnet, gen)
        round_to_bf16_(controlnet)
        save_fixture(f"zimage_controlnet_pipeline/{PREFIX}_tiny_{name}.safetensors",
                     {k: v.to(torch.bfloat16) for k, v in controlnet.state_dict().items()}, __file__, SEED,
                     config=config)
        # A transformer of its own, so that one ControlNet's hooks never touch another's runs.
        components = dict(base.components, controlnet=controlnet, transformer=copy.deepcopy(base.transformer))
        for kind, cls in (("control", ZImageControlNetPipeline), ("inpaint", ZImageControlNetInpaintPipeline)):
            if kind == "inpaint" and config["control_in_dim"] == 16:
                continue
            pipe = cls(**components)
            pipe.set_progress_bar_config(disable=True)
            pipes[(kind, name)] = pipe
        if config["add_control_noise_refiner"] is not None:
            VideoXRefinerHints(pipes[("control", name)])  # once: both pipelines share its modules

    control = make_control()
    init, mask = make_inputs()
    control.save(OUT / f"{PREFIX}_control.png")
    init.save(OUT / f"{PREFIX}_init.png")
    mask.save(OUT / f"{PREFIX}_mask.png")
    entries = []
    for case in CASES:
        case_control, control_name = control, f"{PREFIX}_control.png"
        if "control_size" in case:
            case_control = control.resize(case["control_size"], Image.BICUBIC)
            control_name = f"{PREFIX}_{case['name']}_control.png"
            case_control.save(OUT / control_name)
        kwargs = dict(
            prompt=case["prompt"], negative_prompt=case.get("negative_prompt"), width=case["width"],
            height=case["height"], num_inference_steps=case["steps"], guidance_scale=case["guidance"],
            num_images_per_prompt=case.get("num_images", 1), control_image=case_control,
            controlnet_conditioning_scale=case["scale"],
            generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="pil")
        if case["pipeline"] == "inpaint":
            kwargs.update(image=init, mask_image=mask)
        images = pipes[(case["pipeline"], case["controlnet"])](**kwargs).images
        # The same run without the ControlNet's hints, to show they matter.
        plain = pipes[(case["pipeline"], case["controlnet"])](**dict(kwargs, controlnet_conditioning_scale=0.0,
                                                                      generator=torch.Generator("cpu").manual_seed(
                                                                          case["seed"]))).images
        files = []
        for k, im in enumerate(images):
            files.append(f"{PREFIX}_{case['name']}_{k}.png")
            im.save(OUT / files[-1])
            diff = np.abs(np.asarray(im).astype(int) - np.asarray(plain[k]).astype(int))
            print(f"{case['name']}[{k}]: mean {np.asarray(im).mean():.1f}, the ControlNet moves pixels by "
                  f"{diff.mean():.1f} on average (max {diff.max()})")
        entry = dict(case, expected=files, control_image=control_name,
                     controlnet_file=f"{PREFIX}_tiny_{case['controlnet']}.safetensors")
        if case["pipeline"] == "inpaint":
            entry.update(init_image=f"{PREFIX}_init.png", mask_image=f"{PREFIX}_mask.png")
        entries.append(entry)

    payload = {
        "_meta": fixture_metadata(__file__, SEED, torch_cpu_capability=torch.backends.cpu.get_cpu_capability()),
        "model": "../zimage_pipeline/tiny",
        "tokenizer": "../shared/assets/qwen3_tokenizer",
        "cases": entries,
    }
    (OUT / f"{PREFIX}_cases.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
