"""Golden expansions of prompt templates in the Dynamic Prompts syntax (A1111's sd-dynamic-prompts extension), with a
folder of wildcard files: its library's CombinatorialPromptGenerator (every prompt a template stands for, in its
order) and RandomPromptGenerator (one prompt per seed, as the extension draws image i's prompt with image i's seed).
And the draws of CPython's random.Random they rest on.

Writes tests/fixtures/dynamic_prompts/: the wildcard folder (wildcards/), dynamic_prompts_cases.json,
random_prompts_cases.json, syntax_cases.json (variables, wraps, comments and repeated options, written and made at
random, each in both modes), structured_cases.json with its folder structured_wildcards/ (.json and .yaml wildcard
files beside text ones, weighted values) and python_random.json.

Run: ~/.venvs/zflow-golden/bin/python tools/golden/make_dynamic_prompts.py
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import signal
from pathlib import Path

from dynamicprompts.generators import CombinatorialPromptGenerator, RandomPromptGenerator
from dynamicprompts.wildcards import WildcardManager

from common import FIXTURES, fixture_metadata

OUT = FIXTURES / "dynamic_prompts"
MAX_PROMPTS = 1000

# Lines in file order; the library sorts them. Blank lines and # comments are left out; a line is a template itself.
WILDCARDS = {
    "colors": ["# the glazes we sell", "sage green", "", "cobalt {blue|navy}", "ivory", "  terracotta  "],
    "product/material": ["stoneware", "porcelain with __colors__ rim"],
    "setting": ["on a linen tablecloth", "on a walnut shelf, morning light", "in a sunlit kitchen"],
    "alias": ["__colors__"],
    "single": ["matte"],
    # Found by a glob, or from a subfolder by the recursive retry (__animals__); lines repeated across and within files
    # are made once.
    "pack/animals": ["fox", "owl", "fox", "heron"],
    "pack/deep/animals": ["owl", "lynx"],
    "pack/glazes": ["celadon", "tenmoku"],
    ".hidden/animals": ["never read"],
    # Lines that read variables: set around the wildcard, bound by __name(var=value)__, or kept with ?=.
    "season_clothes": ["a ${season} coat", "${season?=spring} hat", "${season:winter} scarf"],
    "tone": ["${shade:pale} ${hue}", "${hue} and {grey|black}"],
    "kind/warm": ["amber", "rust {red|orange}"],
    "kind/cool": ["teal"],
}

TEMPLATES = [
    ("no braces, a plain prompt", MAX_PROMPTS),
    ("a {red|blue} {mug|bowl}", MAX_PROMPTS),
    ("a {red|blue} {mug|bowl} {on a shelf|in a kitchen|}", MAX_PROMPTS),
    ("x {a|{b|{c|d}}} y", MAX_PROMPTS),
    ("[{ a | b }] [{a |b}] [{a| }]", MAX_PROMPTS),
    ("{0.5::matte|2::glossy| 1.5:: satin } finish", MAX_PROMPTS),
    ("{::odd|even}", MAX_PROMPTS),
    ("{2$$red|green|blue}", MAX_PROMPTS),
    ("{1-2$$red|green|blue} stripes", MAX_PROMPTS),
    ("{-2$$a|b|c}", MAX_PROMPTS),
    ("{2-$$a|b|c}", MAX_PROMPTS),
    ("{2$$ and $$salt|pepper|oil}", MAX_PROMPTS),
    ("{2$$|$$a|b}", MAX_PROMPTS),
    ("{3$$a|b}", MAX_PROMPTS),
    ("{0$$a|b}x", MAX_PROMPTS),
    ("{a|{2$$b|c}}", MAX_PROMPTS),
    ("{2$$a|b}{c|d}", MAX_PROMPTS),
    ("a __colors__ vase", MAX_PROMPTS),
    ("a __product/material__ cup __setting__", MAX_PROMPTS),
    ("{2$$__colors__}", MAX_PROMPTS),
    ("{__colors__|plain white} plate", MAX_PROMPTS),
    ("stray } and | stay", MAX_PROMPTS),
    ("a __animals__", MAX_PROMPTS),
    ("a __pack/*__", MAX_PROMPTS),
    ("a __*/glazes__ __col*__ __product/?aterial__", MAX_PROMPTS),
    ("__deep/animals__ and __/pack//glazes/__", MAX_PROMPTS),
    ("{2$$__pack/[ag]*__}", MAX_PROMPTS),
    ("一只{红色|蓝色}的猫, {坐着|躺着}", MAX_PROMPTS),
    ("line one\nline two {a|b}", MAX_PROMPTS),
    ("{a|b} {c|d} {e|f} {g|h}", 5),
    ("{2-$$a|b|c|d|e}", 7),
]


# Random mode: every template drawn with each of these seeds.
SEEDS = [0, 1, 2, 3, 4, 5, 6, 7, 41, 1000, 2**31 - 1, 2**32 - 1, 2**32, 3_000_000_000_123]

RANDOM_TEMPLATES = [
    "no braces, a plain prompt",
    "a {red|blue} {mug|bowl} {on a shelf|in a kitchen|}",
    "x {a|{b|{c|d}}} y",
    "{0.5::matte|2::glossy| 1.5:: satin } finish",
    "{3::a|0::b|1::c}",
    "{2$$1::a|2::b|1::c|2::d}",
    "{2$$red|green|blue}",
    "{1-3$$ and $$salt|pepper|oil|vinegar}",
    "{-2$$a|b|c}",
    "{2-$$a|b|c|d}",
    "{0$$a|b}x",
    "{0-1$$a|b}",
    "{3$$a|b}",
    "{2$$a|a|b}",
    "{2$$2::a|1::a|1::b}",
    "{a|}{|b}{|}",
    "{single}",
    "{~a|b|c} {!d|e}",
    "a __colors__ vase",
    "a __product/material__ cup __setting__",
    "{__colors__}",
    "{2$$__colors__}",
    "{2$$ + $$__setting__}",
    "{__single__}",
    "{2$$__alias__}",
    "__alias__",
    "{__colors__|plain white} plate",
    "a __animals__ on __pack/*__",
    "{2$$ and $$__*animals__}",
    "一只{红色|蓝色|绿色}的猫, {坐着|躺着}",
    "{a|b} {c|d} {e|f} {g|h} {i|j|k|l|m|n|o|p|q}",
]


# Variables (set, immediate, kept, read, defaulted, bound by a wildcard, in a wildcard's name), wraps, comments, and
# options that repeat one another (which combinatorial variants drop).
SYNTAX_TEMPLATES = [
    "a ${x=foo} ${x}!",
    "${x} ${x=foo}",
    "${s={a|b}} ${s} ${s}",
    "${s=!{a|b|c|d}} ${s} ${s} {x|y}",
    "${s = { a|b} } [${s}]",
    "${s:def {x|y}}",
    "${s=x}${s:y}",
    "${s?=x}${s}",
    "${a=x}${b=${a}y}${b}",
    "${a=!{x|y}}${b=${a}z}${b} ${b}",
    "${c=a}{${c}|${c:z}}",
    "${c={r|g}}{2$$${c}|b}",
    "${season=summer}__season_clothes__",
    "${season=!{summer|autumn}} __season_clothes__, __season_clothes__",
    "__season_clothes(season=winter)__",
    "__season_clothes( season = {wet|dry} )__",
    "__tone(hue=red, shade={light|dark})__",
    "${hue=blue}__tone__ / __tone(hue=green)__",
    "${k=cool}__kind/${k}__ or __kind/${k}__",
    "__kind/${k:warm}__",
    "{__tone(hue=red)__|plain}",
    "%{ a ... b $$ {x|y} }",
    "%{{a...b|c\u2026d}$$x}",
    "%{a$$x}",
    "%{({-|+}....)$$__kind/cool__}",
    "red #1 car",
    "a # note\nb {c|d}",
    "a #x\n#y\nb",
    "{a|b}/* c */ d",
    "{a|b}// x\nd",
    "{a|b} # end",
    "{a|a}",
    "{a|b}{a|a}",
    "{2$$a|{a|b}}",
    "{x|{x|y}}",
    "{2$$a|a|b}",
    "{2$$a|}",
    "{2$$,|a}",
    "{ !a|b}",
    "{ 2$$a|b|c}",
    "{2-$$__kind/warm__}",
    "{3-$$a|b}",
    "1..5::x {1..5::a|b}",
]

SYNTAX_MAX_PROMPTS = 60
SYNTAX_PROMPTS = 6  # random mode: seeds s to s + 5 in one call, as the extension draws a batch


def generated_template(r: random.Random) -> str:
    """A template made at random from the syntax, to find where zflow and the library part ways."""
    words = ["red", "mug", "a cat", "blue glaze", " on a shelf", "茶杯", " soft light ", "x", "x"]
    wildcards = ["__colors__", "__single__", "__season_clothes__", "__season_clothes(season={a|b})__",
                 "__kind/${k:warm}__", "__tone(hue=red)__", "__kind/${k}__"]

    def option(depth: int) -> str:
        return "".join(piece(depth) for _ in range(r.randint(0, 2)))

    def variant(depth: int) -> str:
        options = []
        for _ in range(r.randint(1, 4)):
            weight = r.choice(["", "", "", "2::", "0.5::", " 3::"])
            options.append(weight + option(depth + 1))
        count = r.choice(["", "", "", "2$$", "1-2$$", "-2$$", "2-$$", "0$$", "2$$ and $$", "3$$|$$", "!", "1-3$$;$$"])
        return "{" + count + "|".join(options) + "}"

    def piece(depth: int) -> str:
        kinds = ["word", "word", "wildcard", "variable"] + (["variant", "variant", "wrap"] if depth < 3 else [])
        kind = r.choice(kinds)
        if kind == "word":
            return r.choice(words)
        if kind == "wildcard":
            return r.choice(wildcards)
        if kind == "variable":
            return r.choice(["${s}", "${t}", "${s:dflt}", "${u:{p|q}}", "${season}"])
        if kind == "wrap":
            return "%{" + r.choice(["(...)", "[\u2026]", "no marker ", "{a...b|c...d}"]) + "$$" + option(depth + 1) + "}"
        return variant(depth)

    sets = []
    for name in ("s", "t", "season", "k"):
        if r.random() < 0.6:
            how = r.choice(["=", "=!", "?=", " = "])
            sets.append("${" + name + how + r.choice(["cool", "warm", "{a|b}", "{2$$c|d|e}", "__single__", "x ${s:y}"]) + "}")
    body = "".join(piece(0) for _ in range(r.randint(1, 4)))
    comment = r.choice(["", "", "", " # a note", "\n# a line\nend"])
    return "".join(sets) + body + comment


class TookTooLong(Exception):
    pass


class MissingWildcard(Exception):
    pass


class RaiseOnMissingWildcard(logging.Handler):
    """The library writes a missing wildcard's name as text with a warning; zflow refuses it, so such cases are out."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("No values found for wildcard"):
            raise MissingWildcard(record.getMessage())


def took_too_long(signum, frame):
    raise TookTooLong()


def syntax_cases(folder: Path) -> list[dict]:
    """Each template in both modes; made-up templates the library refuses (unset variables, its grammar's limits)
    are left out, as are ones that stand for no prompt."""
    signal.signal(signal.SIGALRM, took_too_long)
    logging.getLogger("dynamicprompts").addHandler(RaiseOnMissingWildcard())
    logging.raiseExceptions = True
    r = random.Random(20261208)
    templates = [(t, "written") for t in SYNTAX_TEMPLATES]
    while len(templates) < len(SYNTAX_TEMPLATES) + 200:
        templates.append((generated_template(r), "generated"))
    cases = []
    for template, source in templates:
        template = template.encode().decode("unicode_escape").encode("latin-1").decode()
        seed = r.randrange(2**32)
        signal.alarm(5)  # the library's combinatorial variants can grind for ever through repeated options
        try:
            combinatorial = CombinatorialPromptGenerator(wildcard_manager=WildcardManager(folder)).generate(
                template, max_prompts=SYNTAX_MAX_PROMPTS)
            seeds = [seed + i for i in range(SYNTAX_PROMPTS)]
            drawn = RandomPromptGenerator(wildcard_manager=WildcardManager(folder)).generate(
                template, SYNTAX_PROMPTS, seeds=seeds)
        except Exception as e:  # noqa: BLE001 - the library's refusals of any kind
            if source == "written":
                raise
            print(f"left out {template!r}: {type(e).__name__}", flush=True)
            continue
        finally:
            signal.alarm(0)
        if not combinatorial:
            continue
        cases.append(dict(template=template, source=source, combinatorial=combinatorial, seed=str(seed),
                          random=drawn))
    return cases


# Structured wildcard files (the library's "pantries"), written as text so that YAML's plain scalars are read by its
# own rules: keys and entries that YAML 1.1 types as bools, numbers, nulls or dates are passed over, quoted ones kept.
STRUCTURED_FILES = {
    "pantry.yaml": """\
glaze:
  warm: [amber, rust, "2::copper", 3::ochre, 0.5::sand]
  cool:
    - teal
    - "slate {grey|blue}"
    - {text: ice, weight: 2}
    - {content: frost}
    - {text: mist, weight: "1.5"}
    - 12
    - "12"
    - yes
    - "yes"
    - ~
    - 2024-05-01
    - 1_000
    - ""
  empty: []
  zero: 0
single: one value
yes: never read
on: never read either
"on": read
12: not read
bad weight:
  - {text: x, weight: heavy}
  - y
nested:
  deeper:
    deepest: [down, "${depth:low}"]
""",
    "sub/more.json": """{"finish": ["matte", "glossy", {"text": "satin", "weight": 3}, 7, null, true, "",
    "1::matte", "2::a::b", "01::lead"], "size": {"big": ["large", "huge"], "small": "tiny"}, "none": []}
""",
    "sub/flat.json": """["one", "two", 3, "2::three"]
""",
    "sub/plain.txt": "# a comment\n  spaced out  \nsecond\n\n",
    "weights.yaml": """\
draw:
  - {text: common, weight: 10}
  - {text: rare, weight: 1}
  - {text: never, weight: 0}
  - 0.5::half
even: [3::a, 3::b]
""",
}

STRUCTURED_TEMPLATES = [
    "__glaze/warm__",
    "__glaze/cool__",
    "{__glaze/warm__}",
    "{2$$__glaze/warm__}",
    "__glaze/*__",
    "__single__ and __on__",
    "__nested/deeper/deepest__",
    "__nested/deeper/deepest(depth=high)__",
    "__sub/finish__ __sub/size/*__",
    "__finish__, __size/small__",
    "__sub/flat__",
    "__flat__ / __plain__",
    "__draw__",
    "__draw__ and __draw__",
    "{__draw__|__even__}",
    "__even__",
    "{2$$__draw__}",
    "{2$$ and $$__glaze/cool__}",
]


def structured_cases(folder: Path) -> list[dict]:
    r = random.Random(8)
    cases = []
    for template in STRUCTURED_TEMPLATES:
        seed = r.randrange(2**32)
        combinatorial = CombinatorialPromptGenerator(wildcard_manager=WildcardManager(folder)).generate(
            template, max_prompts=SYNTAX_MAX_PROMPTS)
        drawn = RandomPromptGenerator(wildcard_manager=WildcardManager(folder)).generate(
            template, 12, seeds=[seed + i for i in range(12)])
        cases.append(dict(template=template, combinatorial=combinatorial, seed=str(seed), random=drawn))
        print(f"{template!r}: {combinatorial[:6]} ... {drawn[:4]}")
    return cases


def python_random_cases() -> list[dict]:
    """What the C++ PythonRandom is checked against: each seed's raw words and the draws dynamicprompts makes."""
    cases = []
    for seed in [0, 1, 5489, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**63 + 12345, 2**64 - 1]:
        r = random.Random(seed)
        words = [r.getrandbits(32) for _ in range(8)]
        r.seed(seed)
        draws = dict(
            bits=[r.getrandbits(k) for k in (1, 5, 17, 31, 32)],
            below=[r.randrange(n) for n in (1, 1, 2, 3, 7, 1000, 2**31 + 3, 2**32 - 1)],
            randint=[r.randint(lo, hi) for lo, hi in ((1, 1), (0, 0), (0, 1), (2, 4), (-3, 3))],
            random=[r.random() for _ in range(4)],
            choices=[
                r.choices(range(len(w)), weights=w, k=1)[0]
                for w in ([1.0, 1.0], [0.5, 2.0, 1.5], [3.0, 0.0, 1.0], [0.0, 1e-300, 0.0], [1.0] * 9)
            ],
        )
        cases.append(dict(seed=str(seed), words=words, draws=draws))
    return cases


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    folder = OUT / "wildcards"
    for name, lines in WILDCARDS.items():
        path = folder / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    generator = CombinatorialPromptGenerator(wildcard_manager=WildcardManager(folder))
    cases = []
    for template, max_prompts in TEMPLATES:
        prompts = generator.generate(template, max_prompts=max_prompts)
        cases.append(dict(template=template, max_prompts=max_prompts, expected=prompts))
        print(f"{template!r}: {len(prompts)} prompts")
    payload = {"_meta": fixture_metadata(__file__, None), "wildcards": "wildcards", "cases": cases}
    (OUT / "dynamic_prompts_cases.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")

    random_cases = []
    for template in RANDOM_TEMPLATES:
        # A fresh generator per template, as the extension makes one per batch; it reseeds for every prompt.
        generator = RandomPromptGenerator(wildcard_manager=WildcardManager(folder))
        prompts = generator.generate(template, len(SEEDS), seeds=SEEDS)
        random_cases.append(dict(template=template, expected=prompts))
        print(f"{template!r}: {prompts[:3]} ...")
    payload = {"_meta": fixture_metadata(__file__, None), "wildcards": "wildcards", "seeds": [str(s) for s in SEEDS],
               "cases": random_cases}
    (OUT / "random_prompts_cases.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")

    payload = {"_meta": fixture_metadata(__file__, None), "wildcards": "wildcards", "max_prompts": SYNTAX_MAX_PROMPTS,
               "cases": syntax_cases(folder)}
    (OUT / "syntax_cases.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    print(f"syntax cases: {len(payload['cases'])}")

    structured = OUT / "structured_wildcards"
    for name, text in STRUCTURED_FILES.items():
        path = structured / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    payload = {"_meta": fixture_metadata(__file__, None), "wildcards": "structured_wildcards",
               "max_prompts": SYNTAX_MAX_PROMPTS, "cases": structured_cases(structured)}
    (OUT / "structured_cases.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")

    payload = {"_meta": fixture_metadata(__file__, None), "cases": python_random_cases()}
    (OUT / "python_random.json").write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
