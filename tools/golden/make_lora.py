"""LoRA goldens: the tiny Z-Image and FLUX.1 transformers with a random LoRA, run by PEFT.

Oracle: PEFT adapters on diffusers' ZImageTransformer2DModel / FluxTransformer2DModel (the
unfused forward, W x + scale * B (A x)), and diffusers' own LoRA loaders for the file layouts they
read (ZImagePipeline / FluxPipeline.lora_state_dict, then load_lora_adapter). The same update is
written in the layouts trainers use:
  Z-Image  zimage_lora_peft      transformer.<diffusers module>.lora_A/B.weight, alpha folded in
           zimage_lora_kohya     lora_unet_<module with underscores>.lora_down/up.weight + .alpha
           zimage_lora_comfy     diffusion_model.<original module>.lora_A/B.weight + .alpha, the
                                 q/k/v updates fused into attention.qkv (they share A), to_out.0
                                 as attention.out
  FLUX.1   flux_lora_peft        transformer.<diffusers module>.lora_A/B.weight
           flux_lora_kohya       lora_unet_<BFL module>.lora_down/up.weight + .alpha: fused
                                 img_attn.qkv / txt_attn.qkv; neither linear1 (diffusers splits it
                                 at the release's widths only) nor final_layer (diffusers 0.42.1
                                 converts it without the transformer. prefix, so load_lora_adapter
                                 drops it), so its expected output is diffusers' reading of it
           flux_lora_bfl         diffusion_model.<BFL module>.lora_A/B.weight + .alpha, every
                                 module: linear1 and final_layer (its (shift, scale) halves in BFL
                                 order) too
  FLUX.2   flux2_lora_peft       transformer.<diffusers module>.lora_A/B.weight
           flux2_lora_bfl        diffusion_model.<BFL module>.lora_A/B.weight + .alpha, every
                                 module (fused qkv; linear1 / linear2 are fused in diffusers too)
                                 (outputs in lora_tiny_flux2_outputs.safetensors)
The fused layouts need the fused parts to share A: the script makes them so. The files but
flux_lora_kohya hold the same update, so one expected output per case serves them; the script
checks that diffusers' loaders reproduce it from the files they read.
"""

from __future__ import annotations

import torch
from diffusers import FluxPipeline, FluxTransformer2DModel, ZImagePipeline, ZImageTransformer2DModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file

from common import FIXTURES, save_fixture

SEED = 5150
RANK, ALPHA = 4, 8.0  # PEFT scale alpha / rank = 2
SCALES = (1.0, 0.75)  # the user's strength (PEFT adapter weight)

# Every block's projections and modulation, the patch embedder and the final layer (PEFT reads a
# string as a regular expression over module names).
ZIMAGE_TARGETS = (
    r".*(\.\d+\.(attention\.(to_q|to_k|to_v|to_out\.0)|feed_forward\.w[123]|adaLN_modulation\.0)"
    r"|all_x_embedder\.2-1|all_final_layer\.2-1\.(linear|adaLN_modulation\.1))"
)
ZIMAGE_CASES = ["h6w10_cap31_t03", "batch_h6w10_cap5_cap20"]
FLUX_TARGETS = [
    "to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2", "proj_mlp",
    "proj_out", "norm1.linear", "norm1_context.linear", "norm.linear", "norm_out.linear",
]
FLUX_CASES = ["h3w5_txt5_t1", "batch_h2w3_txt6"]


def add_random_lora(model, targets, gen, shared_a):
    """A PEFT adapter with random A and B; modules named in each group of `shared_a` (suffixes
    under one parent) get the first one's A, so their updates fuse into one down matrix."""
    model.add_adapter(LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=targets, init_lora_weights=False))
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, m in modules.items():
            if hasattr(m, "lora_A") and "default" in m.lora_A:
                m.lora_A["default"].weight.copy_(torch.randn(m.lora_A["default"].weight.shape, generator=gen) * 0.1)
                m.lora_B["default"].weight.copy_(torch.randn(m.lora_B["default"].weight.shape, generator=gen) * 0.1)
        for parent, group in shared_a:
            first = modules[f"{parent}.{group[0]}"].lora_A["default"].weight
            for part in group[1:]:
                modules[f"{parent}.{part}"].lora_A["default"].weight.copy_(first)


def peft_pairs(model):
    """{diffusers module: (A, B * alpha / rank)}: the update with PEFT's scale folded into B."""
    sd = get_peft_model_state_dict(model)
    pairs = {}
    for key, a in sd.items():
        if key.endswith(".lora_A.weight"):
            module = key[: -len(".lora_A.weight")]
            pairs[module] = (a.clone(), sd[module + ".lora_B.weight"].clone() * (ALPHA / RANK))
    return pairs


def set_scale(model, scale):
    model.set_adapters(["default"], weights=[scale])


def fresh_with_file(cls, folder, pipeline_cls, path):
    """A model loaded from `folder` with the LoRA file read by diffusers' own loader."""
    model = cls.from_pretrained(folder).eval()
    state = pipeline_cls.lora_state_dict(str(path))
    if isinstance(state, tuple):
        state = state[0]
    model.load_lora_adapter(state, prefix="transformer", adapter_name="default")
    return model


def write(name, tensors, note):
    return save_fixture(f"lora/{name}", tensors, __file__, SEED, note=note)


def kohya(module):
    return "lora_unet_" + module.replace(".", "_")


def write_peft(name, pairs):
    tensors = {}
    for module, (a, b) in pairs.items():
        tensors[f"transformer.{module}.lora_A.weight"] = a
        tensors[f"transformer.{module}.lora_B.weight"] = b
    return write(name, tensors, "PEFT names, alpha folded into B")


def record_outputs(family, model, run, io, cases, outputs):
    """The adapted model's outputs at every strength, and how far the LoRA moves them."""
    set_scale(model, 0.0)
    base = {case: run(model, io, case) for case in cases}
    for scale in SCALES:
        set_scale(model, scale)
        for case in cases:
            out = run(model, io, case)
            outputs[f"{family}.{case}.scale{scale}"] = out
            print(f"{family} {case} scale {scale}: LoRA moves the output by",
                  ((out - base[case]).norm() / base[case].norm()).item())


def check_diffusers_reads(cls, folder, pipeline_cls, path, run, io, case, want):
    check = fresh_with_file(cls, folder, pipeline_cls, path)
    diff = (run(check, io, case) - want).abs().max()
    print(f"diffusers reading {path.name}: max diff {diff.item():.2e}")
    assert diff < 1e-4, path


# ---- Z-Image ----------------------------------------------------------------------------------

def zimage_run(model, io, case):
    t = io[f"{case}.t"]
    latents = io[f"{case}.latents"]
    caps = [io[f"{case}.caption{i}"] for i in range(len(t))]
    with torch.no_grad():
        out = model(x=[l.unsqueeze(1) for l in latents], t=t, cap_feats=caps, return_dict=False)[0]
    return torch.stack([o.squeeze(1) for o in out])


def zimage_original(module):
    """The original (ComfyUI) name of a diffusers module, for the non-fused ones."""
    return (module.replace("attention.to_out.0", "attention.out")
            .replace("all_x_embedder.2-1", "x_embedder")
            .replace("all_final_layer.2-1", "final_layer"))


def make_zimage(gen, outputs):
    folder = FIXTURES / "zimage_dit" / "tiny_diffusers" / "transformer"
    io = load_file(str(FIXTURES / "zimage_dit" / "zimage_dit_tiny_diffusers_io.safetensors"))
    model = ZImageTransformer2DModel.from_pretrained(folder).eval()
    blocks = [n[: -len(".attention")] for n, _ in model.named_modules() if n.endswith(".attention")]
    add_random_lora(model, ZIMAGE_TARGETS, gen, [(f"{b}.attention", ["to_q", "to_k", "to_v"]) for b in blocks])
    pairs = peft_pairs(model)

    peft_path = write_peft("zimage_lora_peft.safetensors", pairs)

    kohya_sd, comfy = {}, {}
    for module, (a, b) in pairs.items():
        b_raw = b * (RANK / ALPHA)  # with .alpha = ALPHA the reader scales by ALPHA / RANK
        kohya_sd[f"{kohya(module)}.lora_down.weight"] = a
        kohya_sd[f"{kohya(module)}.lora_up.weight"] = b_raw
        kohya_sd[f"{kohya(module)}.alpha"] = torch.tensor(ALPHA)
        if module.endswith((".to_k", ".to_v")):
            continue
        if module.endswith(".to_q"):
            parent = module[: -len(".to_q")]
            ups = [pairs[f"{parent}.{p}"][1] * (RANK / ALPHA) for p in ("to_q", "to_k", "to_v")]
            name, up = f"diffusion_model.{parent}.qkv", torch.cat(ups)
        else:
            name, up = f"diffusion_model.{zimage_original(module)}", b_raw
        comfy[f"{name}.lora_A.weight"] = a
        comfy[f"{name}.lora_B.weight"] = up
        comfy[f"{name}.alpha"] = torch.tensor(ALPHA)
    kohya_path = write("zimage_lora_kohya.safetensors", kohya_sd, "kohya lora_unet_ names with alpha")
    write("zimage_lora_comfy.safetensors", comfy, "original names, fused qkv, with alpha")

    record_outputs("zimage", model, zimage_run, io, ZIMAGE_CASES, outputs)
    for path in (peft_path, kohya_path):
        check_diffusers_reads(ZImageTransformer2DModel, folder, ZImagePipeline, path, zimage_run, io,
                              ZIMAGE_CASES[0], outputs[f"zimage.{ZIMAGE_CASES[0]}.scale1.0"])


# ---- FLUX.1 -----------------------------------------------------------------------------------

def flux_run(model, io, case):
    with torch.no_grad():
        return model(
            hidden_states=io[f"{case}.hidden_states"],
            encoder_hidden_states=io[f"{case}.encoder_hidden_states"],
            pooled_projections=io[f"{case}.pooled_projections"],
            timestep=io[f"{case}.timestep"],
            img_ids=io[f"{case}.img_ids"],
            txt_ids=torch.zeros(io[f"{case}.encoder_hidden_states"].shape[1], 3),
            guidance=io[f"{case}.guidance"],
            return_dict=False,
        )[0]


# BFL module -> the diffusers modules its rows become (in order) and whether its halves swap.
def flux_bfl_modules(double, single):
    table = {"final_layer.linear": (["proj_out"], False),
             "final_layer.adaLN_modulation.1": (["norm_out.linear"], True)}
    for i in range(double):
        d = f"transformer_blocks.{i}"
        table.update({
            f"double_blocks.{i}.img_attn.qkv": ([f"{d}.attn.to_q", f"{d}.attn.to_k", f"{d}.attn.to_v"], False),
            f"double_blocks.{i}.txt_attn.qkv": ([f"{d}.attn.add_q_proj", f"{d}.attn.add_k_proj", f"{d}.attn.add_v_proj"], False),
            f"double_blocks.{i}.img_attn.proj": ([f"{d}.attn.to_out.0"], False),
            f"double_blocks.{i}.txt_attn.proj": ([f"{d}.attn.to_add_out"], False),
            f"double_blocks.{i}.img_mlp.0": ([f"{d}.ff.net.0.proj"], False),
            f"double_blocks.{i}.img_mlp.2": ([f"{d}.ff.net.2"], False),
            f"double_blocks.{i}.txt_mlp.0": ([f"{d}.ff_context.net.0.proj"], False),
            f"double_blocks.{i}.txt_mlp.2": ([f"{d}.ff_context.net.2"], False),
            f"double_blocks.{i}.img_mod.lin": ([f"{d}.norm1.linear"], False),
            f"double_blocks.{i}.txt_mod.lin": ([f"{d}.norm1_context.linear"], False),
        })
    for i in range(single):
        s = f"single_transformer_blocks.{i}"
        table.update({
            f"single_blocks.{i}.linear1": ([f"{s}.attn.to_q", f"{s}.attn.to_k", f"{s}.attn.to_v", f"{s}.proj_mlp"], False),
            f"single_blocks.{i}.linear2": ([f"{s}.proj_out"], False),
            f"single_blocks.{i}.modulation.lin": ([f"{s}.norm.linear"], False),
        })
    return table


def swap_halves(t):
    first, second = t.chunk(2, dim=0)
    return torch.cat([second, first])


def make_flux(gen, outputs):
    folder = FIXTURES / "flux_dit" / "tiny_dev_diffusers" / "transformer"
    io = load_file(str(FIXTURES / "flux_dit" / "flux_dit_tiny_diffusers_io.safetensors"))
    model = FluxTransformer2DModel.from_pretrained(folder).eval()
    double, single = len(model.transformer_blocks), len(model.single_transformer_blocks)
    shared = [(f"transformer_blocks.{i}.attn", ["to_q", "to_k", "to_v"]) for i in range(double)]
    shared += [(f"transformer_blocks.{i}.attn", ["add_q_proj", "add_k_proj", "add_v_proj"]) for i in range(double)]
    add_random_lora(model, FLUX_TARGETS, gen, shared)
    with torch.no_grad():  # linear1's mlp rows share the q/k/v A too
        for i in range(single):
            blk = model.single_transformer_blocks[i]
            a = blk.attn.to_q.lora_A["default"].weight
            for m in (blk.attn.to_k, blk.attn.to_v, blk.proj_mlp):
                m.lora_A["default"].weight.copy_(a)
    pairs = peft_pairs(model)

    peft_path = write_peft("flux_lora_peft.safetensors", pairs)

    kohya_sd, bfl = {}, {}
    for bfl_module, (parts, swap) in flux_bfl_modules(double, single).items():
        a = pairs[parts[0]][0]
        up = torch.cat([pairs[p][1] for p in parts])
        if swap:  # the diffusers weight holds (scale, shift); BFL's holds (shift, scale)
            up = swap_halves(up)
        if not bfl_module.endswith(".linear1") and not bfl_module.startswith("final_layer"):
            kohya_sd[f"{kohya(bfl_module)}.lora_down.weight"] = a
            kohya_sd[f"{kohya(bfl_module)}.lora_up.weight"] = up * (RANK / ALPHA)
            kohya_sd[f"{kohya(bfl_module)}.alpha"] = torch.tensor(ALPHA)
        bfl[f"diffusion_model.{bfl_module}.lora_A.weight"] = a
        bfl[f"diffusion_model.{bfl_module}.lora_B.weight"] = up * (RANK / ALPHA)
        bfl[f"diffusion_model.{bfl_module}.alpha"] = torch.tensor(ALPHA)
    kohya_path = write("flux_lora_kohya.safetensors", kohya_sd, "kohya lora_unet_ BFL names with alpha")
    write("flux_lora_bfl.safetensors", bfl, "BFL names under diffusion_model., with alpha")

    record_outputs("flux", model, flux_run, io, FLUX_CASES, outputs)
    check_diffusers_reads(FluxTransformer2DModel, folder, FluxPipeline, peft_path, flux_run, io,
                          FLUX_CASES[0], outputs[f"flux.{FLUX_CASES[0]}.scale1.0"])
    # diffusers splits kohya's linear1 at the release's widths only, so that file leaves the
    # single blocks' linear1 out and its expected output is diffusers' reading of it.
    check = fresh_with_file(FluxTransformer2DModel, folder, FluxPipeline, kohya_path)
    for case in FLUX_CASES:
        outputs[f"flux.kohya.{case}"] = flux_run(check, io, case)


# ---- FLUX.2 ------------------------------------------------------------------------------------

FLUX2_TARGETS = (
    r".*(\.(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out|linear_in|linear_out"
    r"|to_qkv_mlp_proj)|single_transformer_blocks\.\d+\.attn\.to_out"
    r"|_modulation_(img|txt)\.linear|single_stream_modulation\.linear|norm_out\.linear|proj_out"
    r"|x_embedder|context_embedder)"
)
FLUX2_CASES = ["h3w5_txt5_t1", "ref_h2w3_r3x2_txt4"]


def flux2_run(model, io, case):
    with torch.no_grad():
        return model(
            hidden_states=io[f"{case}.hidden_states"],
            encoder_hidden_states=io[f"{case}.encoder_hidden_states"],
            timestep=io[f"{case}.timestep"],
            img_ids=io[f"{case}.img_ids"],
            txt_ids=io[f"{case}.txt_ids"],
            guidance=io[f"{case}.guidance"],
            return_dict=False,
        )[0]


# BFL module -> the diffusers modules its rows become (in order) and whether its halves swap
# (facts/flux.md section 2.3).
def flux2_bfl_modules(double, single):
    table = {"img_in": (["x_embedder"], False), "txt_in": (["context_embedder"], False),
             "final_layer.linear": (["proj_out"], False),
             "final_layer.adaLN_modulation.1": (["norm_out.linear"], True)}
    for m in ("double_stream_modulation_img", "double_stream_modulation_txt", "single_stream_modulation"):
        table[f"{m}.lin"] = ([f"{m}.linear"], False)
    for i in range(double):
        d = f"transformer_blocks.{i}"
        table.update({
            f"double_blocks.{i}.img_attn.qkv": ([f"{d}.attn.to_q", f"{d}.attn.to_k", f"{d}.attn.to_v"], False),
            f"double_blocks.{i}.txt_attn.qkv": ([f"{d}.attn.add_q_proj", f"{d}.attn.add_k_proj", f"{d}.attn.add_v_proj"], False),
            f"double_blocks.{i}.img_attn.proj": ([f"{d}.attn.to_out.0"], False),
            f"double_blocks.{i}.txt_attn.proj": ([f"{d}.attn.to_add_out"], False),
            f"double_blocks.{i}.img_mlp.0": ([f"{d}.ff.linear_in"], False),
            f"double_blocks.{i}.img_mlp.2": ([f"{d}.ff.linear_out"], False),
            f"double_blocks.{i}.txt_mlp.0": ([f"{d}.ff_context.linear_in"], False),
            f"double_blocks.{i}.txt_mlp.2": ([f"{d}.ff_context.linear_out"], False),
        })
    for i in range(single):
        s = f"single_transformer_blocks.{i}"
        table.update({
            f"single_blocks.{i}.linear1": ([f"{s}.attn.to_qkv_mlp_proj"], False),
            f"single_blocks.{i}.linear2": ([f"{s}.attn.to_out"], False),
        })
    return table


def make_flux2(gen, outputs):
    """FLUX.2 (the tiny dev transformer of make_flux2_dit.py): a PEFT file and a BFL-named one
    (diffusion_model.<BFL module>.lora_A/B + alpha, fused qkv, the final modulation's halves in
    BFL order), written to their own outputs file."""
    from diffusers import Flux2KleinPipeline, Flux2Transformer2DModel

    folder = FIXTURES / "flux2_dit" / "tiny_dev_diffusers" / "transformer"
    io = load_file(str(FIXTURES / "flux2_dit" / "flux2_dit_tiny_diffusers_io.safetensors"))
    model = Flux2Transformer2DModel.from_pretrained(folder).eval()
    double, single = len(model.transformer_blocks), len(model.single_transformer_blocks)
    shared = [(f"transformer_blocks.{i}.attn", ["to_q", "to_k", "to_v"]) for i in range(double)]
    shared += [(f"transformer_blocks.{i}.attn", ["add_q_proj", "add_k_proj", "add_v_proj"]) for i in range(double)]
    add_random_lora(model, FLUX2_TARGETS, gen, shared)
    pairs = peft_pairs(model)
    peft_path = write_peft("flux2_lora_peft.safetensors", pairs)
    bfl = {}
    for bfl_module, (parts, swap) in flux2_bfl_modules(double, single).items():
        a = pairs[parts[0]][0]
        up = torch.cat([pairs[p][1] for p in parts])
        if swap:  # the diffusers weight holds (scale, shift); BFL's holds (shift, scale)
            up = swap_halves(up)
        bfl[f"diffusion_model.{bfl_module}.lora_A.weight"] = a
        bfl[f"diffusion_model.{bfl_module}.lora_B.weight"] = up * (RANK / ALPHA)
        bfl[f"diffusion_model.{bfl_module}.alpha"] = torch.tensor(ALPHA)
    assert len(bfl) == 3 * len(flux2_bfl_modules(double, single))
    write("flux2_lora_bfl.safetensors", bfl, "BFL names under diffusion_model., with alpha")
    record_outputs("flux2", model, flux2_run, io, FLUX2_CASES, outputs)
    check_diffusers_reads(Flux2Transformer2DModel, folder, Flux2KleinPipeline, peft_path, flux2_run,
                          io, FLUX2_CASES[0], outputs[f"flux2.{FLUX2_CASES[0]}.scale1.0"])


def main() -> None:
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    outputs = {}
    make_zimage(gen, outputs)
    make_flux(gen, outputs)
    save_fixture("lora/lora_tiny_outputs.safetensors", outputs, __file__, SEED,
                 rank=RANK, alpha=ALPHA, scales=list(SCALES))
    flux2_outputs = {}
    make_flux2(gen, flux2_outputs)
    save_fixture("lora/lora_tiny_flux2_outputs.safetensors", flux2_outputs, __file__, SEED,
                 rank=RANK, alpha=ALPHA, scales=list(SCALES))


if __name__ == "__main__":
    main()
