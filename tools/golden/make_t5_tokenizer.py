"""Golden token ids for FLUX.1's T5-XXL tokenizer (SentencePiece unigram, spiece.model).

Reads the shared tokenizer assets (never copied into the repository):
  ../shared/assets/flux1_tokenizer/tokenizer_t5/{tokenizer.json,tokenizer_config.json,spiece.model}

Writes tests/fixtures/t5/t5_tokenizer_cases.json with
  cases: [{text, max_length, ids}]  what diffusers' FluxPipeline._get_t5_prompt_embeds feeds T5:
         T5TokenizerFast(text, padding="max_length", max_length=L, truncation=True) with L = 512
         (dev) for every text and L = 256 (schnell) for a subset. ids are the input_ids where the
         attention mask is 1 (EOS included); the script checks that the rest are all pad id 0, so
         the test re-pads with 0 up to max_length.
The texts reuse the Qwen3 tokenizer case lists (make_tokenizer.py) and add T5-specific ones:
spelled special tokens, whitespace runs at the edges, tabs and newlines, prompts over 512 tokens.
Deterministic: the random mixes use a fixed seed.
"""

from __future__ import annotations

import random

from transformers import T5TokenizerFast

import make_tokenizer as qwen
from common import REPO, save_json_fixture

SEED = 20261128
ASSET = REPO.parent / "shared" / "assets" / "flux1_tokenizer" / "tokenizer_t5"
DEV_MAX_LENGTH = 512
SCHNELL_MAX_LENGTH = 256

T5_SPECIFIC = [
    "<extra_id_0>",
    "a <extra_id_0> b",
    "a<extra_id_0>b",
    "The <extra_id_0> walks in <extra_id_1> park",
    "<extra_id_99><extra_id_98> <extra_id_42>",
    "</s>",
    "hello</s>world",
    "hello </s> world </s>",
    "<pad> padded <pad>",
    "<unk> unknown <unk>",
    "<s> is not a T5 token",
    "<extra_id_100> is not a token either",
    "<EXTRA_ID_0> upper case",
    "<extra_id_0",
    "extra_id_0>",
    "  leading spaces",
    "trailing spaces   ",
    "   both   ",
    "inner    runs     of      spaces",
    "tab\tseparated\tvalues",
    "new\nline\n\nparagraph",
    "\r\nwindows line ends\r\n",
    " ",
    "",
    "\t\n ",
    "a  <extra_id_0>  b",
    "x </s>",
    "non\u00a0breaking\u2003em space\u3000ideographic",
    "zero\u200bwidth\u200djoiner",
    "ﬁ ligature, ① circled, ＡＢＣ fullwidth, ½ fraction, ™ sign",
    "café naïve résumé coöperate São Paulo Zürich Ångström",
    "Crème brûlée à la française, œuvre, Æsop",
    "Ελληνικά, русский, עברית, العربية",
    "1,234,567.89 3.14159 1e-10 -42 +7 0x1F 2026-11-28 12:30:45",
    "$100 €50 £20 ¥1000 ₹500 100% 3/4 #hashtag @mention",
    "a photo of a cat, 8k, highly detailed, trending on artstation, by greg rutkowski",
    "portrait of a woman with flowers in her hair, soft light, bokeh, 85mm, f/1.8",
    "A cat holding a sign that says hello world",
]


def long_prompts() -> list[str]:
    rng = random.Random(SEED)
    words = ("a photo of the red cat sitting on a wooden table in a sunny garden with "
             "flowers and butterflies highly detailed cinematic lighting").split()
    out = [" ".join(rng.choice(words) for _ in range(count)) for count in (300, 480, 520, 700, 1200)]
    out.append(qwen.long_prompt())
    out.append("pneumonoultramicroscopicsilicovolcanoconiosis " * 80)
    return out


def texts() -> list[str]:
    groups = (qwen.ENGLISH, qwen.CHINESE, qwen.JAPANESE, qwen.KOREAN, qwen.OTHER_SCRIPTS, qwen.EMOJI,
              qwen.DIGITS, qwen.WHITESPACE, qwen.CODE, qwen.URLS, qwen.NFD, qwen.RARE, T5_SPECIFIC)
    out = [t for group in groups for t in group]
    out += qwen.random_mixes(40)
    out += long_prompts()
    seen = set()
    return [t for t in out if qwen.surrogate_free(t) and not (t in seen or seen.add(t))]


def encode(tokenizer: T5TokenizerFast, text: str, max_length: int) -> list[int]:
    enc = tokenizer(text, padding="max_length", max_length=max_length, truncation=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert len(ids) == max_length
    length = sum(mask)
    assert mask == [1] * length + [0] * (max_length - length)
    assert all(i == 0 for i in ids[length:])
    return ids[:length]


def main() -> None:
    tokenizer = T5TokenizerFast.from_pretrained(ASSET)
    all_texts = texts()
    cases = [{"text": t, "max_length": DEV_MAX_LENGTH, "ids": encode(tokenizer, t, DEV_MAX_LENGTH)}
             for t in all_texts]
    cases += [{"text": t, "max_length": SCHNELL_MAX_LENGTH, "ids": encode(tokenizer, t, SCHNELL_MAX_LENGTH)}
              for t in all_texts[::4] + long_prompts()]
    assert len(cases) >= 200, len(cases)
    assert any(len(c["ids"]) == DEV_MAX_LENGTH and c["ids"][-1] == 1 for c in cases)
    path = save_json_fixture("t5/t5_tokenizer_cases.json", {"cases": cases}, "make_t5_tokenizer.py")
    print(f"wrote {path} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
