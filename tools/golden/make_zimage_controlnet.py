"""Golden fixtures for Z-Image's ControlNet (VideoX-Fun "Z-Image-Turbo-Fun-Controlnet-Union").

The reference is diffusers' ZImageControlNetModel driving ZImageTransformer2DModel, with one
change for the 2.x files: their control refiner blocks also return a hint per main noise-refiner
layer, which the model's authors (VideoX-Fun `ZImageControlTransformer2DModel.forward`, its
`BaseZImageTransformerBlock`) and ComfyUI add to the MAIN model's noise-refiner output
(x = refiner_j(x) + hint_j * scale). diffusers 0.42.1 adds them only to the ControlNet's private
copy of that stream (its transformer takes hints for the main layers alone). `videox_forward`
below runs diffusers' modules and adds those hints to the main stream with forward hooks, so
everything else is diffusers' arithmetic. For 1.0 files (no refiner hints) it is diffusers
unchanged.

A tiny random Z-Image transformer (dim 64, 4 main layers, 2 refiner layers) and three tiny
ControlNets, one per checkpoint generation, written as the released single files are (only the
control keys, VideoX-Fun names, no config):
  v1   control_in_dim 16, 2 control layers at main layers [0, 2], 2 plain control refiner blocks
  v20  control_in_dim 33, 4 control layers at [0, 1, 2, 3] that also run as the refiner stage
       (add_control_noise_refiner="control_layers"); the file also holds the untrained
       control_noise_refiner blocks with zero projections, as the 2.0 release does
  v21  control_in_dim 33, 2 control layers at [0, 2], 2 control refiner blocks with hints
       (add_control_noise_refiner="control_noise_refiner")
Layer places follow the releases' rule: n_layers / n_control_layers apart, from 0.

Writes tests/fixtures/zimage_controlnet/:
  tiny_transformer/                      its diffusers folder
  zimage_controlnet_tiny_<v>.safetensors the ControlNet files
Every weight is rounded to bf16 and stored as BF16 (the reference runs in float32 on exactly those
numbers).
  zimage_controlnet_tiny_io.safetensors  inputs and outputs per case
"""

from __future__ import annotations

import json
import shutil

import torch
from diffusers import ZImageControlNetModel, ZImageTransformer2DModel

from common import FIXTURES, fixture_metadata, save_fixture
from make_zimage_dit import CONFIG as DIT_CONFIG, randomize

SEED = 20261206
OUT = FIXTURES / "zimage_controlnet"
# make_zimage_dit.py's tiny transformer, with 4 main and 2 refiner layers so that hints land at
# several places.
TRANSFORMER = dict(DIT_CONFIG, n_layers=4, n_refiner_layers=2)
SHARED = dict(dim=64, n_refiner_layers=2, n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True)
CONTROLNETS = {
    "v1": dict(control_layers_places=[0, 2], control_refiner_layers_places=None, control_in_dim=16,
               add_control_noise_refiner=None),
    "v20": dict(control_layers_places=[0, 1, 2, 3], control_refiner_layers_places=[0, 1], control_in_dim=33,
                add_control_noise_refiner="control_layers"),
    "v21": dict(control_layers_places=[0, 2], control_refiner_layers_places=[0, 1], control_in_dim=33,
                add_control_noise_refiner="control_noise_refiner"),
}
# name: (controlnet, conditioning scale, samples as (latent H, latent W, caption length, t)).
# The batch case has captions of different padded lengths (64 and 32), so every stage is masked.
CASES = {
    "v1_sq8_cap5": ("v1", 0.75, [(8, 8, 5, 0.3)]),
    "v1_h6w10_cap33": ("v1", 1.0, [(6, 10, 33, 0.9)]),
    "v20_sq8_cap5": ("v20", 0.75, [(8, 8, 5, 0.3)]),
    "v21_h10w6_cap20": ("v21", 0.9, [(10, 6, 20, 0.6)]),
    "v21_batch_cap40_cap7": ("v21", 0.75, [(8, 8, 40, 0.3), (8, 8, 7, 0.97)]),
}


def refiner_hint_source(controlnet: ZImageControlNetModel):
    """The blocks whose outputs carry the refiner hints (None for 1.0 files)."""
    mode = controlnet.config.add_control_noise_refiner
    if mode == "control_noise_refiner":
        return controlnet.control_noise_refiner
    if mode == "control_layers":
        return controlnet.control_layers
    return None


def videox_forward(transformer, controlnet, latents, t, caps, control, scale):
    """One forward with the ControlNet as VideoX-Fun runs it (module docstring)."""
    x = [l.unsqueeze(1) for l in latents]
    ctrl = [c.unsqueeze(1) for c in control]
    refiner_hints: dict[int, torch.Tensor] = {}
    hooks = []
    source = refiner_hint_source(controlnet)
    if source is not None:
        # A chain block returns torch.stack([hint_0, ..., hint_j, c]); the first call of block j
        # is the refiner stage (in "control_layers" mode the same blocks run again later).
        for j in controlnet.config.control_refiner_layers_places:
            def capture(module, args, output, j=j):
                refiner_hints.setdefault(j, output[-2])
            hooks.append(source[j].register_forward_hook(capture))
    with torch.no_grad():
        samples = controlnet(x, t, caps, ctrl, conditioning_scale=scale)
    for h in hooks:
        h.remove()
    assert source is None or sorted(refiner_hints) == controlnet.config.control_refiner_layers_places
    hooks = []
    for j, hint in refiner_hints.items():
        def add(module, args, output, hint=hint):
            return output + hint * scale
        hooks.append(transformer.noise_refiner[j].register_forward_hook(add))
    with torch.no_grad():
        out = transformer(x=x, t=t, cap_feats=caps, controlnet_block_samples=samples, return_dict=False)[0]
    for h in hooks:
        h.remove()
    return torch.stack([o.squeeze(1) for o in out])


def released_file(name: str, controlnet: ZImageControlNetModel, gen: torch.Generator) -> dict:
    """The ControlNet's own weights as the released single file holds them."""
    sd = {k: v.clone() for k, v in controlnet.state_dict().items()}
    if name == "v20":
        # The 2.0 release still carries control_noise_refiner blocks its forward never runs; their
        # before_proj stayed at the zero init, which is how loaders tell 2.0 from 2.1.
        spare = ZImageControlNetModel(**SHARED, **{**CONTROLNETS["v21"], "control_in_dim": 33})
        randomize(spare, gen)
        for k, v in spare.state_dict().items():
            if k.startswith("control_noise_refiner."):
                sd[k] = torch.zeros_like(v) if "before_proj" in k or "after_proj" in k else v.clone()
    return sd


def round_to_bf16_(model: torch.nn.Module) -> None:
    """Weights that bf16 holds exactly, so the files can be stored in bf16 (half the bytes)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())


def bf16(sd: dict) -> dict:
    return {k: v.to(torch.bfloat16) for k, v in sd.items()}


def main() -> None:
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    transformer = ZImageTransformer2DModel(**TRANSFORMER).eval()
    randomize(transformer, gen)
    round_to_bf16_(transformer)
    folder = OUT / "tiny_transformer"
    if folder.exists():
        shutil.rmtree(folder)
    ZImageTransformer2DModel.from_config(transformer.config).to(torch.bfloat16).save_pretrained(folder)
    from safetensors.torch import save_file
    save_file(bf16(transformer.state_dict()), folder / "diffusion_pytorch_model.safetensors")
    (folder / "zflow_fixture.json").write_text(json.dumps(fixture_metadata(__file__, SEED), indent=1) + "\n")

    controlnets = {}
    for name, config in CONTROLNETS.items():
        controlnet = ZImageControlNetModel(**SHARED, **config).eval()
        randomize(controlnet, gen)
        round_to_bf16_(controlnet)
        save_fixture(f"zimage_controlnet/zimage_controlnet_tiny_{name}.safetensors",
                     bf16(released_file(name, controlnet, gen)), __file__, SEED, config=config)
        controlnets[name] = ZImageControlNetModel.from_transformer(controlnet, transformer)

    io = {}
    for case, (name, scale, samples) in CASES.items():
        in_dim = CONTROLNETS[name]["control_in_dim"]
        latents = [torch.randn(16, h, w, generator=gen) for h, w, _, _ in samples]
        control = [torch.randn(in_dim, h, w, generator=gen) for h, w, _, _ in samples]
        caps = [torch.randn(n, TRANSFORMER["cap_feat_dim"], generator=gen) for _, _, n, _ in samples]
        t = torch.tensor([s[3] for s in samples], dtype=torch.float32)
        io[f"{case}.latents"] = torch.stack(latents)
        io[f"{case}.control"] = torch.stack(control)
        io[f"{case}.t"] = t
        io[f"{case}.scale"] = torch.tensor([scale])
        for i, c in enumerate(caps):
            io[f"{case}.caption{i}"] = c
        io[f"{case}.output"] = videox_forward(transformer, controlnets[name], latents, t, caps, control, scale)
        with torch.no_grad():
            plain = transformer(x=[l.unsqueeze(1) for l in latents], t=t, cap_feats=caps, return_dict=False)[0]
        plain = torch.stack([o.squeeze(1) for o in plain])
        print(case, "output absmax", io[f"{case}.output"].abs().max().item(),
              "difference the ControlNet makes", (io[f"{case}.output"] - plain).abs().max().item())
    save_fixture("zimage_controlnet/zimage_controlnet_tiny_io.safetensors", io, __file__, SEED,
                 cases={k: [v[0], v[1], [list(s) for s in v[2]]] for k, v in CASES.items()})


if __name__ == "__main__":
    main()
