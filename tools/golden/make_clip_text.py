"""Golden fixtures for the CLIP text encoder (FLUX.1's CLIP-L) on a tiny random config.

Builds a transformers CLIPTextModel with CLIP-L's structure (pre-LN, causal attention with
biases, quick_gelu MLP, final LayerNorm, eps 1e-5, 77 positions, eos_token_id 2 so pooling takes
argmax(ids)) but tiny sizes: hidden 64, 4 heads (head dim 16, so a 64-wide head assumption
fails), 3 layers, intermediate 96, vocab 1000. Writes, all float32:
  tests/fixtures/clip/tiny_diffusers/text_encoder/{config.json, model.safetensors}
      the CLIPTextModel's config and state dict with keys under `text_model.`, the layout of
      FLUX.1's text_encoder/ folder (and of ComfyUI's clip_l.safetensors)
  tests/fixtures/clip/clip_tiny_diffusers_io.safetensors
      for each case N: ids_{N} (int32), last_hidden_state_{N} [L, 64], pooled_{N} [64]
      (pooler_output). Cases: 0 = FLUX's shape: BOS, 20 random ids, EOS, padded to 77 with EOS
      (the vocabulary's last id stands for <|endoftext|>, BOS for <|startoftext|> is the one
      before); 1 = 9 tokens, no padding; 2 = a full 77 tokens with no EOS (truncated prompt
      whose EOS was cut: argmax then picks the largest random id).
"""

from __future__ import annotations

import shutil

import torch
from transformers import CLIPTextConfig, CLIPTextModel

from common import FIXTURES, save_fixture

SEED = 20261128
VOCAB = 1000
EOS = VOCAB - 1
BOS = VOCAB - 2
CONFIG = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    eos_token_id=2,
    bos_token_id=0,
    pad_token_id=1,
)


def main() -> None:
    torch.manual_seed(SEED)
    config = CLIPTextConfig(**CONFIG)
    config._attn_implementation = "eager"
    model = CLIPTextModel(config).eval()
    # The default init leaves LayerNorms at 1/0 and biases small; perturb everything so a
    # swapped weight/bias or a missing term shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.1 if "norm" in name else 0.02))

    folder = FIXTURES / "clip" / "tiny_diffusers" / "text_encoder"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    # transformers 5's save_pretrained writes the keys without `text_model.`; FLUX.1's
    # text_encoder/ (saved by transformers 4) and ComfyUI's clip_l.safetensors have it.
    save_fixture("clip/tiny_diffusers/text_encoder/model.safetensors",
                 {f"text_model.{k}": v for k, v in model.state_dict().items()}, __file__, SEED)
    config.to_json_file(folder / "config.json")

    g = torch.Generator().manual_seed(SEED)
    case0 = [BOS] + torch.randint(0, BOS, (20,), generator=g).tolist() + [EOS]
    case0 += [EOS] * (77 - len(case0))
    case1 = [BOS] + torch.randint(0, BOS, (7,), generator=g).tolist() + [EOS]
    case2 = [BOS] + torch.randint(0, BOS, (76,), generator=g).tolist()
    tensors = {}
    with torch.no_grad():
        for n, ids in enumerate([case0, case1, case2]):
            out = model(input_ids=torch.tensor([ids]))
            tensors[f"ids_{n}"] = torch.tensor(ids, dtype=torch.int32)
            tensors[f"last_hidden_state_{n}"] = out.last_hidden_state[0].float()
            tensors[f"pooled_{n}"] = out.pooler_output[0].float()
            print(n, len(ids), "pooled at", int(torch.tensor(ids).argmax()),
                  "scale", float(out.last_hidden_state.abs().max()))
    path = save_fixture("clip/clip_tiny_diffusers_io.safetensors", tensors, __file__, SEED, config=CONFIG)
    print("wrote", path, "and", folder)


if __name__ == "__main__":
    main()
