"""Golden fixtures for the Qwen3 text encoder as Z-Image uses it, on a tiny random config.

Builds a transformers Qwen3Model with Qwen3-4B's structure (grouped kv heads, per-head
q/k RMSNorm, half-split RoPE with theta 1e6, SwiGLU MLP, eps 1e-6) but tiny sizes. The
head dim (16) times the heads (4) is not the hidden size (48), as in Qwen3-4B (32 x 128 !=
2560), so code that confuses the two fails. Writes, all float32:
  tests/fixtures/qwen3/tiny_diffusers/text_encoder/{config.json, model-0000X-of-0000N.safetensors,
      model.safetensors.index.json}
      save_pretrained of the Qwen3Model, sharded (a small max_shard_size) as Z-Image's
      text_encoder/ folder is
  tests/fixtures/qwen3/qwen3_tiny_comfy_weights.safetensors
      the same weights under `model.` (ComfyUI's qwen_3_4b.safetensors naming), cut to what
      hidden_states[-2] needs: the last layer and the final norm are left out
  tests/fixtures/qwen3/qwen3_tiny_diffusers_io.safetensors
      ids_len{N} (int32) and hidden_states[-2] out_len{N} [N, 48] for N in LENGTHS, one
      sequence per forward; a batch of two prompts run as the pipeline runs it (right padding
      to a max length, attention_mask, hidden_states[-2], rows where the mask is 1):
      batch_ids_{0,1}, batch_out_{0,1}; and the model's own RoPE tables for 100 positions,
      rope_cos / rope_sin [100, head_dim]; and as FLUX.2 klein encodes (pad id 7 to the max
      length, the attention mask, hidden states (1, 2, 3) stacked on the features, every row):
      klein_ids [2, 40] (int32), klein_lengths [2] (int32), klein_out [2, 40, 3 x 48].
Token ids are drawn below the tiny vocab (1000). One more case keeps the real vocab (151936)
and real ids, with hidden 16 and only the embedding rows those ids use stored (the whole
table would be 9.7 MB):
  tests/fixtures/qwen3/qwen3_realvocab_diffusers_sparse_weights.safetensors
      every weight of that model except embed_tokens.weight, plus embed_tokens.row_ids
      (int32 [U]) and embed_tokens.rows [U, 16]; the other rows are zero in the model
  tests/fixtures/qwen3/qwen3_realvocab_pipeline_io.safetensors
      Z-Image's _encode_prompt on two prompts (one empty, as the default negative prompt)
      with the real Qwen3 tokenizer (../shared/assets/qwen3_tokenizer): chat template,
      padding to max_length, attention mask, hidden_states[-2], the mask == 1 rows:
      ids_{0,1} (int32) and out_{0,1}; the prompts are in the metadata.
"""

from __future__ import annotations

import shutil

import torch
from transformers import Qwen3Config, Qwen3Model

from common import FIXTURES, REPO, save_fixture

SEED = 20251128
LENGTHS = [1, 7, 32, 33, 100]
BATCH_LENGTHS = [33, 7]
BATCH_MAX_LENGTH = 40  # the pipeline pads to max_sequence_length, past the longest prompt
PAD_ID = 0
KLEIN_PAD_ID = 7  # any id but 0: padding with the wrong id changes the padded rows
KLEIN_TAPS = (1, 2, 3)  # klein reads (9, 18, 27) of Qwen3's 36 layers; the tiny model has 4
CONFIG = dict(
    vocab_size=1000,
    hidden_size=48,
    intermediate_size=80,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    hidden_act="silu",
    max_position_embeddings=4096,
    rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    tie_word_embeddings=True,
    attention_bias=False,
    use_sliding_window=False,
)


def hidden_minus_2(model: Qwen3Model, ids: torch.Tensor, mask: torch.Tensor, config: dict = CONFIG) -> torch.Tensor:
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert len(out.hidden_states) == config["num_hidden_layers"] + 1
    return out.hidden_states[-2]


REAL_SEED = 20251129
REAL_CONFIG = dict(
    CONFIG,
    vocab_size=151936,
    hidden_size=16,
    intermediate_size=24,
    num_hidden_layers=3,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=8,
)
REAL_PROMPTS = ["A red apple on a wooden table, 4K photo. 午后的阳光", ""]
REAL_MAX_LENGTH = 48  # the pipeline's max_sequence_length is 512; any length past the prompts


def randomize(model: Qwen3Model) -> None:
    """The default init leaves norms at 1; random norm weights make a skipped norm visible."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.5 * (torch.rand_like(p) - 0.5))
            elif p.ndim == 2 and "embed" not in name:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)


def make_real_vocab_case() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(REPO.parent / "shared" / "assets" / "qwen3_tokenizer"))
    torch.manual_seed(REAL_SEED)
    config = Qwen3Config(**REAL_CONFIG)
    config._attn_implementation = "eager"
    model = Qwen3Model(config).eval()
    randomize(model)

    # ZImagePipeline._encode_prompt (diffusers 0.42.1), with a shorter max_length.
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True, enable_thinking=True
        )
        for p in REAL_PROMPTS
    ]
    inputs = tokenizer(texts, padding="max_length", max_length=REAL_MAX_LENGTH, truncation=True, return_tensors="pt")
    masks = inputs.attention_mask.bool()
    io: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        out = hidden_minus_2(model, inputs.input_ids, masks, REAL_CONFIG)
    for i in range(len(REAL_PROMPTS)):
        io[f"ids_{i}"] = inputs.input_ids[i][masks[i]].to(torch.int32)
        io[f"out_{i}"] = out[i][masks[i]]
    save_fixture(
        "qwen3/qwen3_realvocab_pipeline_io.safetensors", io, __file__, REAL_SEED,
        prompts=REAL_PROMPTS, config=REAL_CONFIG,
    )

    weights = {k: v.detach().clone() for k, v in model.state_dict().items() if k != "embed_tokens.weight"}
    row_ids = torch.unique(inputs.input_ids)
    weights["embed_tokens.row_ids"] = row_ids.to(torch.int32)
    weights["embed_tokens.rows"] = model.embed_tokens.weight.detach()[row_ids].clone()
    save_fixture("qwen3/qwen3_realvocab_diffusers_sparse_weights.safetensors", weights, __file__, REAL_SEED)


def main() -> None:
    torch.manual_seed(SEED)
    config = Qwen3Config(**CONFIG)
    config._attn_implementation = "eager"
    model = Qwen3Model(config).eval()
    randomize(model)

    folder = FIXTURES / "qwen3" / "tiny_diffusers" / "text_encoder"
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder, max_shard_size="200KB", safe_serialization=True)

    last = CONFIG["num_hidden_layers"] - 1
    comfy = {
        "model." + k: v.detach().clone()
        for k, v in model.state_dict().items()
        if not k.startswith(f"layers.{last}.") and k != "norm.weight"
    }
    save_fixture("qwen3/qwen3_tiny_comfy_weights.safetensors", comfy, __file__, SEED)

    gen = torch.Generator().manual_seed(SEED + 1)
    io: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for n in LENGTHS:
            ids = torch.randint(0, CONFIG["vocab_size"], (1, n), generator=gen)
            out = hidden_minus_2(model, ids, torch.ones_like(ids))
            io[f"ids_len{n}"] = ids[0].to(torch.int32)
            io[f"out_len{n}"] = out[0]

        ids = torch.full((len(BATCH_LENGTHS), BATCH_MAX_LENGTH), PAD_ID, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, n in enumerate(BATCH_LENGTHS):
            ids[i, :n] = torch.randint(1, CONFIG["vocab_size"], (n,), generator=gen)
            mask[i, :n] = 1
        out = hidden_minus_2(model, ids, mask.bool())
        for i, n in enumerate(BATCH_LENGTHS):
            io[f"batch_ids_{i}"] = ids[i, :n].to(torch.int32)
            io[f"batch_out_{i}"] = out[i][mask[i].bool()]

        positions = torch.arange(100)[None]
        cos, sin = model.rotary_emb(torch.zeros(1, dtype=torch.float32), positions)
        io["rope_cos"], io["rope_sin"] = cos[0], sin[0]

        # FLUX.2 klein's use (Flux2KleinPipeline._get_qwen3_prompt_embeds): right padding with the
        # pad id to a fixed length, the attention mask, and hidden states KLEIN_TAPS stacked per
        # token, every row (padding included) kept.
        ids = torch.full((len(BATCH_LENGTHS), BATCH_MAX_LENGTH), KLEIN_PAD_ID, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, n in enumerate(BATCH_LENGTHS):
            ids[i, :n] = torch.randint(0, CONFIG["vocab_size"], (n,), generator=gen)
            mask[i, :n] = 1
        hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        stacked = torch.stack([hidden[k] for k in KLEIN_TAPS], dim=1)
        b, taps, length, width = stacked.shape
        io["klein_ids"] = ids.to(torch.int32)
        io["klein_lengths"] = mask.sum(dim=1).to(torch.int32)
        io["klein_out"] = stacked.permute(0, 2, 1, 3).reshape(b, length, taps * width)

    save_fixture("qwen3/qwen3_tiny_diffusers_io.safetensors", io, __file__, SEED, config=CONFIG)
    make_real_vocab_case()


if __name__ == "__main__":
    main()
