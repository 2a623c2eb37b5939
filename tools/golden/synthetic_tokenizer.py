"""The synthetic tokenizer every test checkpoint carries.

The real MiniCPM-4 vocabulary cannot be downloaded here, so a small SentencePiece-style BPE is
learned from a built-in mixed corpus. It keeps the audio special tokens at ids 101..104 and the
official multichar-CJK split has pieces to act on. See "The synthetic tokenizer" in README.md.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter

SPM_SPACE = "\u2581"  # "▁"
AUDIO_SPECIALS = {
    101: "<|audio_start|>",
    102: "<|audio_end|>",
    103: "<|audio_prompt_start|>",
    104: "<|audio_prompt_end|>",
}
N_SPECIAL = 105  # ids 0..104 are special tokens, then 256 byte tokens

# A small mixed corpus. Repetition counts steer which multi-character pieces the BPE learns; the
# learner below is a plain deterministic BPE (ties broken lexicographically), so the vocabulary
# is a pure function of this text.
_CORPUS_BASE = [
    # Chinese
    "你好", "你好世界", "你好，世界！", "世界你好", "中国", "中国人", "我爱中国", "你好中国",
    "我们是中国人", "今天天气很好", "今天是星期一", "我们的世界", "世界很大", "你好吗？我很好。",
    "这是一个语音合成模型", "语音合成", "模型", "北京是中国的首都", "上海和北京", "我爱北京天安门",
    "谢谢你", "不客气", "再见", "你们好", "大家好", "早上好", "晚上好", "中文和英文", "开心",
    "今天很开心", "声音", "说话", "人工智能", "学习", "我们一起学习", "时间", "现在几点",
    "一二三四五六七八九十", "中华人民共和国", "天气", "你好你好", "世界世界", "中国中国",
    # Japanese
    "こんにちは", "こんにちは世界", "ありがとう", "ありがとうございます", "日本語", "日本語のテキスト",
    "です", "これはテストです", "さようなら", "おはようございます", "東京", "音声合成",
    # Korean
    "안녕하세요", "안녕", "세계", "감사합니다", "한국어", "좋은 아침", "사랑해요", "네 아니요",
    # English
    "hello world", "Hello world", "Hello, world!", "the quick brown fox jumps over the lazy dog",
    "The Quick Brown Fox", "this is a test", "text to speech", "speech synthesis", "voice",
    "model", "models", "hello there", "world", "good morning", "thank you", "the the the",
    "and and", "in the world", "It is a test.", "What is this?", "one two three", "VoxCPM",
    "Rust port", "tokenizer", "speaking", "speak", "spoken", "testing", "tests", "tested",
    # digits and punctuation
    "0123456789", "123", "2024", "2025年", "3.14", "100%", "12:30", "$5", "1,000", "#1", "No. 7",
    "...", "!?", "(test)", "[x]", "\"quote\"", "'single'", "a-b", "a_b", "a/b", "a+b=c", "@home",
    "，。！？", "、", "《书》", "「引用」", "：；", "（括号）",
    # mixed
    "Hello 你好", "你好 hello", "AI 模型", "VoxCPM2 是一个模型", "text 和 speech", "我用 Rust 写代码",
]
_CORPUS_REPEAT = {
    "你好": 12, "世界": 8, "中国": 8, "你好世界": 4, "我们": 6, "今天": 5, "模型": 4, "北京": 4,
    "hello world": 6, "the": 6, "speech": 3, "こんにちは": 4, "안녕하세요": 4, "天气": 3,
    "语音合成": 3, "ありがとう": 3, "日本": 3, "人民": 3, "Hello": 3, "test": 3, "123": 3,
}


def _corpus() -> list[str]:
    lines = list(_CORPUS_BASE)
    for text, n in sorted(_CORPUS_REPEAT.items()):
        lines += [text] * n
        lines += [" " + text] * n  # so "▁"-prefixed variants ("▁你好") get learned too
    return lines


def _learn_bpe(lines: list[str], n_merges: int, min_count: int = 2):
    words: Counter = Counter()
    for line in lines:
        s = SPM_SPACE + line.replace(" ", SPM_SPACE)
        for w in re.findall(SPM_SPACE + "[^" + SPM_SPACE + "]*|[^" + SPM_SPACE + "]+", s):
            words[w] += 1
    char_count: Counter = Counter()
    for w, c in words.items():
        for ch in w:
            char_count[ch] += c
    alphabet = sorted(char_count, key=lambda ch: (-char_count[ch], ch))
    segs = {w: list(w) for w in words}
    merges = []
    for _ in range(n_merges):
        pairs: Counter = Counter()
        for w, c in words.items():
            s = segs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), cnt = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if cnt < min_count:
            break
        merges.append((a, b))
        for w in words:
            s = segs[w]
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            segs[w] = out
    return alphabet, merges


def build_tokenizer_json(n_merges: int = 260):
    """Return (tokenizers.Tokenizer, vocab_size)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    alphabet, merges = _learn_bpe(_corpus(), n_merges)
    specials = ["<unk>", "<s>", "</s>"] + [f"<|reserved_{i}|>" for i in range(3, 101)]
    specials += [AUDIO_SPECIALS[i] for i in range(101, 105)]
    assert len(specials) == N_SPECIAL
    vocab: dict[str, int] = {}
    for t in specials:
        vocab[t] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for ch in alphabet:
        if ch not in vocab:
            vocab[ch] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)

    tok = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=merges,
            unk_token="<unk>",
            fuse_unk=True,
            byte_fallback=True,
            dropout=None,
        )
    )
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPM_SPACE), normalizers.Replace(" ", SPM_SPACE)])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence(
        [decoders.Replace(SPM_SPACE, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    assert tok.get_vocab_size() == len(vocab)
    for i, t in AUDIO_SPECIALS.items():
        assert tok.token_to_id(t) == i
    return tok, len(vocab)


def tokenizer_config_dict(tok) -> dict:
    added = {}
    for tid, at in sorted(tok.get_added_tokens_decoder().items()):
        added[str(tid)] = {
            "content": at.content,
            "lstrip": at.lstrip,
            "normalized": at.normalized,
            "rstrip": at.rstrip,
            "single_word": at.single_word,
            "special": at.special,
        }
    return {
        "tokenizer_class": "LlamaTokenizerFast",
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "legacy": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1000000000000000019884624838656,
        "added_tokens_decoder": added,
        "additional_special_tokens": [AUDIO_SPECIALS[i] for i in range(101, 105)],
    }


def write_tokenizer(tok, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    # compact JSON: these files are copied into every checkpoint and the fixtures must stay small
    tok.save(os.path.join(out_dir, "tokenizer.json"), pretty=False)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config_dict(tok), f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
