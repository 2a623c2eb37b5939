#!/usr/bin/env python3
"""Writes engine/tests/fixtures/normalize_cases.json: every input in cases.py with the answer
of the official normaliser, `TextNormalizer.normalize` from voxcpm 2.0.3's
`voxcpm/utils/text_normalize.py`, run unchanged (it imports only re, regex, inflect and
wetext, so no torch is needed; the file is loaded on its own, without the voxcpm package).

Usage: python make_cases.py [--voxcpm-wheel PATH]   (default: pip download voxcpm==2.0.3)
"""

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from cases import CASES, NOTES

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "engine/tests/fixtures/normalize_cases.json"
MODULE = "voxcpm/utils/text_normalize.py"


def official_normalizer(wheel):
    tmp = Path(tempfile.mkdtemp())
    if wheel is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "voxcpm==2.0.3", "--no-deps", "-q", "-d", str(tmp)], check=True
        )
        wheel = next(tmp.glob("voxcpm-2.0.3-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extract(MODULE, tmp)
    spec = importlib.util.spec_from_file_location("text_normalize", tmp / MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.TextNormalizer()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--voxcpm-wheel", type=Path)
    args = parser.parse_args()
    module, normalizer = official_normalizer(args.voxcpm_wheel)
    inputs = [text for _, text in CASES]
    assert len(inputs) == len(set(inputs)), "duplicate inputs"
    unknown = set(NOTES) - set(inputs)
    assert not unknown, f"notes for inputs not in CASES: {unknown}"
    cases = []
    for category, text in CASES:
        try:
            official = normalizer.normalize(text)
        except Exception as e:  # the official code raises on a few inputs
            official = None
            error = f"{type(e).__name__}"
        case = {
            "category": category,
            "input": text,
            "lang": "zh" if module.contains_chinese(text) else "en",
        }
        if text in NOTES:
            ours, why = NOTES[text]
            case["expected"] = ours
            case["official"] = official if official is not None else f"raises {error}"
            case["note"] = why
        else:
            assert official is not None, f"official normaliser fails on {text!r}: add a note"
            case["expected"] = official
        cases.append(case)
    OUT.write_text(json.dumps(cases, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    noted = sum("note" in c for c in cases)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases, {len(cases) - noted} official verbatim, {noted} noted")


if __name__ == "__main__":
    main()
