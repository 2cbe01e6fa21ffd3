"""A llama.cpp-style GGUF of the tiny Mistral text model (make_mistral_text.py), as convert_hf_to_gguf.py writes
Mistral's: general.architecture "llama", gguf.TensorNameMap's names for MODEL_ARCH.LLAMA, the llama.* hyper-parameters
(key_length written because head_dim x heads != hidden), and the q / k projection rows permuted as its
LlamaModel.permute does (each head's rotary pairs (j, j + D/2) moved to rows (2j, 2j + 1)). Every tensor F32, so
the encoder's output must equal transformers' on the original weights (mistral_tiny_diffusers_io.safetensors).

It also carries a small Tekken tokenizer in the tokenizer.ggml.* keys: Mistral's 1,000 special tokens (control),
the 256 byte tokens and the next TOKENS_KEPT tokens of the real vocabulary, with the merges among them, pre
"tekken". Writes:
  tests/fixtures/gguf/mistral_tiny_llamacpp_weights.gguf
  tests/fixtures/gguf/mistral_tiny_llamacpp_tokenizer_cases.json
      [{text, ids}]: ids from tokenizers' Tekken conversion (make_mistral_tokenizer.py's) of that small vocabulary
"""

from __future__ import annotations

import json

import gguf
import numpy as np
from safetensors import safe_open

from common import FIXTURES, fixture_metadata, save_json_fixture
from make_mistral_tokenizer import SPECIAL_TOKENS, TEKKEN_PATTERN, TOKENIZER

TOKENS_KEPT = 400  # past the specials and the bytes
TEXTS = ["", "Hello world", "the cat sat on the mat, then the dog", "[INST]an instruction[/INST]</s>",
         "camelCase and UPPER lower 12345", "  spaces\n\nand lines\t", "naïve café 東京 🙂"]


def llama_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def small_tokenizer():
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE

    vocab = json.loads((TOKENIZER / "vocab.json").read_text())
    by_id = {i: t for t, i in vocab.items()}
    kept = [by_id[i] for i in range(SPECIAL_TOKENS + 256 + TOKENS_KEPT)]
    kept_set = set(kept)
    lines = (TOKENIZER / "merges.txt").read_text().split("\n")[1:]
    merges = [m for m in lines if m and all(p in kept_set for p in m.split(" ")) and m.replace(" ", "") in kept_set]
    core = Tokenizer(BPE({t: i for i, t in enumerate(kept)}, [tuple(m.split(" ")) for m in merges], fuse_unk=False,
                         ignore_merges=True))
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(TEKKEN_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([AddedToken(kept[i], special=True) for i in range(SPECIAL_TOKENS)])
    return kept, merges, core


def main() -> None:
    folder = FIXTURES / "mistral" / "tiny_diffusers" / "text_encoder"
    cfg = json.loads((folder / "config.json").read_text())["text_config"]
    n_layers, n_head, n_kv = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    path = FIXTURES / "gguf" / "mistral_tiny_llamacpp_weights.gguf"
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, n_layers)
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_key_length(cfg["head_dim"])
    writer.add_value_length(cfg["head_dim"])
    writer.add_rope_dimension_count(cfg["head_dim"])
    theta = cfg["rope_parameters"]["rope_theta"] if "rope_parameters" in cfg else cfg["rope_theta"]
    writer.add_rope_freq_base(theta)
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    for key, value in fixture_metadata(__file__).items():
        writer.add_string(f"zflow.fixture.{key}", value)

    kept, merges, core = small_tokenizer()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("tekken")
    writer.add_token_list(kept)
    writer.add_token_types([gguf.TokenType.CONTROL] * SPECIAL_TOKENS +
                           [gguf.TokenType.NORMAL] * (len(kept) - SPECIAL_TOKENS))
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(11)

    prefix = "language_model.model."
    with safe_open(folder / "model.safetensors", "pt") as f:
        for full in f.keys():
            if not full.startswith(prefix):
                continue  # the vision tower and projector: not part of the text model's GGUF
            hf_name = full[len(prefix):]
            tensor = f.get_tensor(full).float().numpy()
            if hf_name.endswith("q_proj.weight"):
                tensor = llama_permute(tensor, n_head, n_head)
            elif hf_name.endswith("k_proj.weight"):
                tensor = llama_permute(tensor, n_head, n_kv)
            name = names.get_name("model." + hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise SystemExit(f"no llama.cpp name for {hf_name}")
            writer.add_tensor(name, np.ascontiguousarray(tensor))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    cases = [{"text": t, "ids": core.encode(t).ids} for t in TEXTS]
    save_json_fixture("gguf/mistral_tiny_llamacpp_tokenizer_cases.json", {"cases": cases}, __file__)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB), {len(merges)} merges, {len(cases)} tokenizer cases")


if __name__ == "__main__":
    main()
