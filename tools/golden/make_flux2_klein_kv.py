"""Golden fixtures for FLUX.2 klein KV (black-forest-labs/FLUX.2-klein-9b-kv: diffusers Flux2KleinKVPipeline) on the
tiny klein model of make_flux2_pipeline.py.

The KV model edits like klein, but its reference tokens attend only to each other and are modulated at a fixed time
(0), so they are the same at every step: the pipeline runs them once (step 0, "extract") and afterwards reuses
their keys and values in every attention ("cached"). Rebuilds that script's components (same seed; checked against
the committed tiny_klein), wraps them in Flux2KleinKVPipeline and writes:
  tests/fixtures/flux2_pipeline/tiny_klein_kv/
      model_index.json (Flux2KleinKVPipeline) and scheduler/ only: the components are tiny_klein's
  tests/fixtures/flux2_pipeline/flux2_kv_tiny_diffusers_transformer_io.safetensors
      the transformer on [references ; image] in extract mode, then in cached mode at another time
  tests/fixtures/flux2_pipeline/flux2_kv_tiny_diffusers_<case>_<k>.png, ..._cases.json
      each case's outputs (the references are make_flux2_pipeline.py's flux2_tiny_diffusers_ref_*.png)
"""

from __future__ import annotations

import json
import os
import shutil

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # zflow's default randn; tiny_klein's cases were made under it too
import torch  # noqa: E402

from common import save_case_images, save_fixture, write_cases  # noqa: E402
from make_flux2_pipeline import OUT, PROMPT, PROMPT_2, SCHEDULER, build_pipelines, make_references  # noqa: E402

SEED = 20261207
KV = OUT / "tiny_klein_kv"
PREFIX = "flux2_kv_tiny_diffusers"

CASES = [
    # One reference: the output takes its size.
    dict(name="kv_edit", prompt=PROMPT, steps=3, seed=41, references=["ref_a"]),
    # Two references (cropped), a requested size, a batch of two.
    dict(name="kv_edit_two", prompt=PROMPT_2, width=48, height=64, steps=2, seed=42, num_images=2,
         references=["ref_b", "ref_c"]),
    # No reference: plain klein text to image.
    dict(name="kv_text", prompt=PROMPT, width=64, height=48, steps=2, seed=43),
]


def transformer_fixture(transformer) -> None:
    """The transformer alone: tokens [references (a 4x5 grid at t = 10) ; image (3x4 at t = 0)], a batch of two."""
    from diffusers.pipelines.flux2.pipeline_flux2_klein_kv import Flux2KleinKVPipeline

    gen = torch.Generator().manual_seed(SEED)
    c = transformer.config
    refs = torch.randn(2, 20, c.in_channels, generator=gen)
    img = torch.randn(2, 12, c.in_channels, generator=gen)
    img_later = torch.randn(2, 12, c.in_channels, generator=gen)
    txt = torch.randn(2, 7, c.joint_attention_dim, generator=gen)

    def grid(rows: int, cols: int, t: float) -> torch.Tensor:
        r, k = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
        return torch.stack([torch.full_like(r, int(t)), r, k, torch.zeros_like(r)], -1).reshape(-1, 4).float()

    ref_ids, img_ids = grid(4, 5, 10), grid(3, 4, 0)
    txt_ids = torch.stack([torch.zeros(7), torch.zeros(7), torch.zeros(7), torch.arange(7).float()], -1)
    pipe = Flux2KleinKVPipeline.__new__(Flux2KleinKVPipeline)  # only its processor setup is wanted
    pipe.transformer = transformer
    Flux2KleinKVPipeline._set_kv_attn_processors(pipe)
    with torch.no_grad():
        extract, cache = transformer(hidden_states=torch.cat([refs, img], 1), timestep=torch.tensor([0.8, 0.8]),
                                     guidance=None, encoder_hidden_states=txt, txt_ids=txt_ids,
                                     img_ids=torch.cat([ref_ids, img_ids]), return_dict=False, kv_cache_mode="extract",
                                     num_ref_tokens=20)
        cached = transformer(hidden_states=img_later, timestep=torch.tensor([0.3, 0.3]), guidance=None,
                             encoder_hidden_states=txt, txt_ids=txt_ids, img_ids=img_ids, return_dict=False,
                             kv_cache=cache, kv_cache_mode="cached")[0]
    save_fixture("flux2_pipeline/flux2_kv_tiny_diffusers_transformer_io.safetensors",
                 {"refs": refs, "img": img, "img_later": img_later, "txt": txt, "extract": extract,
                  "cached": cached}, __file__, SEED, ref_grid=[4, 5, 10], img_grid=[3, 4, 0], t=[0.8, 0.3])


def main() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinKVPipeline
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    klein = build_pipelines()["tiny_klein"]
    saved = load_file(str(OUT / "tiny_klein" / "transformer" / "diffusion_pytorch_model.safetensors"))
    for name, p in klein.transformer.state_dict().items():
        assert torch.equal(saved[name].float(), p.float()), f"{name}: rebuilt weights differ"
    pipe = Flux2KleinKVPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER), vae=klein.vae,
                                text_encoder=klein.text_encoder, tokenizer=klein.tokenizer,
                                transformer=klein.transformer)
    pipe.set_progress_bar_config(disable=True)

    shutil.rmtree(KV, ignore_errors=True)
    for stale in OUT.glob(f"{PREFIX}_*"):
        stale.unlink()
    pipe.save_config(str(KV))
    pipe.scheduler.save_pretrained(str(KV / "scheduler"))
    index = json.loads((KV / "model_index.json").read_text())
    assert index["_class_name"] == "Flux2KleinKVPipeline", index

    transformer_fixture(klein.transformer)
    references = make_references()
    entries = []
    for case in CASES:
        with torch.no_grad():
            images = pipe(image=[references[r] for r in case.get("references", [])] or None, prompt=case["prompt"],
                          width=case.get("width"), height=case.get("height"), num_inference_steps=case["steps"],
                          num_images_per_prompt=case.get("num_images", 1),
                          generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="pil").images
        files = save_case_images(OUT, PREFIX, case["name"], images)
        entries.append(dict(case, references=[f"flux2_tiny_diffusers_{r}.png" for r in case.get("references", [])],
                            expected=files))
    write_cases(OUT, PREFIX, __file__, SEED, entries, tokenizer="../shared/assets/qwen3_tokenizer",
                components="tiny_klein")


if __name__ == "__main__":
    main()
