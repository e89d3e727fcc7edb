"""Framework-neutral autoregressive sampling with a temperature (NumPy)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / temperature): the distribution sharpened (tau < 1) or flattened (tau > 1)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature} (use a small value such as 0.01 for near-greedy)")
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def sample_tokens(next_logits: Callable[[list[int]], np.ndarray], prompt: Sequence[int], length: int,
                  temperature: float = 1.0, seed: int = 0) -> list[int]:
    """Draw `length` ids one at a time from softmax(next_logits(history) / temperature)."""
    rng = np.random.default_rng(seed)
    history = [int(i) for i in prompt]
    for _ in range(length):
        p = apply_temperature(next_logits(history), temperature)
        history.append(int(rng.choice(len(p), p=p)))
    return history[len(prompt):]
