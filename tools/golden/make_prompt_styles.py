"""Golden reading of an AUTOMATIC1111 styles.csv: a file with what real ones hold (a byte-order mark, quoted fields
with commas, doubled quotes and line breaks, spaces after commas, a comment row, a blank line, a short row, a name
given twice, CRLF line ends) read as A1111 reads it, Python's csv.DictReader with skipinitialspace=True (rows without
a name or starting with '#' left out, the later of a name kept).

Writes tests/fixtures/prompt_styles/styles.csv and styles_expected.json.

Run: ~/.venvs/zflow-golden/bin/python tools/golden/make_prompt_styles.py
"""

from __future__ import annotations

import csv
import io
import json

from common import FIXTURES, fixture_metadata

OUT = FIXTURES / "prompt_styles"

CSV = (
    "\ufeffname,prompt,negative_prompt\r\n"
    'Cinematic,"cinematic still of {prompt}, shallow depth of field, film grain","cartoon, drawing"\r\n'
    "Product, studio lighting,  white background\r\n"
    '# a comment row,ignored,\r\n'
    "\r\n"
    '"Quoted ""name""","line one\nline two",\r\n'
    "Short only,no negative\r\n"
    'Twice,"first, {prompt}",\r\n'
    '中文风格,"水墨画, {prompt}","照片"\r\n'
    'Twice,"second {prompt} and {prompt}",later\r\n'
    'Half "quoted" mid,"a"b,c\r\n'
)


def read_like_a1111(text: str) -> list[dict[str, str]]:
    styles: dict[str, dict[str, str]] = {}
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""), skipinitialspace=True)
    for row in reader:
        if not row or not row["name"] or row["name"].startswith("#"):
            continue
        styles[row["name"]] = dict(
            name=row["name"], prompt=row["prompt"] or "", negative_prompt=row.get("negative_prompt") or ""
        )
    return list(styles.values())


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "styles.csv").write_bytes(CSV.encode("utf-8"))
    styles = read_like_a1111(CSV)
    payload = {"_meta": fixture_metadata(__file__, None), "styles": styles}
    (OUT / "styles_expected.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    for s in styles:
        print(s)


if __name__ == "__main__":
    main()
