"""Golden flow-matching schedules from diffusers' FlowMatchEulerDiscreteScheduler.

Drives the real scheduler the way the Z-Image, FLUX.1 and FLUX.2 pipelines do: the pipeline
module builds the unshifted sigmas (Z-Image: torch.linspace in float32; FLUX: np.linspace in
float64) and mu (calculate_shift / compute_empirical_mu), then retrieve_timesteps calls
set_timesteps(sigmas=..., mu=...). img2img starts come from the pipelines' own get_timesteps.

torch.linspace on CPU gives values that depend on the kernel torch picks: the scalar kernel
fills from both ends, and the vectorized (AVX2) one puts a few values one ulp away from those,
so the same Z-Image call differs by 1-2 ulp in a few sigmas between machines. The script pins the
scalar kernel (ATEN_CPU_CAPABILITY=default, set before torch is imported) so the fixture does
not depend on the machine that made it; zflow mirrors that scalar definition.

Writes tests/fixtures/schedules/diffusers_flow_match_schedules.json. Every sigma and timestep
is the Python float of a float32 value, so the JSON holds the float32 values exactly.

Run: /work/venv-golden/bin/python tools/golden/make_schedules.py
"""

from __future__ import annotations

import os

os.environ["ATEN_CPU_CAPABILITY"] = "default"

import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import FlowMatchEulerDiscreteScheduler  # noqa: E402
from diffusers.pipelines.flux.pipeline_flux import calculate_shift  # noqa: E402
from diffusers.pipelines.flux.pipeline_flux import retrieve_timesteps as flux_retrieve_timesteps  # noqa: E402
from diffusers.pipelines.flux.pipeline_flux_img2img import FluxImg2ImgPipeline  # noqa: E402
from diffusers.pipelines.flux2.pipeline_flux2 import compute_empirical_mu  # noqa: E402
from diffusers.pipelines.z_image.pipeline_z_image import get_default_z_image_sigmas  # noqa: E402
from diffusers.pipelines.z_image.pipeline_z_image import retrieve_timesteps as zimage_retrieve_timesteps  # noqa: E402
from diffusers.pipelines.z_image.pipeline_z_image_img2img import ZImageImg2ImgPipeline  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_json_fixture  # noqa: E402

FIXTURE = "schedules/diffusers_flow_match_schedules.json"

# scheduler_config.json of the released checkpoints (zimage.md §5.1, flux.md §5.2-5.3).
ZIMAGE_TURBO_CONFIG = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False)
ZIMAGE_BASE_CONFIG = dict(num_train_timesteps=1000, shift=6.0, use_dynamic_shifting=False)
FLUX_DYNAMIC_CONFIG = dict(
    num_train_timesteps=1000,
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
    time_shift_type="exponential",
)
FLUX_SCHNELL_CONFIG = dict(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)


def tokens(height: int, width: int) -> int:
    """Packed image tokens of a FLUX / FLUX.2 latent: one per 16x16 pixel patch."""
    return (height // 16) * (width // 16)


def schedule_record(scheduler: FlowMatchEulerDiscreteScheduler, **info) -> dict:
    assert scheduler.sigmas.dtype == torch.float32 and scheduler.timesteps.dtype == torch.float32
    return {**info, "sigmas": scheduler.sigmas.tolist(), "timesteps": scheduler.timesteps.tolist()}


def zimage(config: dict, steps: int) -> FlowMatchEulerDiscreteScheduler:
    scheduler = FlowMatchEulerDiscreteScheduler(**config)
    # The pipeline passes mu from calculate_shift too; the static config ignores it.
    mu = calculate_shift(tokens(1024, 1024))
    zimage_retrieve_timesteps(scheduler, steps, "cpu", sigmas=get_default_z_image_sigmas(steps), mu=mu)
    return scheduler


def flux(config: dict, steps: int, mu: float) -> FlowMatchEulerDiscreteScheduler:
    scheduler = FlowMatchEulerDiscreteScheduler(**config)
    sigmas = np.linspace(1.0, 1 / steps, steps)
    flux_retrieve_timesteps(scheduler, steps, "cpu", sigmas=sigmas, mu=mu)
    return scheduler


def static_cases() -> list[dict]:
    cases = []
    for name, config, steps in [
        ("zimage_turbo", ZIMAGE_TURBO_CONFIG, 8),
        ("zimage_base", ZIMAGE_BASE_CONFIG, 50),
        ("zimage_base", ZIMAGE_BASE_CONFIG, 28),
    ]:
        cases.append(schedule_record(zimage(config, steps), name=name, spacing="torch_f32", steps=steps, shift=config["shift"]))
    schnell = flux(FLUX_SCHNELL_CONFIG, 4, calculate_shift(tokens(1024, 1024)))
    cases.append(schedule_record(schnell, name="flux1_schnell", spacing="numpy_f64", steps=4, shift=1.0))
    return cases


def dynamic_cases() -> list[dict]:
    cases = []
    for height, width in [(1024, 1024), (512, 768), (2048, 2048)]:
        seq = tokens(height, width)
        for steps in (28, 50):
            mu = calculate_shift(seq, 256, 4096, 0.5, 1.15)
            info = dict(name="flux1_dev", height=height, width=width, image_seq_len=seq, steps=steps, mu=mu)
            cases.append(schedule_record(flux(FLUX_DYNAMIC_CONFIG, steps, mu), **info))
    for height, width, steps in [
        (1024, 1024, 4),
        (1024, 1024, 28),
        (1024, 1024, 50),
        (512, 512, 4),
        (512, 512, 50),
        (2048, 2048, 28),
    ]:
        seq = tokens(height, width)
        mu = compute_empirical_mu(image_seq_len=seq, num_steps=steps)
        info = dict(name="flux2", height=height, width=width, image_seq_len=seq, steps=steps, mu=mu)
        cases.append(schedule_record(flux(FLUX_DYNAMIC_CONFIG, steps, mu), **info))
    return cases


def img2img_cases() -> list[dict]:
    """Start index and remaining schedule from the pipelines' own get_timesteps."""
    cases = []
    fixed = [(steps, strength) for steps in (8, 28) for strength in (0.6, 0.75, 1.0, 0.05)]
    # N * strength lands a hair off an integer in float64 here: a float32 strength would
    # truncate to a different start (50 steps at 0.6 is the Z-Image img2img default).
    fixed += [(50, 0.6), (25, 0.6), (50, 0.3)]
    for steps, strength in fixed:
        for name, pipeline, scheduler in [
            ("zimage_turbo", ZImageImg2ImgPipeline, zimage(ZIMAGE_TURBO_CONFIG, steps)),
            ("flux1_dev_1024", FluxImg2ImgPipeline, flux(FLUX_DYNAMIC_CONFIG, steps, calculate_shift(tokens(1024, 1024)))),
        ]:
            timesteps, remaining = pipeline.get_timesteps(SimpleNamespace(scheduler=scheduler), steps, strength, "cpu")
            start = scheduler.begin_index
            assert remaining == steps - start and torch.equal(timesteps, scheduler.timesteps[start:])
            cases.append(
                dict(
                    name=name,
                    steps=steps,
                    strength=strength,
                    start=start,
                    sigmas=scheduler.sigmas[start:].tolist(),
                    timesteps=timesteps.tolist(),
                )
            )
    return cases


def main() -> None:
    payload = {
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "static_shift": static_cases(),
        "dynamic_shift": dynamic_cases(),
        "img2img": img2img_cases(),
    }
    path = save_json_fixture(FIXTURE, payload, __file__)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
