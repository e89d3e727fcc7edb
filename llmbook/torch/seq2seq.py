"""Encoder–decoder (Seq2Seq) with a fixed-length context, built from torch.nn library layers (GRU).

Shapes: B batch, S source length, T target length, N rows decoded at once (B, or B k for a beam of
width k), E embedding size, H hidden units, V vocabulary (source or target, as the line says).

    h_s = GRU_enc(emb(x_s), h_{s-1})                       encoder states, (B, S, H)
    c   = h_{|x|}                                          the context: state after the last real source token, (B, H)
    s_0 = c,   s_t = GRU_dec([emb(y_{t-1}); c], s_{t-1})   decoder states, (B, T, H)
    P(y_t | y_<t, c) = softmax(W s_t + b)                  (B, T, V)

Sources are right-padded with `pad_id`; the context is read at each row's last real token, so the
padding after it never changes c. As in Cho et al. (2014), c is both the decoder's first state and
part of its input at every step.
"""
from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """Reads the source ids with a GRU; returns every state and the fixed-length context c."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, pad_id: int = 0, dropout: float = 0.0):
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Source ids (B, S) -> states (B, S, H) and context c (B, H)."""
        lengths = source_lengths(src, self.pad_id)                        # (B,)
        x = self.drop(self.embed(src))                                     # (B, S, E)
        states, _ = self.rnn(x)                                            # (B, S, H)
        context = states[torch.arange(src.shape[0], device=src.device), lengths - 1]  # (B, H)
        return states, context


class Decoder(nn.Module):
    """A GRU language model of the target that starts from state c and reads c again at every step."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim + hidden_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
        self.drop = nn.Dropout(dropout)

    def forward(self, tgt_in: torch.Tensor, context: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder inputs (B, T), context (B, H), state (B, H) or None (= c) -> logits (B, T, V), last state (B, H)."""
        y = self.drop(self.embed(tgt_in))                                  # (B, T, E)
        c = context.unsqueeze(1).expand(-1, tgt_in.shape[1], -1)           # (B, H) -> (B, T, H)
        s0 = (context if state is None else state).unsqueeze(0)            # (1, B, H)
        states, last = self.rnn(torch.cat([y, c], dim=-1), s0)             # (B, T, H), (1, B, H)
        return self.out(self.drop(states)), last[0]                        # (B, T, V), (B, H)


class Seq2Seq(nn.Module):
    """Encoder -> fixed-length context c -> decoder; `forward` is the teacher-forced pass used in training."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128,
                 dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        self.encoder = Encoder(src_vocab_size, embed_dim, hidden_dim, pad_id, dropout)
        self.decoder = Decoder(tgt_vocab_size, embed_dim, hidden_dim, dropout)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Logits of every target position given the source (B, S) and the shifted targets (B, T) -> (B, T, V)."""
        _, context = self.encoder(src)                                     # (B, H)
        logits, _ = self.decoder(tgt_in, context)                          # (B, T, V)
        return logits

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """The context c of each source (B, S) -> (B, H)."""
        return self.encoder(src)[1]

    def initial_state(self, context: torch.Tensor) -> torch.Tensor:
        """The decoder state before <bos>: s_0 = c, (B, H)."""
        return context

    def step(self, prev: torch.Tensor, context: torch.Tensor,
             state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoding step: previous tokens (N,), context (N, H), state (N, H) -> logits (N, V), new state (N, H)."""
        logits, state = self.decoder(prev.unsqueeze(1), context, state)   # (N, 1, V), (N, H)
        return logits[:, 0], state                                         # (N, V), (N, H)


def source_lengths(src: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Number of real tokens in each right-padded row of (B, S) ids -> (B,); rejects empty or left-padded rows."""
    if src.ndim != 2:
        raise ValueError(f"expected source ids of shape (batch, source length), got {tuple(src.shape)}")
    real = src != pad_id                                                   # (B, S)
    lengths = real.sum(1)                                                  # (B,)
    if bool((lengths == 0).any()):
        raise ValueError("a source row is all padding: every source needs at least one real token")
    if bool((real[:, 1:] & ~real[:, :-1]).any()):
        raise ValueError(f"sources must be right-padded with pad_id={pad_id} (a real token follows padding): "
                         "use llmbook.data.pad_sequences")
    return lengths
