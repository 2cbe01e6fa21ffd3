"""Golden expansions of prompt templates in the Dynamic Prompts syntax (A1111's sd-dynamic-prompts extension): its
library's CombinatorialPromptGenerator, every prompt a template stands for in its order, with a folder of wildcard
files.

Writes tests/fixtures/dynamic_prompts/: the wildcard folder (wildcards/) and dynamic_prompts_cases.json.

Run: ~/.venvs/zflow-golden/bin/python tools/golden/make_dynamic_prompts.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dynamicprompts.generators import CombinatorialPromptGenerator
from dynamicprompts.wildcards import WildcardManager

from common import FIXTURES, fixture_metadata

OUT = FIXTURES / "dynamic_prompts"
MAX_PROMPTS = 1000

# Lines in file order; the library sorts them. Blank lines and # comments are left out; a line is a template itself.
WILDCARDS = {
    "colors": ["# the glazes we sell", "sage green", "", "cobalt {blue|navy}", "ivory", "  terracotta  "],
    "product/material": ["stoneware", "porcelain with __colors__ rim"],
    "setting": ["on a linen tablecloth", "on a walnut shelf, morning light", "in a sunlit kitchen"],
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
    ("一只{红色|蓝色}的猫, {坐着|躺着}", MAX_PROMPTS),
    ("line one\nline two {a|b}", MAX_PROMPTS),
    ("{a|b} {c|d} {e|f} {g|h}", 5),
    ("{2-$$a|b|c|d|e}", 7),
]


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


if __name__ == "__main__":
    main()
