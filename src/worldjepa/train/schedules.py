"""Hyperparameter schedules as pure functions of (step, total).

Being pure functions of the step (no hidden counter) makes a resumed run use exactly the values the
uninterrupted run would have used. `step` is 0-based: the value for the optimizer step about to run.
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int, start: float, ref: float, final: float) -> float:
    """Linear warmup `start -> ref` over `warmup` steps, then half-cosine `ref -> final` at `total`.

    step 0 -> start, step `warmup` -> ref, step `total` -> final (I-JEPA / V-JEPA learning rate).
    """
    if step < warmup:
        return start + (ref - start) * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + (ref - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine(step: int, total: int, start: float, final: float) -> float:
    """Half-cosine from `start` (step 0) to `final` (step `total`); used for weight decay 0.04 -> 0.4."""
    progress = min(1.0, step / max(1, total))
    return final + (start - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def linear(step: float, total: float, start: float, final: float) -> float:
    """Straight line from `start` (step 0) to `final` (step `total`); the EMA momentum 0.996 -> 1.0.

    A method that receives `progress` in [0, 1] calls `linear(progress, 1.0, m0, m1)`.
    """
    progress = min(1.0, step / total) if total > 0 else 1.0
    return start + (final - start) * progress
