"""Golden fixtures for FLUX.1's T5-XXL encoder (T5 v1.1), on a tiny random config.

Builds a transformers T5EncoderModel with T5 v1.1's structure (gated-gelu FFN with gelu_new,
RMS-style layer norm without mean or bias, relative position bias in block 0 only, 32
bidirectional buckets up to distance 128, no attention scaling, untied heads d_kv * heads !=
d_model as in XXL's 64 * 64 = 4096 only by coincidence) but tiny sizes. Weights are rounded to
bfloat16 and stored as float32 (the model runs in float32 on the rounded values) so the files
stay small. Writes:
  tests/fixtures/t5/tiny_diffusers/text_encoder_2/{config.json, model-0000X-of-0000N.safetensors,
      model.safetensors.index.json}   save_pretrained, sharded as FLUX's text_encoder_2/ is
  tests/fixtures/t5/t5_tiny_comfy_weights.safetensors
      the same weights as ComfyUI's t5xxl_*.safetensors names them (shared.weight plus the
      encoder.* names, no encoder.embed_tokens.weight)
  tests/fixtures/t5/t5_tiny_diffusers_io.safetensors
      ids_len{N} (int32) and last_hidden_state out_len{N} [N, d_model] for N in LENGTHS, run as
      FLUX's pipeline runs it: no attention mask. The 300-token case holds relative distances
      past max_distance 128 and trailing pad ids 0, as a padded prompt does.
"""

from __future__ import annotations

import shutil

import torch
from safetensors.torch import save_file
from transformers import T5Config, T5EncoderModel

from common import FIXTURES, save_fixture

SEED = 20261128
LENGTHS = [1, 9, 40, 300]
CONFIG = dict(
    vocab_size=200,
    d_model=32,
    d_kv=12,
    d_ff=56,
    num_layers=3,
    num_heads=4,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.0,
    layer_norm_epsilon=1e-6,
    feed_forward_proj="gated-gelu",
    is_encoder_decoder=True,
    tie_word_embeddings=False,
    pad_token_id=0,
    eos_token_id=1,
)


def main() -> None:
    torch.manual_seed(SEED)
    model = T5EncoderModel(T5Config(**CONFIG)).eval()
    with torch.no_grad():
        for p in model.parameters():
            # Larger than the init so the bias and the norms matter; bf16-rounded values.
            p.copy_((torch.randn_like(p) * 0.5).to(torch.bfloat16).float())
    folder = FIXTURES / "t5" / "tiny_diffusers" / "text_encoder_2"
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, max_shard_size="20KB")
    comfy = {k: v.contiguous() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    save_fixture("t5/t5_tiny_comfy_weights.safetensors", comfy, "make_t5_encoder.py", seed=SEED)
    tensors = {}
    gen = torch.Generator().manual_seed(SEED + 1)
    for n in LENGTHS:
        ids = torch.randint(2, CONFIG["vocab_size"], (1, n), generator=gen)
        if n >= 40:
            ids[0, n // 2] = 1  # </s>
            ids[0, n // 2 + 1:] = 0  # padding, attended since no mask is passed
        with torch.no_grad():
            out = model(input_ids=ids).last_hidden_state[0]
        tensors[f"ids_len{n}"] = ids[0].to(torch.int32)
        tensors[f"out_len{n}"] = out.contiguous()
    path = save_fixture("t5/t5_tiny_diffusers_io.safetensors", tensors, "make_t5_encoder.py", seed=SEED)
    print("wrote", folder, path)


if __name__ == "__main__":
    main()
