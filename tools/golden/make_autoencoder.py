"""Golden fixtures for the KL autoencoder (FLUX.1 / Z-Image VAE) on a tiny random config.

Builds a diffusers AutoencoderKL with the FLUX.1 structure (no quant convs, mid-block
attention, scaling 0.3611 / shift 0.1159) but tiny channels, and writes:
  tests/fixtures/autoencoder/tiny_diffusers/vae/{config.json, diffusion_pytorch_model.safetensors}
      the diffusers folder layout (save_pretrained)
  tests/fixtures/autoencoder/autoencoder_tiny_original_ae.safetensors
      the same weights in the BFL `ae.safetensors` layout, made by loading them into a
      re-statement of BFL's AutoEncoder modules (written here from the names in
      black-forest-labs/flux src/flux/modules/autoencoder.py) and saving its state_dict;
      the script checks that module reproduces diffusers' outputs before saving
  tests/fixtures/autoencoder/autoencoder_tiny_diffusers_io.safetensors
      a non-square batch of two 48x80 images -> posterior mean / logvar; a posterior
      sample with eps = torch.randn(generator=manual_seed(EPS_SEED)); and a normalised
      latent z [2, 16, 6, 10] -> vae.decode(z / scaling + shift), all in float32.

The weights are rounded to bfloat16 values (kept as float32 in torch) and stored as BF16:
half the bytes, exactly the same numbers, and the C++ side exercises 16-bit weights.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from common import FIXTURES, fixture_metadata, save_fixture

SEED = 20240801
EPS_SEED = 1234
Z_SEED = 99
CONFIG = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=16,
    block_out_channels=[16, 32, 32, 32],
    layers_per_block=2,
    norm_num_groups=8,
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


# --- BFL's autoencoder, restated: same module names and forward, groups as a parameter ---


def _norm(groups: int, c: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=1e-6, affine=True)


class BflResnet(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1 = _norm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.has_shortcut = cin != cout
        if self.has_shortcut:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if self.has_shortcut else x) + h


class BflAttn(nn.Module):
    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = _norm(groups, c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        n = self.norm(x)
        tokens = [t(n).reshape(b, 1, c, h * w).transpose(2, 3) for t in (self.q, self.k, self.v)]
        a = nn.functional.scaled_dot_product_attention(*tokens)
        return x + self.proj_out(a.transpose(2, 3).reshape(b, c, h, w))


class BflSample(nn.Module):  # Downsample / Upsample: only `conv` is a parameter
    def __init__(self, c: int, down: bool):
        super().__init__()
        self.down = down
        self.conv = nn.Conv2d(c, c, 3, stride=2 if down else 1, padding=0 if down else 1)

    def forward(self, x):
        if self.down:
            return self.conv(nn.functional.pad(x, (0, 1, 0, 1)))
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


def _mid(c: int, groups: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1, mid.attn_1, mid.block_2 = BflResnet(c, c, groups), BflAttn(c, groups), BflResnet(c, c, groups)
    return mid


class BflEncoder(nn.Module):
    def __init__(self, cin, chans, layers, z, groups):
        super().__init__()
        self.conv_in = nn.Conv2d(cin, chans[0], 3, padding=1)
        self.down = nn.ModuleList()
        prev = chans[0]
        for i, c in enumerate(chans):
            level = nn.Module()
            level.block = nn.ModuleList(BflResnet(prev if j == 0 else c, c, groups) for j in range(layers))
            if i != len(chans) - 1:
                level.downsample = BflSample(c, down=True)
            self.down.append(level)
            prev = c
        self.mid = _mid(prev, groups)
        self.norm_out = _norm(groups, prev)
        self.conv_out = nn.Conv2d(prev, 2 * z, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(nn.functional.silu(self.norm_out(h)))


class BflDecoder(nn.Module):
    def __init__(self, cout, chans, layers, z, groups):
        super().__init__()
        prev = chans[-1]
        self.conv_in = nn.Conv2d(z, prev, 3, padding=1)
        self.mid = _mid(prev, groups)
        levels = {}
        for i in reversed(range(len(chans))):  # built deepest first, stored by level index
            level = nn.Module()
            level.block = nn.ModuleList(BflResnet(prev if j == 0 else chans[i], chans[i], groups) for j in range(layers + 1))
            if i != 0:
                level.upsample = BflSample(chans[i], down=False)
            levels[i] = level
            prev = chans[i]
        self.up = nn.ModuleList(levels[i] for i in range(len(chans)))
        self.norm_out = _norm(groups, prev)
        self.conv_out = nn.Conv2d(prev, cout, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(nn.functional.silu(self.norm_out(h)))


class BflAutoEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        args = (cfg["block_out_channels"], cfg["layers_per_block"], cfg["latent_channels"], cfg["norm_num_groups"])
        self.encoder = BflEncoder(cfg["in_channels"], *args)
        self.decoder = BflDecoder(cfg["out_channels"], *args)


# --- diffusers -> BFL names, written from the two module trees (not from a converter) ---


def diffusers_to_bfl(sd: dict, cfg) -> dict:
    levels, layers = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    out = {}

    def put(src_prefix, dst_prefix, squeeze=False):
        for suffix in ("weight", "bias"):
            key = f"{src_prefix}.{suffix}"
            if key in sd:
                t = sd.pop(key)
                if squeeze and suffix == "weight":
                    t = t[:, :, None, None]
                out[f"{dst_prefix}.{suffix}"] = t

    def resnet(src, dst):
        for a, b in (("norm1", "norm1"), ("conv1", "conv1"), ("norm2", "norm2"), ("conv2", "conv2"), ("conv_shortcut", "nin_shortcut")):
            put(f"{src}.{a}", f"{dst}.{b}")

    for side in ("encoder", "decoder"):
        put(f"{side}.conv_in", f"{side}.conv_in")
        resnet(f"{side}.mid_block.resnets.0", f"{side}.mid.block_1")
        resnet(f"{side}.mid_block.resnets.1", f"{side}.mid.block_2")
        att = f"{side}.mid_block.attentions.0"
        put(f"{att}.group_norm", f"{side}.mid.attn_1.norm")
        for a, b in (("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")):
            put(f"{att}.{a}", f"{side}.mid.attn_1.{b}", squeeze=True)
        put(f"{side}.conv_norm_out", f"{side}.norm_out")
        put(f"{side}.conv_out", f"{side}.conv_out")
    for i in range(levels):
        for j in range(layers):
            resnet(f"encoder.down_blocks.{i}.resnets.{j}", f"encoder.down.{i}.block.{j}")
        put(f"encoder.down_blocks.{i}.downsamplers.0.conv", f"encoder.down.{i}.downsample.conv")
        r = levels - 1 - i
        for j in range(layers + 1):
            resnet(f"decoder.up_blocks.{i}.resnets.{j}", f"decoder.up.{r}.block.{j}")
        put(f"decoder.up_blocks.{i}.upsamplers.0.conv", f"decoder.up.{r}.upsample.conv")
    assert not sd, f"unmapped diffusers tensors: {sorted(sd)}"
    return out


def main():
    from diffusers import AutoencoderKL

    torch.manual_seed(SEED)
    vae = AutoencoderKL(**{k: v for k, v in CONFIG.items()}).eval()
    with torch.no_grad():
        for name, p in vae.named_parameters():
            # Non-trivial norms and biases (diffusers initialises gamma 1, beta 0, so a
            # swapped gamma/beta or a dropped bias would go unnoticed), then bf16 values.
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            p.copy_(p.bfloat16().float())

    image = torch.rand(2, 3, 48, 80) * 2 - 1
    z = torch.randn(2, CONFIG["latent_channels"], 6, 10, generator=torch.Generator().manual_seed(Z_SEED))
    with torch.no_grad():
        posterior = vae.encode(image).latent_dist
        eps_shape = posterior.mean.shape
        sample = posterior.sample(generator=torch.Generator().manual_seed(EPS_SEED))
        eps = torch.randn(eps_shape, generator=torch.Generator().manual_seed(EPS_SEED))
        decoded = vae.decode(z / CONFIG["scaling_factor"] + CONFIG["shift_factor"]).sample

        bfl = BflAutoEncoder(CONFIG).eval()
        bfl_sd = diffusers_to_bfl(dict(vae.state_dict()), CONFIG)
        bfl.load_state_dict(bfl_sd, strict=True)
        enc = bfl.encoder(image)
        dec = bfl.decoder(z / CONFIG["scaling_factor"] + CONFIG["shift_factor"])
        torch.testing.assert_close(enc[:, :16], posterior.mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(dec, decoded, rtol=1e-5, atol=1e-5)

    folder = FIXTURES / "autoencoder" / "tiny_diffusers" / "vae"
    vae.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("_diffusers_version", None)  # keep the fixture stable across diffusers releases
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    save_fixture(
        "autoencoder/autoencoder_tiny_original_ae.safetensors",
        {k: v.bfloat16() for k, v in bfl_sd.items()},
        __file__,
        SEED,
        config=CONFIG,
    )
    save_fixture(
        "autoencoder/autoencoder_tiny_diffusers_io.safetensors",
        {
            "image": image,
            "posterior_mean": posterior.mean,
            "posterior_logvar": posterior.logvar,
            "eps": eps,
            "sample": sample,
            "z": z,
            "decoded": decoded,
        },
        __file__,
        SEED,
        eps_seed=str(EPS_SEED),
        z_seed=str(Z_SEED),
        torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
        config=CONFIG,
    )
    print("wrote", folder, "and", FIXTURES / "autoencoder")


if __name__ == "__main__":
    main()
