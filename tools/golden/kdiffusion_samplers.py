"""k-diffusion 0.1.1's samplers (the code ComfyUI's come from) and diffusers' sigma respacing flags, as the
sampler goldens use them.

k-diffusion is imported from its sampling module alone: its package __init__ pulls in training
dependencies (wandb, clip, torchvision) the samplers do not use, so `utils` is replaced by the one
function they call, append_dims.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def _k_diffusion_sampling():
    package_dir = Path(importlib.util.find_spec("k_diffusion").submodule_search_locations[0])
    package = types.ModuleType("k_diffusion")
    package.__path__ = [str(package_dir)]
    utils = types.ModuleType("k_diffusion.utils")
    # k_diffusion.utils.append_dims: x[(...,) + (None,) * (target_dims - x.ndim)]
    utils.append_dims = lambda x, target_dims: x[(...,) + (None,) * (target_dims - x.ndim)]
    package.utils = utils
    sys.modules["k_diffusion"] = package
    sys.modules["k_diffusion.utils"] = utils
    return importlib.import_module("k_diffusion.sampling")


SAMPLING = _k_diffusion_sampling()
KD_SAMPLERS = {
    "euler": SAMPLING.sample_euler,
    "heun": SAMPLING.sample_heun,
    "dpm++2m": SAMPLING.sample_dpmpp_2m,
}
# FlowMatchEulerDiscreteScheduler's flags for each schedule name zflow takes ("simple": none).
RESPACING = {
    "karras": dict(use_karras_sigmas=True),
    "exponential": dict(use_exponential_sigmas=True),
    "beta": dict(use_beta_sigmas=True),
}
