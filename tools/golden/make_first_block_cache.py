"""Golden pipeline runs with First Block Cache (diffusers 0.42.1 hooks/first_block_cache.py).

The tiny Z-Image and FLUX.1-dev pipelines of make_zimage_pipeline.py / make_flux_pipeline.py
(loaded as make_sampler_pipelines.py loads them) get transformers with more blocks, since the cache
needs a first, a last and something between: Z-Image with 3 main layers, FLUX.1 with 2 double and 2
single blocks (random, rounded to bf16, saved beside the fixtures). Then:
  - FLUX.1: transformer.enable_cache(FirstBlockCacheConfig(threshold)); FluxPipeline runs its
    passes in cache contexts "cond" and "uncond" (true CFG);
  - Z-Image: apply_first_block_cache on the transformer, in one cache context around the whole
    run (ZImagePipeline sets none; its one forward per step carries both CFG halves). diffusers
    registers ZImageTransformerBlock for the cache, but the hooks look its input up by the name
    "hidden_states", which that block calls "x": the registry entry is told it is the first
    argument. The hooks' logic is untouched.
Every call's statistic (mean |r - r_prev| / mean |r_prev|) is recorded; each case's threshold is
the one of 0.30, 0.31, ..., 1.50 that skips the most calls (at least two) while at least two after the
first still run, with no statistic within 0.01 of it (so float32 summation order cannot flip a
decision).

Writes tests/fixtures/first_block_cache/: the two transformers, each case's 8-bit outputs and
first_block_cache_cases.json (with the decisions).

Run: ~/.venvs/zflow-golden/bin/python tools/golden/make_first_block_cache.py
"""

from __future__ import annotations

import shutil

import torch
from diffusers import FluxTransformer2DModel, ZImageTransformer2DModel
from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache
from diffusers.hooks import first_block_cache as fbc
from diffusers.hooks._helpers import TransformerBlockRegistry
from diffusers.hooks.hooks import CacheContext, HookRegistry, _set_cache_context
from diffusers.models.transformers.transformer_z_image import ZImageTransformerBlock

import make_flux_pipeline as flux_fixture
import make_zimage_pipeline as zimage_fixture
from common import FIXTURES, save_case_images, write_cases
from make_sampler_pipelines import load_flux, load_zimage

OUT = FIXTURES / "first_block_cache"
PREFIX = "first_block_cache"
SEED = 20261208
THRESHOLDS = [round(0.3 + 0.01 * k, 2) for k in range(121)]  # 0.30, 0.31, ..., 1.50
MARGIN = 0.01

CASES = [
    dict(name="zimage_turbo", family="zimage", prompt="a red fox sitting in fresh snow, morning light",
         guidance=0.0, steps=16, seed=42, width=64, height=48),
    dict(name="zimage_cfg", family="zimage", prompt="a lighthouse in a storm, oil painting",
         negative_prompt="blurry, low quality", guidance=4.0, steps=10, seed=7, width=48, height=48),
    dict(name="flux_dev", family="flux1", prompt="a red fox sitting in fresh snow, morning light",
         guidance=3.5, steps=16, seed=42, width=64, height=48),
    dict(name="flux_true_cfg", family="flux1", prompt="a lighthouse in a storm, oil painting",
         negative_prompt="blurry, low quality", true_cfg_scale=3.0, guidance=3.5, steps=8, seed=3,
         width=48, height=48),
]

STATISTICS: list[float | None] = []


def recording(original):
    def should_compute(self, residual):
        state = self.state_manager.get_state()
        prev = state.head_block_residual
        STATISTICS.append(None if prev is None else ((residual - prev).abs().mean() / prev.abs().mean()).item())
        return original(self, residual)

    return should_compute


def zimage_transformer(gen: torch.Generator) -> ZImageTransformer2DModel:
    t = ZImageTransformer2DModel(**dict(zimage_fixture.TRANSFORMER, n_layers=3)).eval()
    zimage_fixture.randomize_(t, gen, gain_prefixes=("layers.", "cap_embedder."))
    zimage_fixture.round_to_bf16_(t)
    t.save_pretrained(str(OUT / "zimage_transformer"), safe_serialization=True)
    zimage_fixture.store_bf16(OUT / "zimage_transformer", keep_f32=lambda name: "pad_token" in name)
    return t


def flux_transformer(gen: torch.Generator) -> FluxTransformer2DModel:
    config = dict(flux_fixture.TRANSFORMER, num_layers=2, num_single_layers=2)
    t = FluxTransformer2DModel(**config, guidance_embeds=True).eval()
    flux_fixture.randomize_(t, gen, flux_fixture.TRANSFORMER_GAINS)
    flux_fixture.round_to_bf16_(t)
    t.save_pretrained(str(OUT / "flux_transformer"), safe_serialization=True)
    flux_fixture.store_bf16(OUT / "flux_transformer")
    return t


def run(pipe, case: dict, threshold: float | None):
    transformer = pipe.transformer
    HookRegistry.check_if_exists_or_initialize(transformer).reset_stateful_hooks(recurse=True)
    if threshold is not None:
        fbc_head = HookRegistry.check_if_exists_or_initialize(transformer)._get_child_registries()
        for registry in fbc_head:
            hook = registry.get_hook(fbc._FBC_LEADER_BLOCK_HOOK)
            if hook is not None:
                hook.threshold = threshold
    kwargs = dict(prompt=case["prompt"], num_inference_steps=case["steps"], guidance_scale=case["guidance"],
                  generator=torch.Generator("cpu").manual_seed(case["seed"]), width=case["width"],
                  height=case["height"], output_type="pil")
    if "negative_prompt" in case:
        kwargs["negative_prompt"] = case["negative_prompt"]
    if "true_cfg_scale" in case:
        kwargs["true_cfg_scale"] = case["true_cfg_scale"]
    if case["family"] == "zimage":
        _set_cache_context(transformer, CacheContext("cond"))
    STATISTICS.clear()
    images = pipe(**kwargs).images
    return images, list(STATISTICS)


def decisions(statistics: list[float | None], threshold: float) -> list[bool]:
    return [s is None or s > threshold for s in statistics]


def main() -> None:
    torch.set_num_threads(1)  # summation order of the reference does not depend on the machine's cores
    fbc.FBCHeadBlockHook._should_compute_remaining_blocks = recording(
        fbc.FBCHeadBlockHook._should_compute_remaining_blocks)
    TransformerBlockRegistry.get(ZImageTransformerBlock)._cached_parameter_indices = {"hidden_states": 0}

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)  # the models' default initialisation, which randomize_ scales
    zimage, flux = load_zimage(), load_flux()
    zimage.transformer = zimage_transformer(gen)
    flux.transformer = flux_transformer(gen)
    apply_first_block_cache(zimage.transformer, FirstBlockCacheConfig(threshold=THRESHOLDS[0]))
    flux.transformer.enable_cache(FirstBlockCacheConfig(threshold=THRESHOLDS[0]))
    pipes = {"zimage": zimage, "flux1": flux}
    for pipe in pipes.values():
        pipe.set_progress_bar_config(disable=True)

    entries = []
    for case in CASES:
        pipe = pipes[case["family"]]
        best = None
        for threshold in THRESHOLDS:
            images, statistics = run(pipe, case, threshold)
            made = decisions(statistics, threshold)
            near = [s for s in statistics if s is not None and abs(s - threshold) < MARGIN]
            if made[1:].count(True) >= 2 and not near and (best is None or made.count(False) > best[3].count(False)):
                best = (threshold, images, statistics, made)
        if best is None or best[3].count(False) < 2:
            raise SystemExit(f"{case['name']}: no threshold gives a clear mix of decisions")
        threshold, images, statistics, made = best
        files = save_case_images(OUT, PREFIX, case["name"], images)
        skipped = made.count(False)
        print(f"{case['name']}: threshold {threshold}, {skipped} of {len(made)} calls skipped, "
              f"statistics {[None if s is None else round(s, 3) for s in statistics]}")
        entries.append(dict(case, threshold=threshold, expected=files, calls=len(made), skipped_calls=skipped,
                            runs_later_blocks=made, statistics=statistics))

    write_cases(OUT, PREFIX, __file__, SEED, entries, zimage_model="zimage_pipeline/tiny",
                zimage_transformer="first_block_cache/zimage_transformer", flux_model="flux_pipeline/tiny_dev",
                flux_transformer="first_block_cache/flux_transformer")


if __name__ == "__main__":
    main()
