"""The demo checkpoint (`assets/demo-checkpoint/`): tiny shapes, its own seed, and a README.

It lets the tools and examples run without the real model. It is checked like the fixture
checkpoints and smoke-run once through the official `generate()`.
"""

from __future__ import annotations

import os

import torch

from checkpoints import make_checkpoint
from configs import SEEDS, tiny_config
from instrument import injected_noise

DEMO_README = """# Demo checkpoint

**THESE ARE RANDOM WEIGHTS. The demo model produces noise-like audio, not speech.**
**It exists only so that the tools and examples run without downloading the real model.**

The directory has the official VoxCPM2 layout (`config.json` with `"architecture": "voxcpm2"`,
`model.safetensors`, `audiovae.pth`, `tokenizer.json`, `tokenizer_config.json`) and the same tiny
shapes as `engine/tests/fixtures/tiny/checkpoint` (LM hidden 64, 2 layers, patch 4, feat_dim 8,
AudioVAE with the real 16 kHz -> 48 kHz rates), but its own random seed. The tokenizer is a small
synthetic SentencePiece-style BPE, not the MiniCPM-4 vocabulary.

Regenerate with:

    /opt/golden-venv/bin/python tools/golden/generate.py --out engine/tests/fixtures --demo-out assets/demo-checkpoint
"""


def write_demo(tok, vocab_size: int, out_dir: str, bf16: bool) -> None:
    demo = make_checkpoint(tiny_config(vocab_size), tok, SEEDS["demo"], out_dir, lm_bf16=bf16)
    # smoke-run the demo through the public generate() so it is known to work end to end
    with torch.inference_mode(), injected_noise(seed=SEEDS["demo"]):
        wav = demo.generate(target_text="Hello 你好", min_len=2, max_len=8, retry_badcase=False)
    assert wav.ndim == 2 and wav.shape[1] % (4 * demo.audio_vae.decode_chunk_size) == 0 and torch.isfinite(wav).all()
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(DEMO_README)
