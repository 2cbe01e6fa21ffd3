"""Golden cases for zflow::Generator: torch.randn from torch.Generator("cpu").manual_seed(seed).

Writes tests/fixtures/rng/torch_randn_cases.json. Each case is a seed and one or more shapes
drawn in turn from one generator (a pipeline draws the latent noise, then a VAE posterior
sample, from the same generator). Per draw it stores the sha256 of the float32 little-endian
bytes, the first and last 8 values (uint32 bit patterns and repr strings), and the bit
patterns of every value for fewer than 200 elements, else of 64 evenly strided values.

torch's vectorised normal kernel (n >= 16) computes log/sin/cos differently per CPU kernel:
Cephes polynomials in the AVX2 kernel, libm in the DEFAULT and AVX512 kernels, and the two
disagree in the last bits. So every draw is recorded for both, by running torch once per
capability (ATEN_CPU_CAPABILITY=avx2 and =default) in a child process. Needs an x86 CPU with
AVX2 and FMA.

Usage: /work/venv-golden/bin/python tools/golden/make_rng.py
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from common import save_json_fixture

FIXTURE = "rng/torch_randn_cases.json"
# zflow::NormalMath names, keyed by the ATEN_CPU_CAPABILITY that selects each kernel.
VARIANTS = {"avx2": "avx2_cephes", "default": "libm"}
FULL_VALUES_BELOW = 200
EDGE = 8
SAMPLES = 64  # evenly strided values kept from large draws, to locate a divergence

SEEDS = [0, 1, 42, 2**32 - 1, 2**63 - 1, 123456789]
SMALL_SHAPES = [[1], [3], [15], [16], [17], [31], [33], [100], [2, 3, 5]]
LATENT_SHAPES = {
    "512x512": [1, 16, 64, 64],
    "1024x1024": [1, 16, 128, 128],
    "1024x576": [1, 16, 72, 128],
    "1024x1024_batch4": [4, 16, 128, 128],
}


def case_list() -> list[dict]:
    cases = []
    for seed in SEEDS:
        for shape in SMALL_SHAPES:
            cases.append({"seed": seed, "shapes": [shape]})
    for seed in (0, 42, 2**63 - 1):
        for name, shape in LATENT_SHAPES.items():
            if name.endswith("batch4") and seed == 2**63 - 1:
                continue  # two batch-4 cases are enough and keep the C++ test fast
            cases.append({"seed": seed, "shapes": [shape]})
    # Consecutive draws from one generator: the stream continues, and the scalar path's
    # cached second Box-Muller value survives the end of a call and vectorised calls between.
    cases += [
        {"seed": 0, "shapes": [[1, 16, 64, 64], [1, 16, 64, 64]]},
        {"seed": 42, "shapes": [[5], [40]]},
        {"seed": 1, "shapes": [[3], [3]]},
        {"seed": 123456789, "shapes": [[3], [20], [1], [15]]},
        {"seed": 2**32 - 1, "shapes": [[17], [1, 16, 72, 128]]},
    ]
    return cases


def bits_of(values) -> list[int]:
    import numpy as np

    return values.astype("<f4").view(np.uint32).tolist()


def describe_draw(values) -> dict:
    flat = values.reshape(-1).contiguous().numpy().astype("<f4")
    out = {
        "sha256": hashlib.sha256(flat.tobytes()).hexdigest(),
        "head_bits": bits_of(flat[:EDGE]),
        "tail_bits": bits_of(flat[-EDGE:]),
        "head": [repr(float(v)) for v in flat[:EDGE]],
        "tail": [repr(float(v)) for v in flat[-EDGE:]],
    }
    if flat.size < FULL_VALUES_BELOW:
        out["bits"] = bits_of(flat)
    else:
        stride = flat.size // SAMPLES
        out["sample_stride"] = stride
        out["sample_bits"] = bits_of(flat[::stride][:SAMPLES])
    return out


def run_variant() -> None:
    """Child process: draws every case under the capability in ATEN_CPU_CAPABILITY."""
    import torch

    wanted = os.environ["ATEN_CPU_CAPABILITY"]
    got = torch.backends.cpu.get_cpu_capability()
    if got.lower() != wanted:
        sys.exit(f"make_rng: asked torch for CPU capability {wanted}, it runs {got}")
    results = []
    for case in case_list():
        g = torch.Generator("cpu").manual_seed(case["seed"])
        results.append([describe_draw(torch.randn(shape, generator=g)) for shape in case["shapes"]])
    json.dump({"capability": got, "torch": torch.__version__, "results": results}, sys.stdout)


def main() -> None:
    per_variant = {}
    for capability, variant in VARIANTS.items():
        env = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
        child = subprocess.run(
            [sys.executable, __file__, "--variant"], env=env, capture_output=True, text=True, check=True
        )
        per_variant[variant] = json.loads(child.stdout)

    cases = []
    for i, case in enumerate(case_list()):
        draws = []
        for j, shape in enumerate(case["shapes"]):
            numel = 1
            for d in shape:
                numel *= d
            variants = {v: per_variant[v]["results"][i][j] for v in VARIANTS.values()}
            draws.append({"shape": shape, "numel": numel, "variants": variants})
        cases.append({"seed": case["seed"], "draws": draws})

    payload = {
        "description": "torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed)), "
        "float32; consecutive shapes are drawn from one generator",
        "variants": {v: f"ATEN_CPU_CAPABILITY={c}" for c, v in VARIANTS.items()},
        "cases": cases,
    }
    path = save_json_fixture(FIXTURE, payload, __file__)
    print(f"wrote {path} ({len(cases)} cases, {path.stat().st_size} bytes)")


if __name__ == "__main__":
    if "--variant" in sys.argv:
        run_variant()
    else:
        main()
