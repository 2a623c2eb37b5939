"""Seeded inputs and the safetensors writer that every golden file goes through.

Each input comes from its own `torch.Generator`, so a golden depends only on its seed, not on
what ran before it; the writer keeps the files byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import save_file


def gen_for(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(g, *shape):
    return torch.randn(shape, generator=g, dtype=torch.float32)


def f32(x) -> torch.Tensor:
    return x.detach().to(torch.float32).contiguous().clone()


def save_tensors(path: str, tensors: dict, metadata: dict | None = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    # a single metadata entry: safetensors writes the metadata map in hash order, so several
    # keys would make the file bytes differ from run to run
    meta = {"golden": json.dumps(metadata or {}, ensure_ascii=False, sort_keys=True)}
    save_file(out, path, metadata=meta)
    os.chmod(path, 0o644)  # safetensors creates files 0600
