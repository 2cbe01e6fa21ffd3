"""Golden fixture for tiled VAE decoding and encoding: diffusers 0.42.1's AutoencoderKL.tiled_decode
(and, for a 56 x 80 image, the tiled encode its encode() switches to) on the tiny
autoencoder fixture (tests/fixtures/autoencoder/tiny_diffusers/vae), with tiles small enough that a
7 x 10 latent needs 3 x 4 of them: tile_sample_min_size 32 (latent tiles of 4, stride 3, 8 pixels
blended), against a raw (posterior-space) latent. The untiled decode is stored too: tiling differs
from it (GroupNorm sees one tile at a time), which is what the blend is for.

Writes tests/fixtures/autoencoder/vae_tiny_diffusers_tiled_decode.safetensors.
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import FIXTURES, save_fixture  # noqa: E402

SEED = 20261128


def main() -> None:
    from diffusers import AutoencoderKL

    torch.set_num_threads(1)
    vae = AutoencoderKL.from_pretrained(FIXTURES / "autoencoder" / "tiny_diffusers" / "vae").float().eval()
    vae.enable_tiling()
    vae.tile_sample_min_size = 32
    vae.tile_latent_min_size = 32 // 2 ** (len(vae.config.block_out_channels) - 1)
    latent = torch.randn(1, vae.config.latent_channels, 7, 10, generator=torch.Generator().manual_seed(SEED))
    image = torch.rand(1, 3, 56, 80, generator=torch.Generator().manual_seed(SEED + 1)) * 2 - 1
    with torch.no_grad():
        tiled = vae.tiled_decode(latent).sample
        whole = vae.decoder(latent)
        posterior = vae.encode(image).latent_dist  # tiled: the image is wider than one tile
    print(f"tiled {tuple(tiled.shape)}, max |tiled - whole| {float((tiled - whole).abs().max()):.3f}")
    save_fixture("autoencoder/vae_tiny_diffusers_tiled_decode.safetensors",
                 {"latent": latent, "tiled": tiled.contiguous(), "whole": whole.contiguous(),
                  "image": image, "encoded_mean": posterior.mean.contiguous(),
                  "encoded_logvar": posterior.logvar.contiguous()},
                 __file__, SEED, tile_sample_size=32, overlap=0.25)


if __name__ == "__main__":
    main()
