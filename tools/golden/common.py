"""Shared helpers for the golden-fixture generators.

Every fixture is a safetensors file under tests/fixtures/ whose metadata records the
generator script, the seed, the library versions and a format version, so a test can
tell a stale fixture from a wrong result. Name fixtures
<model>_<config>_<layout>_<what>.safetensors (STYLE.md, habit 12).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FIXTURE_FORMAT_VERSION = "1"
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in ("torch", "diffusers", "transformers", "tokenizers", "safetensors", "numpy", "gguf", "PIL"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except ImportError:
            pass
    return versions


def fixture_metadata(script: str, seed: int | None = None, **extra) -> dict[str, str]:
    meta = {
        "zflow_fixture_format": FIXTURE_FORMAT_VERSION,
        "generator": os.path.relpath(script, REPO),
        "versions": json.dumps(library_versions(), sort_keys=True),
    }
    if seed is not None:
        meta["seed"] = str(seed)
    for key, value in extra.items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    return meta


def upscaler_setup(seed: int, out: Path, height: int = 11, width: int = 13):
    """The start every upscaler golden shares: torch single-threaded and seeded, `out` made, and a random 8-bit RGB
    picture [1, 3, height, width] (int64 values 0-255) with its float image (/ 255, as ComfyUI passes pictures to
    upscale models)."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    picture = torch.randint(0, 256, (1, 3, height, width), generator=torch.Generator().manual_seed(seed))
    return picture, picture.float() / 255


def save_case_images(out: Path, prefix: str, case_name: str, images) -> list[str]:
    """Saves a pipeline case's PIL outputs as <prefix>_<case>_<k>.png in `out`, printing each one's size and
    statistics; returns the file names."""
    import numpy as np

    files = []
    for k, im in enumerate(images):
        name = f"{prefix}_{case_name}_{k}.png"
        im.save(out / name)
        files.append(name)
        arr = np.asarray(im)
        print(f"{case_name}[{k}]: {im.size}, mean {arr.mean():.1f}, std {arr.std():.1f}")
    return files


def write_cases(out: Path, prefix: str, script: str, seed: int | None, cases: list[dict], **fields) -> None:
    """Writes <prefix>_cases.json: the metadata (with torch's CPU capability, which decides torch.randn's
    math), `fields` (where the models and tokenizers are) and the cases."""
    import torch

    payload = {
        "_meta": fixture_metadata(script, seed, torch_cpu_capability=torch.backends.cpu.get_cpu_capability()),
        **fields,
        "cases": cases,
    }
    (out / f"{prefix}_cases.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


def with_sorted_header(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header keys sorted.

    The reference writer emits the metadata map in hash order, so two runs would give
    different bytes for the same tensors; sorting makes regeneration byte-for-byte stable.
    Offsets are relative to the data section, so only the header changes.
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + blob[8 + n :]


def save_fixture(name: str, tensors: dict, script: str, seed: int | None = None, **extra) -> Path:
    """Saves torch tensors (made contiguous) as tests/fixtures/<name>, deterministically."""
    from safetensors.torch import save

    path = FIXTURES / name
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = save({k: v.contiguous() for k, v in tensors.items()}, metadata=fixture_metadata(script, seed, **extra))
    path.write_bytes(with_sorted_header(blob))
    return path


def save_json_fixture(name: str, payload: dict, script: str) -> Path:
    path = FIXTURES / name
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"_meta": fixture_metadata(script), **payload}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path
