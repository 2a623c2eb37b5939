"""Tokenizer cases: text in, the ids the official tokenizer path gives out (`tokenizer_cases.json`).

The official path is transformers' `LlamaTokenizerFast` plus the multichar-CJK split; where
applying tokenizer.json verbatim (transformers 4.x, the `tokenizers` library) gives other ids,
the entry records those too. README.md ("tokenizer_cases.json") explains the difference.
"""

from __future__ import annotations

import json
import os

from tokenizers import Tokenizer
from transformers import LlamaTokenizerFast
from voxcpm.model.utils import mask_multichar_chinese_tokens

from synthetic_tokenizer import SPM_SPACE

TOKENIZER_TEXTS = [
    "你好",
    "你好世界",
    "你好，世界！",
    "世界你好",
    "说你好吗",
    "a你好b",
    "你好你好你好",
    "我爱中国，我爱北京天安门。",
    "中华人民共和国",
    "今天是2024年5月1日，天气很好！",
    "VoxCPM2 是一个语音合成模型。",
    "Hello world",
    "Hello, 世界! 123",
    "Mixed中文and English混合",
    "hello 你好 world 世界",
    "日本語のテキストです。こんにちは",
    "안녕하세요 세계",
    "emoji 😀 test 🎉!",
    "price: $3.50 (approx.) 100%",
    "Ωμέγα ñandú Ünïcödé ¿Qué?",
    "𠀀 rare CJK extension B 𪚥",
    "(开心)今天很开心",
    "0123456789",
    " leading space",
    "trailing space ",
    "  two leading",
    "multiple   spaces  here",
    "",
    " ",
    "   ",
    "a",
    "。",
    "tab\there",
    "new\nline",
    "the quick brown fox jumps over the lazy dog",
    "<|audio_start|> literal special",
]


def tokenizer_cases(ckpt_dir: str) -> tuple[list, list]:
    hf = LlamaTokenizerFast.from_pretrained(ckpt_dir)
    wrapper = mask_multichar_chinese_tokens(hf)
    raw = Tokenizer.from_file(os.path.join(ckpt_dir, "tokenizer.json"))

    def raw_ids(text):
        # tokenizer.json applied verbatim (= transformers 4.x LlamaTokenizerFast) + the same split
        pieces = []
        for t in raw.encode(text, add_special_tokens=False).tokens:
            c = t.replace(SPM_SPACE, "")
            pieces += list(c) if c in wrapper.multichar_tokens else [t]
        return [raw.token_to_id(p) if raw.token_to_id(p) is not None else 0 for p in pieces]

    cases, diffs = [], []
    for text in TOKENIZER_TEXTS:
        ids = wrapper(text)
        rids = raw_ids(text)
        entry = {"text": text, "ids": ids, "pieces": wrapper.tokenize(text)}
        if rids != ids:
            entry["ids_tokenizer_json"] = rids
            diffs.append(text)
        cases.append(entry)
    return cases, diffs


def write_tokenizer_cases(ckpt_dir: str, out_dir: str, report: dict) -> None:
    cases, diffs = tokenizer_cases(ckpt_dir)
    with open(os.path.join(out_dir, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n")
    report["tokenizer_cases"] = len(cases)
    report["tokenizer_transformers_vs_tokenizer_json_diffs"] = diffs
