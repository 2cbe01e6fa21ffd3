"""Golden fixtures for Mistral's text model as FLUX.2-dev encodes prompts with it, on a tiny random config.

Builds transformers' Mistral3ForConditionalGeneration (FLUX.2-dev's text_encoder class) with a tiny Pixtral
vision tower and a tiny Mistral language model that has Mistral-Small's structure (grouped kv heads, no q/k
norm, half-split RoPE, SwiGLU, eps 1e-5; head_dim x heads != hidden as in Mistral-Small's 32 x 128 != 5120) and
RoPE theta 1e4 (Mistral-Small's 1e9 would barely turn a head of 8 features). Writes:
  tests/fixtures/mistral/tiny_diffusers/text_encoder/{config.json, model.safetensors}
      save_pretrained of the whole model, float32 (the vision tower and projector included: a loader must
      pick the language model out)
  tests/fixtures/mistral/mistral_tiny_diffusers_io.safetensors
      as Flux2Pipeline._get_mistral_3_small_prompt_embeds runs it, on a batch of three id rows padded on the
      LEFT with the pad id to 40 (attention mask 0 there), transformers' default (SDPA) attention:
      ids [3, 40] (int32), lengths [3] (int32: the real ids, at the end of each row), and
      out [3, 40, 3 x 48]: hidden states (1, 2, 3) stacked on the features, every row (FLUX.2-dev reads
      (10, 20, 30) of Mistral-Small's 40 layers; the tiny model has 4)
Token ids are drawn below the tiny vocab (1000), never the pad id.
"""

from __future__ import annotations

import shutil

import torch

from common import FIXTURES, save_fixture

SEED = 20261206
LENGTHS = [40, 17, 1]  # unpadded, padded, a single real token
MAX_LENGTH = 40
PAD_ID = 11  # Mistral's <pad>
TAPS = (1, 2, 3)
TEXT = dict(
    vocab_size=1000,
    hidden_size=48,
    intermediate_size=80,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    hidden_act="silu",
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    sliding_window=None,
    tie_word_embeddings=False,
    initializer_range=0.3,
)
VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, head_dim=8,
              image_size=32, patch_size=8, num_channels=3)


def build():
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration, MistralConfig, PixtralVisionConfig

    torch.manual_seed(SEED)
    config = Mistral3Config(vision_config=PixtralVisionConfig(**VISION), text_config=MistralConfig(**TEXT),
                            image_token_index=10, spatial_merge_size=2)
    model = Mistral3ForConditionalGeneration(config).eval()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim == 1:  # norms away from 1, so a skipped or misplaced norm shows
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return model


def main() -> None:
    torch.set_num_threads(1)
    model = build()
    folder = FIXTURES / "mistral" / "tiny_diffusers" / "text_encoder"
    if folder.parent.exists():
        shutil.rmtree(folder.parent)
    model.save_pretrained(str(folder), safe_serialization=True)

    gen = torch.Generator().manual_seed(SEED + 1)
    ids = torch.full((len(LENGTHS), MAX_LENGTH), PAD_ID, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(LENGTHS):
        real = torch.randint(12, TEXT["vocab_size"], (n,), generator=gen)
        ids[row, MAX_LENGTH - n:] = real
        mask[row, MAX_LENGTH - n:] = 1
    with torch.no_grad():
        output = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
    out = torch.stack([output.hidden_states[k] for k in TAPS], dim=1)  # as the pipeline stacks them
    b, c, length, d = out.shape
    out = out.permute(0, 2, 1, 3).reshape(b, length, c * d)
    assert torch.isfinite(out).all()
    path = save_fixture("mistral/mistral_tiny_diffusers_io.safetensors",
                        {"ids": ids.to(torch.int32), "lengths": torch.tensor(LENGTHS, dtype=torch.int32), "out": out},
                        __file__, SEED, taps=list(TAPS), pad_id=PAD_ID,
                        attention=model.config._attn_implementation)
    print(f"wrote {folder} and {path}; attention {model.config._attn_implementation}")


if __name__ == "__main__":
    main()
