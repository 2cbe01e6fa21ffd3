"""Golden fixture for reading the byte-level BPE tokenizer a llama.cpp GGUF carries.

Writes tests/fixtures/gguf/qwen3_tokenizer_subset.gguf: metadata only (no tensors), with the
tokenizer.ggml.* keys as llama.cpp's converter writes them for Qwen3 (model "gpt2", pre "qwen2",
token list in id order, token types, merges in rank order), holding the first 1000 tokens of
the real Qwen3 vocabulary (../shared/assets/qwen3_tokenizer) and every merge among them, plus
two added tokens at the end (one CONTROL, one USER_DEFINED). Beside it,
qwen3_tokenizer_subset_cases.json: ids that Hugging Face `tokenizers` gives for the same
vocabulary, merges, added tokens, NFC normaliser and Qwen2 pre-tokenizer.
"""
import json
import sys
from pathlib import Path

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

sys.path.insert(0, str(Path(__file__).parent))
from common import fixture_metadata, save_json_fixture  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "gguf"
SOURCE = ROOT / ".." / "shared" / "assets" / "qwen3_tokenizer" / "tokenizer.json"
KEPT = 1000
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
ADDED = [("<|im_start|>", gguf.TokenType.CONTROL, True), ("<think>", gguf.TokenType.USER_DEFINED, False)]
TEXTS = [
    "Hello, world!", "a red fox sitting in fresh snow, morning light", "  two  spaces\tand\ttabs\n\n",
    "一只穿着红色旗袍的白猫", "<|im_start|>user\nhi<|im_end|>", "before<think>inside</think>after",
    "numbers 12345 and 3.14159", "emoji 👩‍👩‍👧 flags 🇯🇵", "code: for (int i = 0; i < n; ++i) {}",
    "https://example.com/path?q=1&r=2", "don't can't won't I'm we're", "Ünïcödé café naïve",
    "", " ", "\n", "<|im_start|><|im_start|>", "tokenizer.ggml.merges", "ÀÁÂÃÄÅ",
]


def main() -> None:
    tok = json.loads(SOURCE.resolve().read_text())
    vocab = {t: i for t, i in tok["model"]["vocab"].items() if i < KEPT}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    merges = [m for m in merges
              if all(p in vocab for p in m.split(" ")) and m.replace(" ", "") in vocab]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    types = [gguf.TokenType.NORMAL] * len(tokens)
    for content, kind, _ in ADDED:
        tokens.append(content)
        types.append(kind)

    writer = gguf.GGUFWriter(str(OUT / "qwen3_tokenizer_subset.gguf"), "qwen3")
    for key, value in fixture_metadata(__file__, 0).items():
        writer.add_string(f"zflow.fixture.{key}", value)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()

    hf = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges],
                              ignore_merges=False))
    hf.normalizer = normalizers.NFC()
    hf.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    hf.decoder = decoders.ByteLevel()
    hf.add_tokens([AddedToken(c, special=s, normalized=False) for c, _, s in ADDED])
    for i, (content, _, _) in enumerate(ADDED):
        assert hf.token_to_id(content) == KEPT + i, (content, hf.token_to_id(content))
    cases = [{"text": t, "ids": hf.encode(t, add_special_tokens=False).ids} for t in TEXTS]
    save_json_fixture("gguf/qwen3_tokenizer_subset_cases.json",
                      {"vocab_size": len(tokens), "merges": len(merges), "cases": cases}, __file__)
    print(f"{len(tokens)} tokens, {len(merges)} merges, {len(cases)} cases")


if __name__ == "__main__":
    main()
