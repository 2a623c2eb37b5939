"""Hooks into the official model while it runs: prescribe the CFM noise, record per-patch values.

The official CFM draws its noise with the global `torch.randn`, which no port can reproduce, so
the cases replace it with seeded or given tensors and store them. The forward hooks only observe
(they return nothing), so the official outputs are unchanged.
"""

from __future__ import annotations

import contextlib

import torch
import voxcpm.modules.locdit.unified_cfm as unified_cfm_mod


class _TorchProxy:
    """Stand-in for the `torch` module as seen by unified_cfm.py: `randn` returns the next
    prescribed / pre-drawn z; everything else is the real torch."""

    def __init__(self, real, provider):
        self._real = real
        self._provider = provider

    def __getattr__(self, name):
        return getattr(self._real, name)

    def randn(self, *size, **kwargs):
        if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
            size = tuple(size[0])
        z = self._provider(tuple(size))
        return z.to(device=kwargs.get("device") or "cpu", dtype=kwargs.get("dtype") or torch.float32)


@contextlib.contextmanager
def injected_noise(seed: int | None = None, fixed: list[torch.Tensor] | None = None):
    """Replace the CFM's `torch.randn`. With `seed`, each call draws N(0,1) f32 from a private
    generator; with `fixed`, each call returns the next given tensor. Yields the list of z used."""
    used: list[torch.Tensor] = []
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    queue = list(fixed or [])

    def provider(shape):
        if gen is not None:
            z = torch.randn(shape, generator=gen, dtype=torch.float32)
        else:
            z = queue.pop(0)
            assert tuple(z.shape) == shape, (z.shape, shape)
        used.append(z.clone())
        return z

    real = unified_cfm_mod.torch
    unified_cfm_mod.torch = _TorchProxy(real, provider)
    try:
        yield used
    finally:
        unified_cfm_mod.torch = real


@contextlib.contextmanager
def capture_steps(model):
    """Forward hooks recording, per generated patch: lm_hidden / res_hidden (the DiT projections'
    inputs), the stop logits, the CFM output patch and the FSQ values before rounding (margins.py)."""
    rec = {"lm_hidden": [], "res_hidden": [], "stop_logits": [], "patch": [], "fsq_pre_round": []}
    fsq = model.fsq_layer
    hooks = [
        fsq.in_proj.register_forward_hook(
            lambda m, i, o: rec["fsq_pre_round"].append((torch.tanh(o) * fsq.scale).detach().clone())
        ),
        model.lm_to_dit_proj.register_forward_hook(lambda m, i, o: rec["lm_hidden"].append(i[0].detach().clone())),
        model.res_to_dit_proj.register_forward_hook(lambda m, i, o: rec["res_hidden"].append(i[0].detach().clone())),
        model.stop_head.register_forward_hook(lambda m, i, o: rec["stop_logits"].append(o.detach().clone())),
        model.feat_decoder.register_forward_hook(lambda m, i, o: rec["patch"].append(o.detach().clone())),
    ]
    try:
        yield rec
    finally:
        for h in hooks:
            h.remove()
