"""Golden token ids for the CLIP-L tokenizer (FLUX.1's first text encoder).

Reads the shared tokenizer assets (never copied into the repository):
  ../shared/assets/flux1_tokenizer/tokenizer_clip_l/{vocab.json,merges.txt,tokenizer_config.json}

Writes tests/fixtures/clip/clip_tokenizer_cases.json with
  cases: [{text, ids, padded_ids, legacy_slow_ids?}]
    ids:        transformers CLIPTokenizer(text, add_special_tokens=True).input_ids (no truncation)
    padded_ids: what FluxPipeline._get_clip_prompt_embeds feeds CLIP-L:
                tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids
    legacy_slow_ids: only where it differs from ids: the pre-v5 pure-Python CLIPTokenizer as it ran
                without ftfy (BasicTokenizer clean-up, which puts spaces around CJK ideographs and
                drops control characters; greedy "merge every lowest-rank pair" BPE), re-implemented
                below from that code's logic, for the record.
transformers 5 has only the tokenizers-backed CLIPTokenizer (CLIPTokenizerFast is the same class);
the script checks that a tokenizers.Tokenizer built from the same files and parts agrees.
Deterministic: the random mixes use a fixed seed.
"""

from __future__ import annotations

import json
import random
import unicodedata

import regex
from tokenizers import Tokenizer
from transformers import CLIPTokenizer

from common import REPO, save_json_fixture

SEED = 20261128
FOLDER = REPO.parent / "shared" / "assets" / "flux1_tokenizer" / "tokenizer_clip_l"
MAX_LENGTH = 77

BASE = [
    "",
    " ",
    "a",
    "A",
    "a photo of a cat",
    "A photo of a Cat",
    "A PHOTO OF A CAT",
    "a cat holding a sign that says hello world",
    "Hello, world!",
    "hello world",
    "hello   world",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cform feeds",
    "non\u00a0breaking\u3000ideographic\u2003em\u2028line\u2029para\u202fnarrow\u205fmath\u1680ogham\x85nel",
    "zero\u200bwidth\ufeffbom\u180emongolian",
    "a!\u180e!b \u180e \u180e\u180e x\u180e",
    "control\x00null\x01soh\x1cfs\x1fus\x7fdel",
    "it's a dog's life, isn't it? we're here, they've gone, I'm fine, you'll see, he'd go",
    "IT'S ALL CAPS CONTRACTIONS WE'RE I'M",
    "o'clock rock'n'roll 'quoted' ''double'' '''triple'''",
    "’curly’ apostrophes don’t split",
    "12345",
    "3.14159 and 2,718 and 1e-9 and -42",
    "1920x1080, 4k, 8K UHD, 35mm f/1.8",
    "year 2024; price $19.99; 100% off; #1 fan @ home",
    "A_B-C.D:E;F!G?H",
    "!!!???...,,,;;;",
    "(parentheses) [brackets] {braces} <angles>",
    "email@example.com https://example.com/path?q=1&r=2#frag",
    "emoji 😀 🐱‍👤 👍🏽 🇯🇵 ❤️",
    "😀😀😀",
    "🐈 cat",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 co\u00f6perate",
    "cafe\u0301 (decomposed e + acute)",
    "\u00c9COLE \u00c0 PARIS",
    "Stra\u00dfe STRASSE \u1e9e",
    "\u0130stanbul \u0049STANBUL",
    "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 \u03c3\u03c2",
    "\u0434\u043e\u0431\u0440\u043e\u0435 \u0443\u0442\u0440\u043e \u041c\u041e\u0421\u041a\u0412\u0410",
    "\u4e00\u53ea\u732b",
    "\u4e00\u53ea\u7a7f\u7740\u7ea2\u8272\u65d7\u888d\u7684\u767d\u732b",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\u30ab\u30bf\u30ab\u30ca",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "mixed \u4e2d\u6587 and English",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "\u01c4 \u01c5 \u01c6 ligature \ufb01 \ufb02",
    "\u2160\u2161\u2162 roman numerals \u2460\u2461 circled \u00bd \u00b2",
    "\u0661\u0662\u0663 arabic-indic digits \u096a\u096b",
    "full\uff37\uff49\uff44\uff54\uff48 \uff21\uff22\uff23 \uff11\uff12\uff13",
    "<|startoftext|>a photo<|endoftext|>",
    "<|endoftext|>",
    "<|ENDOFTEXT|> and <|STARTOFTEXT|>",
    "a<|endoftext|>b <|startoftext|> c",
    "<|endoftext",
    "</w> literal end of word marker",
    "&amp; &lt;html&gt; &quot;entities&quot; stay as written",
    "ÃƒÂ© mojibake stays (no ftfy)",
    "a\u0301\u0302\u0303 stacked marks",
    "\u0300leading combining mark",
    "\ufffd replacement char",
    "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
    "masterpiece, best quality, ultra-detailed, 8k, photorealistic, (sharp focus:1.2)",
    "a photograph of an astronaut riding a horse on mars, trending on artstation",
    "portrait of a woman, oil painting by Rembrandt, chiaroscuro lighting, highly detailed",
    "a cozy cabin in the snowy mountains at dusk, warm light in the windows, smoke from the chimney",
    "cyberpunk city street at night, neon signs in Japanese, rain reflections, cinematic, 35mm",
]

LONG = [
    " ".join(["a beautiful landscape with mountains and rivers and trees and a blue sky"] * 8),
    "A highly detailed digital painting of a majestic dragon perched atop an ancient stone tower, "
    "wings spread wide against a stormy sky filled with lightning, its scales shimmering in shades "
    "of emerald and gold, intricate textures, dramatic lighting, volumetric clouds, epic fantasy "
    "art, concept art, matte painting, by Greg Rutkowski and Alphonse Mucha, trending on "
    "ArtStation, 8k resolution, unreal engine 5 render, octane render, ray tracing, cinematic "
    "composition, golden hour, depth of field, bokeh, sharp focus, award winning photograph.",
    "word " * 74,
    "word " * 75,
    "word " * 76,
    "1234567890" * 10,
    "\U0001f600" * 40,
    "\u732b" * 100,
]

WORDS = [
    "cat", "Dog", "HOUSE", "tree's", "isn't", "42", "3.5", "café", "naïve", "日本", "猫", "😀", "🇫🇷",
    "!!", "?", "...", "-", "_", "@", "#", "hello-world", "a/b", "x2", "2x", "Ünïcödé", "ß", "İ", "Σ",
    "привет", "γειά", "\t", "\n", "  ", "\u00a0", "<|endoftext|>", "<|startoftext|>", "</w>",
    "quick", "brown", "fox", "jumps", "over", "lazy", "photorealistic", "ultra", "HDR", "f/2.8",
]


def random_mixes(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        n = rng.randint(1, 12)
        seps = [" ", "", ", ", "  ", "\n", "-"]
        out.append("".join(rng.choice(WORDS) + rng.choice(seps) for _ in range(n)))
    return out


def random_codepoints(rng: random.Random, count: int) -> list[str]:
    """Strings of random characters from many scripts and categories (no surrogates)."""
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
              (0x590, 0x6FF), (0x900, 0x97F), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
              (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x2000, 0x206F), (0x0, 0x1F)]
    out = []
    for _ in range(count):
        chars = []
        for _ in range(rng.randint(1, 20)):
            lo, hi = rng.choice(ranges)
            chars.append(chr(rng.randint(lo, hi)))
        out.append("".join(chars))
    return out


# ---- the pre-v5 slow CLIPTokenizer without ftfy, re-implemented for comparison ----

CLIP_PAT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokenize(text: str) -> list[str]:
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")):
            continue
        cleaned.append(" " if ch in " \t\n\r" or unicodedata.category(ch) == "Zs" else ch)
    text = "".join(f" {c} " if is_cjk(ord(c)) else c for c in cleaned)
    text = unicodedata.normalize("NFC", text)
    return " ".join(t.lower() for t in text.strip().split()).split()


class LegacySlow:
    def __init__(self, tok: CLIPTokenizer):
        self.vocab = tok.get_vocab()
        merges = (FOLDER / "merges.txt").read_text(encoding="utf-8").split("\n")[1:]
        self.ranks = {tuple(m.split()): i for i, m in enumerate(m for m in merges if m)}
        self.byte_encoder = bytes_to_unicode()
        self.specials = ["<|startoftext|>", "<|endoftext|>"]

    def bpe(self, token: str) -> list[str]:
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            first, second = best
            new, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new.extend(word[i:])
                    break
                new.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        return list(word)

    def encode(self, text: str) -> list[int]:
        ids = [self.vocab["<|startoftext|>"]]
        # Added tokens are cut out of the raw text first (PreTrainedTokenizer.tokenize).
        for part in regex.split(r"(<\|startoftext\|>|<\|endoftext\|>)", text):
            if part in self.specials:
                ids.append(self.vocab[part])
                continue
            for tok in CLIP_PAT.findall(" ".join(basic_tokenize(part))):
                mapped = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
                ids.extend(self.vocab[t] for t in self.bpe(mapped))
        ids.append(self.vocab["<|endoftext|>"])
        return ids


def main() -> None:
    rng = random.Random(SEED)
    texts = BASE + LONG + random_mixes(rng, 100) + random_codepoints(rng, 60)
    tok = CLIPTokenizer.from_pretrained(FOLDER)
    # A copy: the tokenizer call with padding leaves padding switched on in its own backend.
    backend = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    legacy = LegacySlow(tok)
    cases, legacy_differs = [], 0
    for text in texts:
        ids = tok(text).input_ids
        padded = tok(text, padding="max_length", max_length=MAX_LENGTH, truncation=True).input_ids
        assert backend.encode(text).ids == ids, text
        assert len(padded) == MAX_LENGTH
        case = {"text": text, "ids": ids, "padded_ids": padded}
        slow = legacy.encode(text)
        if slow != ids:
            case["legacy_slow_ids"] = slow
            legacy_differs += 1
        cases.append(case)
    path = save_json_fixture("clip/clip_tokenizer_cases.json",
                             {"cases": cases, "bos_id": tok.bos_token_id, "eos_id": tok.eos_token_id,
                              "pad_id": tok.pad_token_id}, __file__)
    print(f"wrote {path}: {len(cases)} cases; the legacy slow tokenizer (no ftfy) differs on {legacy_differs}")


if __name__ == "__main__":
    main()
