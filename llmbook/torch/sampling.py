"""On-device decoding rules for one step's logits (..., V): twin of llmbook.sampling (NumPy)."""
from __future__ import annotations

import torch


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most probable id at each row: argmax over the last axis."""
    return logits.argmax(dim=-1)                                           # (...,)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (exactly k), the rest -> -inf."""
    V = logits.shape[-1]
    if not 1 <= k <= V:
        raise ValueError(f"top_k must be in 1..{V} (the vocabulary size), got {k}")
    idx = logits.topk(k, dim=-1).indices                                   # (..., k)
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, idx, True)   # (..., V)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most probable ids whose probability mass is >= p, the rest -> -inf."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    sorted_logits, order = logits.sort(dim=-1, descending=True, stable=True)   # (..., V) best first
    sorted_p = torch.softmax(sorted_logits, dim=-1)                        # (..., V)
    before = sorted_p.cumsum(dim=-1) - sorted_p                            # mass of the better ids
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, before < p)   # (..., V)
    return logits.masked_fill(~keep, float("-inf"))


def sample(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, generator: torch.Generator | int | None = 0) -> torch.Tensor:
    """Draw one id per row: logits / temperature, then top-k, then top-p; temperature 0 is greedy."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if temperature == 0:
        return greedy(logits)
    if isinstance(generator, int):
        generator = torch.Generator(device=logits.device).manual_seed(generator)
    z = logits.float() / temperature                                       # (..., V)
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None:
        z = top_p_filter(z, top_p)
    probs = torch.softmax(z, dim=-1).reshape(-1, z.shape[-1])              # (N, V)
    ids = torch.multinomial(probs, 1, generator=generator)[:, 0]           # (N,)
    return ids.reshape(z.shape[:-1])
