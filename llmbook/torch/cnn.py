"""A convolutional sentence encoder (Kim 2014): 1-D convolutions over embeddings, max over time, one vector.

Shapes: B batch, T tokens, E embedding size, C channels (filters) per width, K widths.

    X = [e(w_1); ...; e(w_T)]                          embeddings                        (B, T, E)
    a^k_{t,c} = relu(b^k_c + sum_{j<k} e(w_{t+j}) . F^k_{c,j})   filter c of width k at t   (B, T-k+1, C)
    z^k_c = max_t a^k_{t,c}                            max-pooling over time             (B, C)
    z = [z^{k_1}; ...; z^{k_K}]                        the fixed-length encoding         (B, K C)

`nn.Conv1d` wants channels first, (B, E, T), and stores its filters as (C, E, k).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class CNNEncoder(nn.Module):
    """Embeddings -> one nn.Conv1d + ReLU per filter width -> max over time -> concatenated (B, K C) vector."""

    def __init__(self, vocab_size: int, embed_dim: int, channels: int, widths: Sequence[int] = (3, 4, 5)):
        super().__init__()
        self.widths = tuple(widths)
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, channels, k) for k in self.widths)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """A fixed-length encoding (B, K C) of token ids (B, T), T >= the widest filter."""
        _check_length(ids, max(self.widths))
        x = self.embed(ids).transpose(1, 2)                          # (B, T, E) -> (B, E, T)
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in self.convs]   # K x (B, C, T-k+1) -> K x (B, C)
        return torch.cat(pooled, dim=1)                              # (B, K C)


def _check_length(ids, widest: int) -> None:
    if len(ids.shape) != 2:
        raise ValueError(f"expected token ids of shape (batch, time), got {tuple(ids.shape)}")
    if ids.shape[1] is not None and ids.shape[1] < widest:
        raise ValueError(f"sequences of {ids.shape[1]} tokens are shorter than the widest filter ({widest}): "
                         "pad them or use narrower filters")
