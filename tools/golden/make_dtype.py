"""float32 -> bf16 / f16 / f8_e4m3fn / f8_e5m2 conversions as PyTorch rounds them, and the
float32 value of every float8 code.

Writes tests/fixtures/dtype/torch_float_conversions.safetensors: float32 inputs (random
magnitudes over every exponent range plus the edge cases: ties, subnormals, overflow,
infinities, NaNs, signed zeros) and, per format, torch's result bits; and all 256 codes of
float8_e4m3fn / float8_e5m2 widened by torch to float32 (`f8_e4m3_codes_f32`, ...).
"""

import numpy as np
import torch

from common import save_fixture

SEED = 1234


def inputs() -> torch.Tensor:
    rng = np.random.default_rng(SEED)
    random_bits = rng.integers(0, 2**32, size=6000, dtype=np.uint64).astype(np.uint32)
    random = random_bits.view(np.float32)
    logs = rng.uniform(-30, 18, size=4000)
    signs = rng.choice([-1.0, 1.0], size=4000)
    spread = (signs * np.exp2(logs)).astype(np.float32)
    edges = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 65504.0, 65519.0, 65520.0, 65536.0,
         448.0, 464.0, 465.0, 480.0, 57344.0, 61440.0, 61439.0, 2.0**-9, 2.0**-10, 3 * 2.0**-11,
         2.0**-16, 2.0**-17, 2.0**-24, 2.0**-25, 3 * 2.0**-26, 1e-45, -1e-45, 3.4e38, -3.4e38],
        dtype=np.float32)
    # Exact midpoints between neighbouring bf16 values: the round-to-even cases.
    bf = (rng.integers(0, 2**16, size=500, dtype=np.uint32) << 16) | 0x8000
    ties = bf.astype(np.uint32).view(np.float32)
    return torch.from_numpy(np.concatenate([random, spread, edges, ties]))


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int16 if t.element_size() == 2 else torch.uint8).clone()


def codes_as_f32(dtype: torch.dtype) -> torch.Tensor:
    """Code c (0..255) at index c, widened to float32 by torch."""
    return torch.arange(256, dtype=torch.int32).to(torch.uint8).view(dtype).to(torch.float32)


def main() -> None:
    x = inputs()
    save_fixture(
        "dtype/torch_float_conversions.safetensors",
        {
            "input": x,
            "bf16": bits(x.to(torch.bfloat16)),
            "f16": bits(x.to(torch.float16)),
            "f8_e4m3": bits(x.to(torch.float8_e4m3fn)),
            "f8_e5m2": bits(x.to(torch.float8_e5m2)),
            "f8_e4m3_codes_f32": codes_as_f32(torch.float8_e4m3fn),
            "f8_e5m2_codes_f32": codes_as_f32(torch.float8_e5m2),
        },
        __file__,
        seed=SEED,
    )


if __name__ == "__main__":
    main()
