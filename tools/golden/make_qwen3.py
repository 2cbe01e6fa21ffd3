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
      rope_cos / rope_sin [100, head_dim].
Token ids are drawn below the tiny vocab (1000); the real vocab would make the embedding
table megabytes.
"""

from __future__ import annotations

import shutil

import torch
from transformers import Qwen3Config, Qwen3Model

from common import FIXTURES, save_fixture

SEED = 20251128
LENGTHS = [1, 7, 32, 33, 100]
BATCH_LENGTHS = [33, 7]
BATCH_MAX_LENGTH = 40  # the pipeline pads to max_sequence_length, past the longest prompt
PAD_ID = 0
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


def hidden_minus_2(model: Qwen3Model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert len(out.hidden_states) == CONFIG["num_hidden_layers"] + 1
    return out.hidden_states[-2]


def main() -> None:
    torch.manual_seed(SEED)
    config = Qwen3Config(**CONFIG)
    config._attn_implementation = "eager"
    model = Qwen3Model(config).eval()
    # The default init leaves norms at 1; random norm weights make a skipped norm visible.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.5 * (torch.rand_like(p) - 0.5))
            elif p.ndim == 2 and "embed" not in name:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)

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

    save_fixture("qwen3/qwen3_tiny_diffusers_io.safetensors", io, __file__, SEED, config=CONFIG)


if __name__ == "__main__":
    main()
