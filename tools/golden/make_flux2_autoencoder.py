"""Golden fixtures for the FLUX.2 autoencoder (diffusers AutoencoderKLFlux2) and the latent
normalisation its pipelines wrap around it, on a tiny random config.

AutoencoderKLFlux2 is FLUX.1's KL autoencoder with 32 latent channels and 1x1 quant convs; the
pipelines patchify its latents 2x2 (128 channels) and normalise them with the checkpoint's
BatchNorm running statistics (eps 1e-4). Tiny: two levels of 16 and 32 channels, one resnet per
encoder level, 8 groups, so an image shrinks 2x in the autoencoder and 4x with the patchify.
Every weight, bias and norm is random, and so are the BatchNorm statistics. Writes:
  tests/fixtures/flux2_autoencoder/tiny_diffusers/vae/{config.json, diffusion_pytorch_model.safetensors}
      save_pretrained (bn.running_mean / running_var / num_batches_tracked included)
  tests/fixtures/flux2_autoencoder/flux2_autoencoder_tiny_original_ae.safetensors
      the same weights under BFL / ComfyUI names: the FLUX.1 AE names of make_autoencoder.py,
      encoder.quant_conv, decoder.post_quant_conv, and bn.* as they are
  tests/fixtures/flux2_autoencoder/flux2_autoencoder_tiny_diffusers_io.safetensors
      image [2, 3, 16, 24] -> `encoded`: Flux2KleinPipeline._encode_vae_image (posterior mean,
      patchify, BatchNorm) [2, 128, 4, 6]; a normalised latent `z` [2, 128, 4, 6] ->
      `decoded`: the end of Flux2KleinPipeline.__call__ (z * sqrt(var + eps) + mean, unpatchify,
      vae.decode) [2, 3, 16, 24].
"""

from __future__ import annotations

import json
import types

import torch
from diffusers import AutoencoderKLFlux2
from diffusers.pipelines.flux2.pipeline_flux2_klein import Flux2KleinPipeline

from common import FIXTURES, save_fixture
from make_autoencoder import diffusers_to_bfl

SEED = 20262
CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 2,
    up_block_types=["UpDecoderBlock2D"] * 2,
    block_out_channels=[16, 32],
    layers_per_block=1,
    latent_channels=32,
    norm_num_groups=8,
    sample_size=32,
    use_quant_conv=True,
    use_post_quant_conv=True,
    mid_block_add_attention=True,
    batch_norm_eps=1e-4,
    patch_size=[2, 2],
)


def to_bfl(sd: dict) -> dict:
    sd = dict(sd)
    out = {}
    for diff, bfl in (("quant_conv", "encoder.quant_conv"), ("post_quant_conv", "decoder.post_quant_conv")):
        for suffix in ("weight", "bias"):
            out[f"{bfl}.{suffix}"] = sd.pop(f"{diff}.{suffix}")
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        out[f"bn.{name}"] = sd.pop(f"bn.{name}")
    out.update(diffusers_to_bfl(sd, CONFIG))
    return out


def main() -> None:
    torch.manual_seed(SEED)
    vae = AutoencoderKLFlux2(**CONFIG).eval()
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
        vae.bn.running_mean.copy_(0.5 * torch.randn_like(vae.bn.running_mean))
        # Variances from 1e-4 to 3, so the eps (1e-4) changes the small ones by up to 30%.
        vae.bn.running_var.copy_(10 ** (4.5 * torch.rand_like(vae.bn.running_var) - 4))

    gen = torch.Generator().manual_seed(SEED)
    image = torch.rand(2, 3, 16, 24, generator=gen) * 2 - 1
    z = torch.randn(2, 128, 4, 6, generator=gen)
    pipe = types.SimpleNamespace(vae=vae, _patchify_latents=Flux2KleinPipeline._patchify_latents)
    with torch.no_grad():
        encoded = Flux2KleinPipeline._encode_vae_image(pipe, image, generator=None)
        # Flux2KleinPipeline.__call__ after the denoising loop, for latents already unpacked.
        mean = vae.bn.running_mean.view(1, -1, 1, 1)
        std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps)
        decoded = vae.decode(Flux2KleinPipeline._unpatchify_latents(z * std + mean), return_dict=False)[0]

    folder = FIXTURES / "flux2_autoencoder" / "tiny_diffusers" / "vae"
    vae.save_pretrained(folder, safe_serialization=True)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("_diffusers_version", None)  # keep the fixture stable across diffusers releases
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    save_fixture("flux2_autoencoder/flux2_autoencoder_tiny_original_ae.safetensors", to_bfl(vae.state_dict()),
                 __file__, SEED, config=CONFIG)
    save_fixture("flux2_autoencoder/flux2_autoencoder_tiny_diffusers_io.safetensors",
                 {"image": image, "encoded": encoded, "z": z, "decoded": decoded}, __file__, SEED, config=CONFIG)
    print("encoded absmax", encoded.abs().max().item(), "decoded absmax", decoded.abs().max().item())


if __name__ == "__main__":
    main()
