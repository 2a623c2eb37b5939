"""Refuse a case whose outcome sits on a knife edge.

The engine computes in another order than PyTorch, so its floats differ in the last bits. A stop
decision near a tie, or an FSQ value near a rounding boundary, could then go the other way and
change every later patch: such a case would test luck, not parity.
"""

from __future__ import annotations

import torch

# stop decisions closer than this to a tie could flip under float noise in another implementation
MIN_STOP_MARGIN = 0.05
# FSQ rounds tanh(h)*scale to integers: a value this close to a .5 boundary could round the other
# way under float noise (~1e-5 here) and change every later patch, so cases must keep clear of it
MIN_FSQ_MARGIN = 1e-3


def fsq_margin_of(values) -> float | None:
    """The smallest distance of any FSQ value (before rounding) to a rounding boundary."""
    if values is None or values.numel() == 0:
        return None
    return float(((values - torch.floor(values)) - 0.5).abs().min())


def step_fsq_values(rec):
    """The FSQ values of the generated steps from `capture_steps`; call 0, the prefill, is left out."""
    return torch.cat([v.reshape(-1) for v in rec["fsq_pre_round"][1:]]) if len(rec["fsq_pre_round"]) > 1 else None


def stop_margins(logits, min_len: int):
    """(logit1 - logit0 per patch, the smallest |margin| the loop actually checks: i > min_len)."""
    margins = (logits[:, 1] - logits[:, 0]).tolist()
    checked = [abs(m) for i, m in enumerate(margins) if i > min_len]
    return margins, (min(checked) if checked else None)


def check_margins(where: str, info: dict) -> None:
    m = info["min_checked_stop_margin"]
    assert m is None or m >= MIN_STOP_MARGIN, f"knife-edge stop decision in {where}: {info}"
    f = info["min_fsq_margin"]
    assert f is None or f >= MIN_FSQ_MARGIN, f"knife-edge FSQ rounding in {where}: {info}"
