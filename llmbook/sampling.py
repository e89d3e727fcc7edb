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


# ------------------------------------------------------------------------------------------------
# Chapter 7: decoding rules on one step's logits (..., V). Twins: llmbook.torch.sampling and
# llmbook.tf.sampling (same names, on-device tensors).


def greedy(logits: np.ndarray) -> np.ndarray:
    """The most probable id at each row: argmax over the last axis."""
    return np.asarray(logits).argmax(axis=-1)


def top_k_filter(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest logits of each row (exactly k; ties go to the lower id), the rest -> -inf."""
    logits = np.asarray(logits, dtype=np.float64)
    V = logits.shape[-1]
    if not 1 <= k <= V:
        raise ValueError(f"top_k must be in 1..{V} (the vocabulary size), got {k}")
    order = np.argsort(-logits, axis=-1, kind="stable")                    # (..., V) best first
    keep = np.zeros(logits.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :k], True, axis=-1)                 # (..., V)
    return np.where(keep, logits, -np.inf)


def top_p_filter(logits: np.ndarray, p: float) -> np.ndarray:
    """Keep the smallest set of most probable ids whose probability mass is >= p, the rest -> -inf."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    logits = np.asarray(logits, dtype=np.float64)
    probs = apply_temperature(logits, 1.0)                                 # (..., V)
    order = np.argsort(-logits, axis=-1, kind="stable")                    # (..., V) best first
    sorted_p = np.take_along_axis(probs, order, axis=-1)                   # (..., V)
    before = np.cumsum(sorted_p, axis=-1) - sorted_p                       # mass of the better ids
    keep_sorted = before < p                                               # the best id is always kept
    keep = np.zeros(logits.shape, dtype=bool)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)                   # (..., V)
    return np.where(keep, logits, -np.inf)


def sample(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, rng: np.random.Generator | int = 0) -> np.ndarray:
    """Draw one id per row: logits / temperature, then top-k, then top-p; temperature 0 is greedy."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if temperature == 0:
        return greedy(logits)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    z = logits / temperature                                               # (..., V)
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None:
        z = top_p_filter(z, top_p)
    probs = apply_temperature(z, 1.0)                                      # (..., V)
    flat = probs.reshape(-1, probs.shape[-1])                              # (N, V)
    u = rng.random(flat.shape[0])                                          # (N,)
    ids = (np.cumsum(flat, axis=-1) < u[:, None]).sum(axis=-1)             # inverse CDF
    return np.minimum(ids, probs.shape[-1] - 1).reshape(probs.shape[:-1])
