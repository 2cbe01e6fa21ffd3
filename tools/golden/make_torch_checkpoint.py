"""Golden PyTorch checkpoints: files torch.save writes, with the same tensors as safetensors to compare with.

Writes tests/fixtures/torch_checkpoint/:
  mixed.pt            a Lightning-style {"state_dict": {...}, "epoch": 3, "hyper": object} whose state dict holds
                      float32, float16, bfloat16, float64 and int64 tensors, a scalar, nested dicts and a list, a
                      transposed view and an offset slice of another tensor (strided and offset storages, saved as
                      they are), a tensor shared under two names, a bool tensor (a storage type zflow skips) and
                      an nn.Parameter
  mixed_expected.safetensors   every tensor zflow should read, contiguous, under the dotted name it should give
  esrgan_x4_params_ema.pth     make_esrgan.py's 4x network as Real-ESRGAN publishes its models: {"params_ema":
                      OrderedDict} in the BasicSR names (loads to the same output as the safetensors)
The zip and pickle layout is torch.save's own (PyTorch 2.15: protocol 2, data.pkl, data/<key>, byteorder).
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import FIXTURES, save_fixture  # noqa: E402

SEED = 20261207
OUT = FIXTURES / "torch_checkpoint"


class Hyper:
    """Stands for the arbitrary objects training checkpoints carry (hyper-parameters, callbacks)."""

    def __init__(self) -> None:
        self.lr = 1e-4


def main() -> None:
    from safetensors.torch import load_file

    OUT.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(SEED)
    base = torch.randn(4, 6, generator=g)
    state = collections.OrderedDict()
    state["conv.weight"] = torch.randn(3, 2, 3, 3, generator=g)
    state["half"] = torch.randn(5, generator=g).half()
    state["bf16"] = torch.randn(2, 3, generator=g).bfloat16()
    state["f64"] = torch.randn(3, generator=g).double()
    state["steps"] = torch.tensor([7, -2, 1 << 40])
    state["scale"] = torch.tensor(0.25)
    state["transposed"] = base.t()  # strides (1, 6): copied out
    state["rows"] = base[1:3]  # storage offset 6: a view in place
    state["shared"] = state["conv.weight"]  # one storage under two names
    state["mask"] = torch.tensor([True, False])  # skipped: no bool dtype in zflow
    state["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    state["block"] = {"inner": {"w": torch.randn(2, generator=g)}, "list": [torch.randn(1, generator=g)]}
    torch.save({"state_dict": state, "epoch": 3, "hyper": Hyper()}, OUT / "mixed.pt")

    expected = {}
    for name, value in state.items():
        if name == "mask":
            continue
        if isinstance(value, dict):
            expected["block.inner.w"] = value["inner"]["w"]
            expected["block.list.0"] = value["list"][0]
        else:
            expected[name] = value.detach().contiguous().clone()
    save_fixture("torch_checkpoint/mixed_expected.safetensors", expected, __file__, SEED)

    esrgan = load_file(FIXTURES / "esrgan" / "esrgan_x4_basicsr.safetensors")
    torch.save({"params_ema": collections.OrderedDict(sorted(esrgan.items()))},
               OUT / "esrgan_x4_params_ema.pth")
    print(f"wrote {OUT}: {len(expected)} tensors expected from mixed.pt")


if __name__ == "__main__":
    main()
