"""Writes the safetensors reader's fixtures with the reference `safetensors` package.

  /work/venv-golden/bin/python tools/golden/make_safetensors.py

Outputs under tests/fixtures/safetensors/:
  safetensors_every_dtype_single_values.safetensors  one tensor per dtype zflow reads, with
      edge values (subnormals, infinities, NaN, integer extremes), a 0-dim scalar, an empty
      tensor and metadata; written by safetensors.torch.save_file.
  safetensors_every_dtype_single_values.json  the oracle: per tensor its dtype, shape, raw
      little-endian bytes (torch's own storage) and values widened by torch (floats to
      float64, integers exactly).
  sharded_transformers/  a 2-shard model split by huggingface_hub the way transformers'
      save_pretrained does (model-0000N-of-00002.safetensors + model.safetensors.index.json).
  sharded_transformers_values.json  the oracle for it.
  diffusers_component/vae/diffusion_pytorch_model.safetensors  a diffusers component folder.
  zflow_writer_check.safetensors is written by zflow's own writer (tests); if present, this
      script reads it back with the reference package and fails loudly on a mismatch.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import split_torch_state_dict_into_shards
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FIXTURES, fixture_metadata, save_fixture, save_json_fixture  # noqa: E402

SEED = 0
AREA = "safetensors"

# safetensors dtype name -> torch dtype.
DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U64": torch.uint64,
    "U32": torch.uint32,
    "U16": torch.uint16,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def float_tensor(values: list[float], dtype: torch.dtype, shape: list[int]) -> torch.Tensor:
    # Rounded by torch from float64, so the stored values are torch's, not ours.
    return torch.tensor(values, dtype=torch.float64).to(dtype).reshape(shape)


def int_tensor(values: list[int], np_dtype, shape: list[int]) -> torch.Tensor:
    # Through numpy: torch.tensor cannot build uint64 values above 2**63 - 1.
    return torch.from_numpy(np.array(values, dtype=np_dtype).reshape(shape))


def every_dtype() -> dict[str, torch.Tensor]:
    inf, nan = math.inf, math.nan
    return {
        "f64": float_tensor([0.1, -2.5, 1e300, 5e-324, -0.0, inf], torch.float64, [2, 3]),
        "f32": float_tensor([1.5, -0.1, 3.4e38, 1e-45, -inf, nan], torch.float32, [3, 2]),
        "f16": float_tensor([0.1, 65504.0, 6e-8, -inf, 1 / 3, 1e5], torch.float16, [6]),
        "bf16": float_tensor([0.1, -3.14159, 1e38, 1e-40, 3.4e38, nan], torch.bfloat16, [2, 3]),
        # e4m3fn: 448 is the largest finite; 2**-9 the smallest subnormal; 0.3 rounds.
        "f8_e4m3": float_tensor([448.0, -(2.0**-9), 0.3, nan, -17.0, 0.0], torch.float8_e4m3fn, [6]),
        "f8_e5m2": float_tensor([57344.0, 2.0**-16, 0.3, -inf, -17.0, 0.0], torch.float8_e5m2, [6]),
        "i64": int_tensor([-(2**63), 2**63 - 1, 0, -1], np.int64, [4]),
        "i32": int_tensor([-(2**31), 2**31 - 1, 7, -7], np.int32, [2, 2]),
        "i16": int_tensor([-(2**15), 2**15 - 1, 3], np.int16, [3]),
        "i8": int_tensor([-128, 127, 0, -1, 5], np.int8, [5]),
        "u64": int_tensor([0, 2**64 - 1, 2**63], np.uint64, [3]),
        "u32": int_tensor([0, 2**32 - 1, 12345], np.uint32, [3]),
        "u16": int_tensor([0, 65535, 256], np.uint16, [3]),
        "u8": int_tensor([0, 255, 1], np.uint8, [3]),
        "bool": torch.tensor([True, False, True, True], dtype=torch.bool).reshape(2, 2),
        "scalar": torch.tensor(2.75, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }


def json_value(x):
    # JSON has no NaN / infinity; the C++ test reads these spellings back.
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def oracle(tensors: dict[str, torch.Tensor], dtype_names: dict[torch.dtype, str]) -> dict:
    out = {}
    for name, t in tensors.items():
        if t.dtype.is_floating_point:
            values = t.to(torch.float64).flatten().tolist()
        else:
            values = [int(v) for v in t.flatten().numpy().tolist()]
        out[name] = {
            "dtype": dtype_names[t.dtype],
            "shape": list(t.shape),
            "bytes_hex": t.contiguous().flatten().view(torch.uint8).numpy().tobytes().hex(),
            "values": [json_value(v) for v in values],
        }
    return out


def write_every_dtype(dtype_names) -> None:
    tensors = every_dtype()
    save_fixture(
        f"{AREA}/safetensors_every_dtype_single_values.safetensors",
        tensors,
        __file__,
        SEED,
        purpose="one tensor per dtype",
    )
    save_json_fixture(
        f"{AREA}/safetensors_every_dtype_single_values.json",
        {"tensors": oracle(tensors, dtype_names), "metadata_purpose": "one tensor per dtype"},
        __file__,
    )


def small_model() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(SEED)
    return {
        "model.embed_tokens.weight": torch.randn(8, 4, generator=g),
        "model.layers.0.mlp.weight": torch.randn(4, 4, generator=g),
        "model.layers.0.norm.weight": torch.randn(4, generator=g).to(torch.bfloat16),
        "model.layers.1.mlp.weight": torch.randn(4, 4, generator=g),
        "model.norm.weight": torch.randn(4, generator=g).to(torch.float16),
    }


def write_sharded(dtype_names) -> None:
    # As transformers' save_pretrained: huggingface_hub splits the state dict, each shard
    # gets {"format": "pt"} metadata, and the index is written with indent 2, sorted keys.
    folder = FIXTURES / AREA / "sharded_transformers"
    folder.mkdir(parents=True, exist_ok=True)
    state = small_model()
    split = split_torch_state_dict_into_shards(state, max_shard_size=200)
    assert len(split.filename_to_tensors) == 2, split.filename_to_tensors
    for filename, names in split.filename_to_tensors.items():
        save_file({n: state[n].contiguous() for n in names}, str(folder / filename), metadata={"format": "pt"})
    index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    payload = oracle(state, dtype_names)
    for name in payload:
        payload[name]["shard"] = split.tensor_to_filename[name]
    save_json_fixture(f"{AREA}/sharded_transformers_values.json", {"tensors": payload}, __file__)


def write_diffusers_component() -> None:
    folder = FIXTURES / AREA / "diffusers_component" / "vae"
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(SEED + 1)
    tensors = {"decoder.conv_in.weight": torch.randn(2, 3, 1, 1, generator=g), "decoder.conv_in.bias": torch.randn(2, generator=g)}
    save_file(tensors, str(folder / "diffusion_pytorch_model.safetensors"), metadata=fixture_metadata(__file__, SEED + 1))


def check_zflow_writer() -> None:
    """Reads the file zflow's writer produced (see test_safetensors.cpp) with the reference."""
    path = FIXTURES / AREA / "zflow_writer_check.safetensors"
    if not path.exists():
        return
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"writer": "zflow"}, f.metadata()
        got = {k: f.get_tensor(k) for k in f.keys()}
    expected = {
        "a_u8": torch.tensor([1, 2, 3], dtype=torch.uint8),
        "b_f32": torch.tensor([[1.5, -2.0], [0.25, 8.0]], dtype=torch.float32),
        "c_bf16": torch.tensor([1.0, -0.5, 3.0], dtype=torch.bfloat16),
        "d_scalar_i64": torch.tensor(-7, dtype=torch.int64),
    }
    assert got.keys() == expected.keys(), got.keys()
    for k, v in expected.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), (k, got[k], v)
    print(f"{path.name}: read back by safetensors {__import__('safetensors').__version__}: OK")


def main() -> None:
    dtype_names = {v: k for k, v in DTYPES.items()}
    write_every_dtype(dtype_names)
    write_sharded(dtype_names)
    write_diffusers_component()
    check_zflow_writer()


if __name__ == "__main__":
    main()
