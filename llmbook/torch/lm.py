"""Bengio et al. (2003) neural probabilistic language model, from scratch and with torch.nn layers.

Shapes: B batch, N = n-1 context tokens, E embedding size, h hidden units (the paper's letter; H is
the hidden layer's weight matrix), V vocabulary.

    x = [C(w_{t-N}); ...; C(w_{t-1})]            concatenated embeddings, oldest first, (B, N E)
    a = tanh(d + x H)                            hidden layer, (B, h)
    y = b + x W + a U                            logits (the direct term x W is optional), (B, V)
    P(w_t = i | context) = softmax(y)_i
"""
from __future__ import annotations

import math

import torch
from torch import nn


class NNLMFromScratch(nn.Module):
    """The NNLM written with explicit parameter matrices, as in the paper's equations."""

    def __init__(self, vocab_size: int, context: int, embed_dim: int, hidden_dim: int,
                 direct: bool = False, dropout: float = 0.0):
        super().__init__()
        self.context = context
        fan_in = context * embed_dim
        u = lambda *shape, fan: nn.Parameter(torch.empty(*shape).uniform_(-1 / math.sqrt(fan), 1 / math.sqrt(fan)))  # noqa: E731
        self.C = nn.Parameter(torch.randn(vocab_size, embed_dim) * 0.1)   # (V, E) word feature vectors
        self.H = u(fan_in, hidden_dim, fan=fan_in)                        # (N E, h)
        self.d = nn.Parameter(torch.zeros(hidden_dim))                    # (h,)
        self.U = u(hidden_dim, vocab_size, fan=hidden_dim)                # (h, V)
        self.b = nn.Parameter(torch.zeros(vocab_size))                    # (V,)
        self.W = u(fan_in, vocab_size, fan=fan_in) if direct else None    # (N E, V) direct connections
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits of the next token given the previous `context` token ids (B, N) -> (B, V)."""
        _check_context(ids, self.context)
        x = self.C[ids].flatten(1)                    # (B, N) -> (B, N, E) -> (B, N E)
        a = torch.tanh(self.d + x @ self.H)           # (B, h)
        y = self.b + self.drop(a) @ self.U            # (B, V)
        if self.W is not None:
            y = y + x @ self.W                        # (B, V)
        return y


class NNLM(nn.Module):
    """The same NNLM from library layers: nn.Embedding -> nn.Linear + tanh -> nn.Linear."""

    def __init__(self, vocab_size: int, context: int, embed_dim: int, hidden_dim: int,
                 direct: bool = False, dropout: float = 0.0):
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(vocab_size, embed_dim)                  # C
        self.hidden = nn.Linear(context * embed_dim, hidden_dim)          # H, d
        self.out = nn.Linear(hidden_dim, vocab_size)                      # U, b
        self.direct = nn.Linear(context * embed_dim, vocab_size, bias=False) if direct else None  # W
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits of the next token given the previous `context` token ids (B, N) -> (B, V)."""
        _check_context(ids, self.context)
        x = self.embed(ids).flatten(1)                # (B, N E)
        a = torch.tanh(self.hidden(x))                # (B, h)
        y = self.out(self.drop(a))                    # (B, V)
        if self.direct is not None:
            y = y + self.direct(x)                    # (B, V)
        return y


def _check_context(ids: torch.Tensor, context: int) -> None:
    if ids.ndim != 2 or ids.shape[1] != context:
        raise ValueError(f"expected token ids of shape (batch, {context}) — the {context} previous tokens — "
                         f"got {tuple(ids.shape)}")
