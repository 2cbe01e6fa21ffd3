"""Golden token ids for the Qwen3 byte-level BPE tokenizer (Z-Image / FLUX.2-klein text encoder).

Reads the shared tokenizer assets (never copied into the repository):
  ../shared/assets/qwen3_tokenizer/{tokenizer.json,tokenizer_config.json}
  ../shared/assets/qwen_tokenizer/{vocab.json,merges.txt}

Writes tests/fixtures/tokenizer/qwen3_tokenizer_cases.json with
  cases:      [{text, ids, decoded}]  ids from tokenizers.Tokenizer.from_file(tokenizer.json).encode(text)
              and decoded = decode(ids, skip_special_tokens=False), checked to equal NFC(text);
              the script checks that transformers' Qwen2Tokenizer built from vocab.json + merges.txt
              (plus the added tokens of tokenizer.json) gives the same ids for every case.
  chat_cases: [{prompt, text, ids, attention_length}]  what diffusers' ZImagePipeline._encode_prompt
              feeds the text encoder: apply_chat_template(..., enable_thinking=True), then
              tokenizer(text, padding="max_length", max_length=512, truncation=True); ids are the
              input_ids with attention_mask 1 (the pipeline keeps only those).
  klein_chat_cases: the same for Flux2KleinPipeline (enable_thinking=False), ids all 512 of them,
              padding included: every one reaches its text encoder.
Also writes three tiny byte-level BPE tokenizers (tests/fixtures/tokenizer/tiny_bpe_<variant>_tokenizer.json:
the first 500 Qwen merges, merges stored in the "a b" string form) with added tokens that use the lstrip, rstrip,
single_word and normalized flags and Split steps with behavior Removed and invert, and their ids in
tests/fixtures/tokenizer/tiny_bpe_tokenizer_cases.json.
Deterministic: the random mixes use a fixed seed.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import unicodedata
from pathlib import Path

from common import FIXTURES, REPO, save_json_fixture

SEED = 20240607
ASSETS = REPO.parent / "shared" / "assets"
QWEN3 = ASSETS / "qwen3_tokenizer"
QWEN_VM = ASSETS / "qwen_tokenizer"
MAX_SEQUENCE_LENGTH = 512  # ZImagePipeline default max_sequence_length

CAT_PROMPT = "一只穿着红色旗袍的白猫,坐在中式花园的石桌上,背后是盛开的荷花池"

ENGLISH = [
    "Hello world",
    "hello world",
    "A photo of an astronaut riding a horse on the moon.",
    "I'm here, you're there, they've gone, we'll see, he'd know, it's fine, don't.",
    "I'M HERE, YOU'RE THERE, THEY'VE GONE, WE'LL SEE, HE'D KNOW, IT'S FINE, DON'T.",
    "it'ſ the long s; 'S 'T 'Re 'vE",
    "rock 'n' roll ''quoted'' 'single' \"double\"",
    "The quick brown fox jumps over the lazy dog!?",
    "Mr. O'Neil's cat—named “Whiskers”—isn't here…",
    "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
    "a,b;c:d!e?f.g",
    "(parentheses) [brackets] {braces} <angles>",
    "hyper-realistic, 8k, ultra detailed, cinematic lighting, bokeh",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!!!!!!!!!??????????........",
    "x",
    ".",
    "'",
    "'s",
    "a'",
]

CHINESE = [
    CAT_PROMPT,
    "你好,世界!",
    "一位年轻女子站在樱花树下,阳光透过花瓣洒在她的脸上,电影感,高清。",
    "中文和English混合的句子,包括数字123和标点。",
    "「引号」『书名号』《标题》——破折号……省略号",
    "繁體中文:臺灣的夜市很熱鬧。",
    "山水画,水墨风格,远山近水,一叶扁舟",
]

JAPANESE = [
    "こんにちは、世界!",
    "東京の夜景、ネオンが輝く雨の街角。",
    "カタカナとひらがなと漢字を混ぜた文章です。",
    "ｶﾀｶﾅ半角 全角ＡＢＣ１２３",
]

KOREAN = [
    "안녕하세요, 세계!",
    "서울의 밤거리에 비가 내린다.",
    unicodedata.normalize("NFD", "한국어 자모 분해 NFD 형태"),
]

OTHER_SCRIPTS = [
    "Привет, мир! Ёжик в тумане.",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "Tiếng Việt có dấu: Xin chào thế giới",
    "Zażółć gęślą jaźń",
    "straße STRASSE ǅungla ﬁne ﬂour",
    "ǲ Ǳ ǳ İstanbul ıi",
]

EMOJI = [
    "👍",
    "👍🏽 👍🏿 👋🏻",
    "👨‍👩‍👧‍👦 family",
    "👩🏽‍💻 coder",
    "🏳️‍🌈 🏴‍☠️",
    "🇯🇵🇺🇸🇨🇳🇩🇪",
    "🇯🇵 🇺🇸 🇨🇳",
    "❤️❤️‍🔥 ☺️",
    "a🙂b😀c",
    "🐱🐈‍⬛ cats",
    "#️⃣ 1️⃣ *️⃣",
]

DIGITS = [
    "0",
    "12345678901234567890",
    "3.14159265358979",
    "1,000,000 and 1 000 000 and 1_000_000",
    "2024-06-07T12:34:56Z",
    "+1 (555) 123-4567",
    "version 1.2.3-rc.4",
    "٠١٢٣٤٥٦٧٨٩ ०१२३ ①②③ ½ ² Ⅻ",
    "１２３４５ full width digits",
    "99.9% of 100",
]

WHITESPACE = [
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    "\r\n",
    "\r\n\r\n",
    "\r",
    "   leading spaces",
    "trailing spaces   ",
    "  both  ",
    "\tleading tab",
    "trailing tab\t",
    "a\tb\t\tc",
    "line one\nline two\n\nline four",
    "windows\r\nline\r\nendings\r\n",
    "mixed \t \n \r\n  \t\t  end",
    "   \n   ",
    "word   \n\n   word",
    "a  b   c    d     e",
    "\n\n\nthree leading newlines",
    "trailing newlines\n\n\n",
    " \t\n\r\u000b\u000c",
    "nbsp\u00a0here and\u00a0\u00a0twice",
    "ideographic\u3000space\u3000\u3000",
    "em\u2003space thin\u2009space hair\u200aspace",
    "zero\u200bwidth\u200b space",
    "line\u2028separator\u2029para",
    "next\u0085line",
    "bom\ufeffinside",
    "mongolian\u180evowel",
    "ogham\u1680space",
    "narrow\u202fnbsp medium\u205fmath",
]

CODE = [
    "def f(x):\n    return x * 2\n",
    "int main() {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}",
    "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
    "const x = () => { console.log('hi'); };",
    "<div class=\"a\">&amp; &lt;tag&gt;</div>",
    "SELECT * FROM users WHERE id = 1;",
    "    indented four\n        indented eight\n",
    "x==y && y!=z || !w",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "#include <vector>\nstd::vector<int> v{1,2,3};",
    "\x1b[31mred\x1b[0m",
    "tab\x00null\x01ctrl\x7fdel",
]

URLS = [
    "https://huggingface.co/Tongyi-MAI/Z-Image-Turbo/blob/main/README.md",
    "http://example.com/path?query=1&other=two#frag",
    "mailto:someone@example.org",
    "ftp://files.example.net/pub/file-v1.2.tar.gz",
    "www.example.com/a_b-c~d%20e",
    "C:\\Users\\name\\file.txt",
]

SPECIAL_IN_TEXT = [
    "<|im_start|>",
    "<|endoftext|>",
    "<think>",
    "</think>",
    "hello<|im_start|>world",
    "before <|endoftext|> after",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<think>\n\n</think>\n\n",
    "<think>reasoning</think>answer",
    "<|endoftext|><|endoftext|><|endoftext|>",
    "< |im_start|> <|im_start| <im_start> |im_start|",
    "<|im_start|><|im_end|><|vision_start|><|image_pad|><|vision_end|>",
    "text<tool_call>{\"a\":1}</tool_call>more",
    "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
    "<<|im_start|>>",
    "<|im_start|><|im_start|>",
    "x<think>",
    "  <think>  ",
    "\n<|im_end|>\n",
    "<THINK>",
    "<|IM_START|>",
]

NFD = [
    unicodedata.normalize("NFD", "Café résumé naïve coöperate"),
    "e\u0301",
    "Cafe\u0301",
    "A\u030a and \u212b (angstrom) and \u00c5",
    "\u0301 leading combining mark",
    " \u0301 space then mark",
    "a\u0301\u0301\u0301 stacked marks",
    unicodedata.normalize("NFD", "Ångström Øresund Škoda Ðakovo"),
    "\u1e9b\u0323 long s dot",
    "\ufa10\uf900 cjk compatibility",
    "\u0344 \u0958 \u2126 ohm",
    unicodedata.normalize("NFD", "Tiếng Việt"),
    "\u0041\u0308\u0304 \u01de",
]

RARE = [
    "\U00010348 gothic \U0001d11e music \U0001f600",
    "\ue000 private use \U000f0000",
    "\u00ad soft hyphen",
    "ﷺ ﷽",
    "\u2060word\u2060joiner",
    "a\u034fb combining grapheme joiner",
    "x\u20ddy enclosing circle",
]


def long_prompt() -> str:
    sentence = (
        "A sprawling cyberpunk city at night, neon signs in Chinese and English reflecting on wet streets, "
        "flying cars weaving between towering skyscrapers, a lone figure in a glowing raincoat crossing the "
        "street, volumetric fog, cinematic composition, ultra detailed, 8k resolution. "
        "雨夜的霓虹城市,街道反射着灯光,远处有高耸的摩天大楼。 "
    )
    return " ".join(f"Scene {i}: {sentence}" for i in range(12))


def random_mixes(count: int) -> list[str]:
    rng = random.Random(SEED)
    pool = ENGLISH + CHINESE + JAPANESE + KOREAN + OTHER_SCRIPTS + EMOJI + DIGITS + WHITESPACE + CODE + URLS
    pool += SPECIAL_IN_TEXT + NFD + RARE
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x600, 0x6FF),
              (0x900, 0x97F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x3000, 0x30FF), (0x4E00, 0x9FFF),
              (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1F6FF), (0x1F900, 0x1F9FF)]
    separators = ["", " ", "  ", "\n", "\t", "\r\n", " \n ", "'", "-", "_"]
    mixes = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 5)):
            kind = rng.random()
            if kind < 0.5:
                fragment = rng.choice(pool)
                start = rng.randint(0, len(fragment))
                parts.append(fragment[start:start + rng.randint(1, 40)])
            elif kind < 0.8:
                low, high = rng.choice(ranges)
                parts.append("".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 8))))
            else:
                parts.append(rng.choice(separators) * rng.randint(1, 3))
            parts.append(rng.choice(separators))
        mixes.append("".join(parts))
    return mixes


def surrogate_free(text: str) -> bool:
    return not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def chat_prompts() -> list[str]:
    return [
        CAT_PROMPT,
        "",
        "A photo of an astronaut riding a horse on the moon.",
        "  spaces around\n and a newline  ",
        "prompt that spells <|im_end|> and <think> inside",
        long_prompt(),
    ]


TINY_MERGES = 500
FLAG_TEXTS = [
    "", "plain text", "<|special|>", "a<|special|>b", "  [L]  ", "x  [L]y", "x  [R]  y", "x \t[LR]\n y", "[L][L]  [L]",
    "word", "a word here", "sword words word_ word, (word) wordy", "cafe\u0301 caf\u00e9 CAFE\u0301", "<a><b> <a> <a><b><a>",
    "x<a><b>y", " [R] [L] ", "\u3000[L]\u3000[R]\u3000", "1-2-3 a-b c--d", "numbers 123 and 4567 here", "[LR]", "word[R]word",
]


def tiny_tokenizers() -> dict:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    qwen = json.loads((QWEN3 / "tokenizer.json").read_text())
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    merges = [tuple(m) for m in qwen["model"]["merges"][:TINY_MERGES]]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    qwen_split = pre_tokenizers.Split(Regex(qwen["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]),
                                      behavior="isolated", invert=False)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    variants = {
        "isolated": [qwen_split, byte_level],
        "removed": [pre_tokenizers.Split("-", behavior="removed", invert=False), qwen_split, byte_level],
        "inverted": [pre_tokenizers.Split(Regex("[0-9]+"), behavior="removed", invert=True), byte_level],
    }
    out = {}
    for name, steps in variants.items():
        tokenizer = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges)))
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(steps)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens([AddedToken("<|special|>", special=True, normalized=False)])
        tokenizer.add_tokens([
            AddedToken("[L]", lstrip=True, normalized=False),
            AddedToken("[R]", rstrip=True, normalized=False),
            AddedToken("[LR]", lstrip=True, rstrip=True, normalized=False),
            AddedToken("word", single_word=True, normalized=False),
            AddedToken("caf\u00e9", normalized=True),
            AddedToken("<a>", normalized=False),
            AddedToken("<a><b>", normalized=False),
        ])
        document = json.loads(tokenizer.to_str())
        document["model"]["merges"] = [f"{left} {right}" for left, right in merges]
        reloaded = Tokenizer.from_str(json.dumps(document))
        out[name] = (document, reloaded)
    return out


def main() -> None:
    from tokenizers import AddedToken, Tokenizer
    from transformers import AutoTokenizer, Qwen2Tokenizer

    reference = Tokenizer.from_file(str(QWEN3 / "tokenizer.json"))
    vocab_merges = Qwen2Tokenizer(vocab=str(QWEN_VM / "vocab.json"), merges=str(QWEN_VM / "merges.txt"))
    for added in reference.get_added_tokens_decoder().values():
        vocab_merges.add_tokens([AddedToken(added.content, single_word=added.single_word, lstrip=added.lstrip,
                                            rstrip=added.rstrip, normalized=added.normalized,
                                            special=added.special)])

    texts = [""]
    for group in (ENGLISH, CHINESE, JAPANESE, KOREAN, OTHER_SCRIPTS, EMOJI, DIGITS, WHITESPACE, CODE, URLS,
                  SPECIAL_IN_TEXT, NFD, RARE):
        texts += group
    texts.append(long_prompt())
    texts += [t for t in random_mixes(400 - len(texts)) if surrogate_free(t)]

    cases = []
    for text in texts:
        ids = reference.encode(text).ids
        other = vocab_merges(text)["input_ids"]
        if ids != other:
            raise SystemExit(f"vocab+merges path disagrees with tokenizer.json on {text!r}: {other} vs {ids}")
        decoded = reference.decode(ids, skip_special_tokens=False)
        if decoded != unicodedata.normalize("NFC", text):
            raise SystemExit(f"decode(encode(text)) is not NFC(text) for {text!r}: {decoded!r}")
        cases.append({"text": text, "ids": ids, "decoded": decoded})
    longest = max(len(c["ids"]) for c in cases)
    if longest <= 600:
        raise SystemExit(f"the long prompt has only {longest} tokens, expected more than 600")

    # The pipeline loads the tokenizer folder with AutoTokenizer; give it the two shared files.
    with tempfile.TemporaryDirectory() as folder:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(QWEN3 / name, Path(folder) / name)
        pipeline_tokenizer = AutoTokenizer.from_pretrained(folder)
        chat_cases = []
        for prompt in chat_prompts():
            # Same calls, same arguments as ZImagePipeline._encode_prompt (diffusers).
            text = pipeline_tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                          add_generation_prompt=True, enable_thinking=True)
            inputs = pipeline_tokenizer([text], padding="max_length", max_length=MAX_SEQUENCE_LENGTH,
                                        truncation=True, return_tensors="pt")
            mask = inputs.attention_mask[0].bool()
            ids = inputs.input_ids[0][mask].tolist()
            chat_cases.append({"prompt": prompt, "text": text, "ids": ids, "attention_length": int(mask.sum())})
        klein_chat_cases = []
        for prompt in chat_prompts():
            # Same calls as Flux2KleinPipeline._get_qwen3_prompt_embeds: thinking off, and every one of
            # the 512 ids (padding included) reaches the text encoder.
            text = pipeline_tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                          add_generation_prompt=True, enable_thinking=False)
            inputs = pipeline_tokenizer(text, padding="max_length", max_length=MAX_SEQUENCE_LENGTH,
                                        truncation=True, return_tensors="pt")
            klein_chat_cases.append({"prompt": prompt, "text": text, "ids": inputs.input_ids[0].tolist(),
                                     "attention_length": int(inputs.attention_mask[0].sum())})

    tiny_cases = {}
    for name, (document, tokenizer) in tiny_tokenizers().items():
        (FIXTURES / "tokenizer" / f"tiny_bpe_{name}_tokenizer.json").write_text(
            json.dumps(document, ensure_ascii=False, indent=None) + "\n")
        texts_for_flags = FLAG_TEXTS + ENGLISH[:8] + CHINESE[:2] + WHITESPACE[:20] + NFD[:4]
        tiny_cases[name] = [{"text": t, "ids": tokenizer.encode(t).ids} for t in texts_for_flags]
    save_json_fixture("tokenizer/tiny_bpe_tokenizer_cases.json", {"variants": tiny_cases}, __file__)

    path = save_json_fixture("tokenizer/qwen3_tokenizer_cases.json",
                             {"seed": SEED, "max_sequence_length": MAX_SEQUENCE_LENGTH, "cases": cases,
                              "chat_cases": chat_cases, "klein_chat_cases": klein_chat_cases},
                             __file__)
    print(f"wrote {path}: {len(cases)} cases, {len(chat_cases)} chat cases, longest {longest} tokens")


if __name__ == "__main__":
    main()
