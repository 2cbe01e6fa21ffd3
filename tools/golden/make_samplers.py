"""Golden sigma schedules and sampler trajectories.

Schedules: diffusers' FlowMatchEulerDiscreteScheduler with use_karras_sigmas /
use_exponential_sigmas / use_beta_sigmas, driven as the Z-Image, FLUX.1 and FLUX.2 pipelines drive
it (retrieve_timesteps with the pipeline's sigmas and mu), and scipy.stats.beta.ppf values.

Samplers: k-diffusion 0.1.1's sample_euler / sample_heun / sample_dpmpp_2m (the code ComfyUI's
samplers come from) on ComfyUI's flow-model denoiser x0 = x - sigma * v, with a stand-in velocity
that is non-linear in x and sigma so every solver order shows:
    v(x, sigma) = tanh(x) * (1 + sigma) - c * sigma * sigma
The trajectories start from seeded noise, over the schedules above (and one cut at an img2img
start).

Writes tests/fixtures/samplers/flow_samplers.json; every value is the Python float of a float32.

Run: ~/.venvs/zflow-golden/bin/python tools/golden/make_samplers.py
"""

from __future__ import annotations

import os

os.environ["ATEN_CPU_CAPABILITY"] = "default"

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402
from diffusers import FlowMatchEulerDiscreteScheduler  # noqa: E402
from diffusers.pipelines.flux.pipeline_flux import calculate_shift  # noqa: E402
from diffusers.pipelines.flux.pipeline_flux import retrieve_timesteps as flux_retrieve_timesteps  # noqa: E402
from diffusers.pipelines.flux2.pipeline_flux2 import compute_empirical_mu  # noqa: E402
from diffusers.pipelines.z_image.pipeline_z_image import get_default_z_image_sigmas  # noqa: E402
from diffusers.pipelines.z_image.pipeline_z_image import retrieve_timesteps as zimage_retrieve_timesteps  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_json_fixture  # noqa: E402
from kdiffusion_samplers import KD_SAMPLERS, RESPACING  # noqa: E402
from make_schedules import FLUX_DYNAMIC_CONFIG  # noqa: E402

FIXTURE = "samplers/flow_samplers.json"
SEED = 20261207


def zimage_schedule(steps: int, shift: float, respacing: str, dynamic_seq: int | None = None):
    """ZImagePipeline's schedule; with dynamic_seq, for a scheduler config that shifts dynamically
    (mu from the config's line at that many tokens, as the pipeline computes it)."""
    config = dict(FLUX_DYNAMIC_CONFIG) if dynamic_seq else dict(num_train_timesteps=1000, shift=shift)
    scheduler = FlowMatchEulerDiscreteScheduler(**config, **RESPACING.get(respacing, {}))
    scheduler.sigma_min = 0.0  # as ZImagePipeline sets it
    mu = calculate_shift(dynamic_seq or 4096, 256, 4096, 0.5, 1.15)
    zimage_retrieve_timesteps(scheduler, steps, "cpu", sigmas=get_default_z_image_sigmas(steps), mu=mu)
    return scheduler


def flux_schedule(steps: int, mu: float, respacing: str) -> FlowMatchEulerDiscreteScheduler:
    scheduler = FlowMatchEulerDiscreteScheduler(**FLUX_DYNAMIC_CONFIG, **RESPACING.get(respacing, {}))
    flux_retrieve_timesteps(scheduler, steps, "cpu", sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    return scheduler


def record(scheduler: FlowMatchEulerDiscreteScheduler, **info) -> dict:
    assert scheduler.sigmas.dtype == torch.float32 and scheduler.timesteps.dtype == torch.float32
    return {**info, "sigmas": scheduler.sigmas.tolist(), "timesteps": scheduler.timesteps.tolist()}


def schedule_cases() -> list[dict]:
    cases = []
    for respacing in RESPACING:
        for steps, shift in [(8, 3.0), (9, 3.0), (1, 3.0), (2, 3.0), (50, 6.0)]:
            cases.append(record(zimage_schedule(steps, shift, respacing), family="zimage", steps=steps,
                                shift=shift, respacing=respacing))
        for seq, steps in [(4096, 28), (1024, 50)]:
            mu = calculate_shift(seq, 256, 4096, 0.5, 1.15)
            cases.append(record(flux_schedule(steps, mu, respacing), family="flux1_dev", steps=steps,
                                image_seq_len=seq, respacing=respacing))
        for seq in (1024, 4096):
            cases.append(record(zimage_schedule(8, 3.0, respacing, dynamic_seq=seq), family="zimage_dynamic",
                                steps=8, image_seq_len=seq, respacing=respacing))
        mu = compute_empirical_mu(image_seq_len=4096, num_steps=4)
        cases.append(record(flux_schedule(4, mu, respacing), family="flux2", steps=4, image_seq_len=4096,
                            respacing=respacing))
    return cases


def beta_ppf_cases() -> list[dict]:
    cases = []
    for a, b in [(0.6, 0.6), (2.0, 5.0), (0.5, 3.0)]:
        for q in [0.0, 1e-6, 0.001, 0.1, 0.25, 0.5, 0.6, 0.875, 0.999, 1.0]:
            cases.append(dict(q=q, a=a, b=b, x=float(scipy.stats.beta.ppf(q, a, b))))
    return cases


def stand_in_velocity(x: torch.Tensor, sigma: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x) * (1 + sigma) - c * sigma * sigma


def trajectory_cases() -> list[dict]:
    generator = torch.Generator().manual_seed(SEED)
    shape = (2, 3, 4, 4)
    noise = torch.randn(shape, generator=generator)
    c = torch.randn(shape, generator=generator)

    def denoiser(x, sigma):
        s = sigma.reshape(-1, 1, 1, 1)  # ComfyUI's CONST.calculate_denoised
        return x - stand_in_velocity(x, s, c) * s

    schedules = [
        dict(family="zimage", steps=8, shift=3.0, respacing="simple"),
        dict(family="zimage", steps=8, shift=3.0, respacing="karras"),
        dict(family="zimage", steps=9, shift=3.0, respacing="beta"),
        dict(family="flux1_dev", steps=28, image_seq_len=4096, respacing="simple"),
        dict(family="zimage", steps=8, shift=3.0, respacing="simple", start=3),
    ]
    cases = []
    for spec in schedules:
        if spec["family"] == "zimage":
            scheduler = zimage_schedule(spec["steps"], spec["shift"], spec["respacing"])
        else:
            scheduler = flux_schedule(spec["steps"], calculate_shift(spec["image_seq_len"]), spec["respacing"])
        sigmas = scheduler.sigmas[spec.get("start", 0):]
        start = sigmas[0] * noise + (1 - sigmas[0]) * c  # an img2img-like start when cut
        for name, sample in KD_SAMPLERS.items():
            out = sample(denoiser, start.clone(), sigmas, disable=True)
            cases.append({**spec, "sampler": name, "sigmas": sigmas.tolist(), "output": out.flatten().tolist()})
    return [dict(shape=list(shape), noise=noise.flatten().tolist(), c=c.flatten().tolist(), cases=cases)]


def main() -> None:
    trajectories = trajectory_cases()[0]
    path = save_json_fixture(
        FIXTURE,
        {
            "scipy": scipy.__version__,
            "schedules": schedule_cases(),
            "beta_ppf": beta_ppf_cases(),
            "trajectories": trajectories,
        },
        __file__,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
