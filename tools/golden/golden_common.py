"""Shared helpers for the VoxCPM2 golden-fixture tools.

Everything model-related is delegated to the official `voxcpm==2.0.3` package; this module only
builds configs, a synthetic tokenizer, randomises parameters and writes checkpoint directories.
"""

from __future__ import annotations

import importlib.machinery
import json
import math
import os
import re
import sys
import types
from collections import Counter

# --------------------------------------------------------------------------------------------- #
# Import shim
# --------------------------------------------------------------------------------------------- #


def install_import_shims() -> None:
    """`import voxcpm` pulls in `voxcpm.core` -> `voxcpm.model.voxcpm` (V1) which does a top-level
    `import torchaudio`. torchaudio is never called on any path used here (it only loads/resamples
    prompt wavs in the V1 model), and no torchaudio wheel matches the CUDA build of torch 2.15
    in the venv, so when the real package cannot be imported we register an empty stand-in module.
    """
    try:
        import torchaudio  # noqa: F401
        return
    except Exception:
        pass
    stub = types.ModuleType("torchaudio")
    stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    stub.__version__ = "0.0.0-golden-stub"

    def _unavailable(*_a, **_k):
        raise RuntimeError("torchaudio stub: not available in the golden venv")

    stub.load = _unavailable
    stub.functional = types.SimpleNamespace(resample=_unavailable, loudness=_unavailable, gain=_unavailable)
    sys.modules["torchaudio"] = stub


# --------------------------------------------------------------------------------------------- #
# Synthetic tokenizer
# --------------------------------------------------------------------------------------------- #

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


# --------------------------------------------------------------------------------------------- #
# Configs
# --------------------------------------------------------------------------------------------- #


def lm_config(
    *,
    vocab_size,
    hidden,
    ffn,
    layers,
    heads,
    kv_heads,
    kv_channels,
    max_pos,
    orig_max_pos,
    short_factor,
    long_factor,
):
    assert len(short_factor) == len(long_factor) == kv_channels // 2
    return {
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "max_position_embeddings": max_pos,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "type": "longrope",
            "long_factor": [float(x) for x in long_factor],
            "short_factor": [float(x) for x in short_factor],
            "original_max_position_embeddings": orig_max_pos,
        },
        "vocab_size": vocab_size,
        "scale_emb": 12,
        "dim_model_base": 256,
        "scale_depth": 1.4,
        "rope_theta": 10000,
        "kv_channels": kv_channels,
        "use_mup": False,
    }


def full_config(
    *,
    lm,
    patch_size,
    feat_dim,
    residual_layers,
    fsq_dim,
    enc,
    dit,
    vae,
    max_length,
    dtype="float32",
    device="cpu",
):
    return {
        "architecture": "voxcpm2",
        "lm_config": lm,
        "patch_size": patch_size,
        "feat_dim": feat_dim,
        "residual_lm_num_layers": residual_layers,
        "residual_lm_no_rope": True,
        "scalar_quantization_latent_dim": fsq_dim,
        "scalar_quantization_scale": 9,
        "encoder_config": {
            "hidden_dim": enc[0],
            "ffn_dim": enc[1],
            "num_heads": enc[2],
            "num_layers": enc[3],
            "kv_channels": enc[4],
        },
        "dit_config": {
            "hidden_dim": dit[0],
            "ffn_dim": dit[1],
            "num_heads": dit[2],
            "num_layers": dit[3],
            "kv_channels": dit[4],
            # the released config spells it "mean_mode"; pydantic ignores it (the field is dit_mean_mode)
            "mean_mode": False,
            "cfm_config": {
                "sigma_min": 1e-06,
                "solver": "euler",
                "t_scheduler": "log-norm",
                "inference_cfg_rate": 2.0,
            },
        },
        "audio_vae_config": vae,
        "max_length": max_length,
        "device": device,
        "dtype": dtype,
    }


def vae_config(*, encoder_dim, encoder_rates, latent_dim, decoder_dim, decoder_rates, sample_rate=16000, out_sample_rate=48000):
    return {
        "encoder_dim": encoder_dim,
        "encoder_rates": list(encoder_rates),
        "latent_dim": latent_dim,
        "decoder_dim": decoder_dim,
        "decoder_rates": list(decoder_rates),
        "sr_bin_boundaries": [20000, 30000, 40000],
        "sample_rate": sample_rate,
        "out_sample_rate": out_sample_rate,
    }


# --------------------------------------------------------------------------------------------- #
# Model construction and randomisation
# --------------------------------------------------------------------------------------------- #


class _VocabOnlyTokenizer:
    """VoxCPM2Model.__init__ only reads `tokenizer.vocab` (for the multichar-CJK split table)."""

    def __init__(self, vocab):
        self.vocab = vocab


def build_model(config_dict: dict, vocab: dict | None = None):
    import torch
    from voxcpm.model.voxcpm2 import VoxCPM2Model, VoxCPMConfig
    from voxcpm.modules.audiovae import AudioVAEConfigV2, AudioVAEV2

    config = VoxCPMConfig.model_validate(json.loads(json.dumps(config_dict)))
    vae = AudioVAEV2(config=AudioVAEConfigV2(**config_dict["audio_vae_config"]))
    model = VoxCPM2Model(config, _VocabOnlyTokenizer(vocab or {}), vae, device="cpu")
    model = model.float().eval()
    model.audio_vae = model.audio_vae.to(torch.float32)
    return model


def randomise_(module, seed: int, *, stop_head_bias: float = 0.0) -> None:
    """Overwrite EVERY parameter of `module` (a VoxCPM2Model or a sub-module) with a deterministic
    random value whose scale keeps activations O(1). Parameters are visited in sorted-name order
    with a dedicated generator, so the result depends only on (seed, shapes)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            shape = tuple(p.shape)
            leaf = name.rsplit(".", 1)[-1]

            def randn(*s):
                return torch.randn(s if s else shape, generator=gen, dtype=torch.float32)

            if leaf == "alpha":  # Snake alpha: positive, 0.5..1.5
                v = 0.5 + torch.rand(shape, generator=gen, dtype=torch.float32)
            elif leaf == "weight_g":
                v = _weight_g_value(name, module, shape, gen)
            elif leaf == "weight_v":
                v = randn()
            elif name.endswith("norm.weight") or "layernorm" in name:
                v = 1.0 + 0.1 * randn()
            elif name.endswith("scale_embed.weight"):
                v = 1.0 + 0.1 * randn()
            elif name.endswith("bias_embed.weight"):
                v = 0.1 * randn()
            elif name.endswith("special_token"):
                v = randn()
            elif name.endswith("embed_tokens.weight"):
                v = randn()
            elif leaf == "bias":
                v = 0.1 * randn()
            elif leaf == "weight" and p.ndim == 2:
                v = randn() / math.sqrt(shape[1])
            else:
                raise RuntimeError(f"randomise_: no rule for parameter {name} {shape}")
            p.copy_(v.to(p.dtype))


def _weight_g_value(name, root, shape, gen):
    """Norm of each output row of a weight-normed conv. Conv1d: ~1 (variance preserving).
    ConvTranspose1d (dim 0 = input channels): sqrt(stride * Cout / Cin) so that the upsampled
    signal keeps unit scale."""
    import torch

    from voxcpm.modules.audiovae.audio_vae_v2 import CausalDecoder, CausalResidualUnit

    mod_name = name[: -len(".weight_g")]
    mod = root.get_submodule(mod_name)
    parent_name, _, last = mod_name.rpartition(".")
    grand_name = parent_name.rpartition(".")[0]
    base = 1.0
    if isinstance(mod, torch.nn.ConvTranspose1d):
        cin, cout = mod.in_channels, mod.out_channels
        base = math.sqrt(mod.stride[0] * cout / cin)
    elif last == "3" and isinstance(root.get_submodule(grand_name), CausalResidualUnit):
        # last 1x1 conv of a residual branch: keep the 18+ residual additions from blowing up
        base = 0.25
    elif (
        isinstance(mod, torch.nn.Conv1d)
        and mod.out_channels == 1
        and isinstance(root.get_submodule(parent_name.rpartition(".")[0]), CausalDecoder)
    ):
        # final decoder conv (before tanh): keep the waveform mostly out of tanh saturation
        base = 0.1
    return base * (0.8 + 0.4 * torch.rand(shape, generator=gen, dtype=torch.float32))


def split_state_dict(model):
    """(non-VAE state dict, VAE state dict without the `audio_vae.` prefix)."""
    sd = model.state_dict()
    lm = {k: v for k, v in sd.items() if not k.startswith("audio_vae.")}
    vae = {k[len("audio_vae."):]: v for k, v in sd.items() if k.startswith("audio_vae.")}
    return lm, vae


def save_checkpoint(model, config_dict: dict, tok, out_dir: str, lm_dtype=None) -> None:
    import torch
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    lm_sd, vae_sd = split_state_dict(model)
    lm_sd = {k: (v.to(lm_dtype) if lm_dtype is not None else v).contiguous().clone() for k, v in lm_sd.items()}
    save_file(lm_sd, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    os.chmod(os.path.join(out_dir, "model.safetensors"), 0o644)  # safetensors creates files 0600
    vae_sd = {k: v.contiguous().clone() for k, v in vae_sd.items()}
    torch.save({"state_dict": vae_sd}, os.path.join(out_dir, "audiovae.pth"))
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config_dict, f, indent=2)
        f.write("\n")
    write_tokenizer(tok, out_dir)
