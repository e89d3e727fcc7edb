"""Attention: scores -> softmax weights -> weighted sum, and a GRU encoder–decoder that attends (torch.nn).

Shapes: B batch, S source length (keys and values), T target length (queries), N rows decoded at once
(B, or B k in a beam of width k), E embedding size, H hidden units, A attention units, V vocabulary.
A query may be one vector per row (B, Hq) or one per target position (B, T, Hq).

    e_s   = score(q, k_s)                     one number per source position, (B, [T,] S)
    a     = softmax(e) over unmasked s        the attention weights, 0 on padding, sum 1, (B, [T,] S)
    c     = sum_s a_s v_s                     the context vector, (B, [T,] Hv)

Scores: additive (Bahdanau et al., 2015) v^T tanh(W_q q + W_k k); dot (Luong et al., 2015) q^T k;
general (Luong) q^T W k. The model `Seq2SeqAttention` follows Luong et al.'s global attention: the
decoder GRU reads y_{t-1}, its new state s_t is the query over all encoder states, and
tanh(W_c [c_t; s_t]) predicts y_t, so training runs the GRU over the whole target at once.
With `score="fixed"` the same model has no attention: c_t = c, the encoder's summary, at every
step (the fixed context of Cho et al., 2014), so the two differ in exactly one thing.
"""
from __future__ import annotations

import torch
from torch import nn

from llmbook.torch.init import keras_init_
from llmbook.torch.seq2seq import source_lengths

SCORES = ("additive", "dot", "general")
CONTEXTS = ("fixed", *SCORES)     # "fixed": no attention, the decoder reads the summary c at every step


def _check(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None) -> None:
    """Clear errors for the shapes attention accepts."""
    if query.ndim not in (2, 3):
        raise ValueError(f"query must be (batch, features) or (batch, targets, features), got {tuple(query.shape)}")
    if keys.ndim != 3 or values.ndim != 3:
        raise ValueError(f"keys and values must be (batch, source length, features), got keys {tuple(keys.shape)} "
                         f"and values {tuple(values.shape)}")
    if not (query.shape[0] == keys.shape[0] == values.shape[0]) or keys.shape[1] != values.shape[1]:
        raise ValueError(f"query {tuple(query.shape)}, keys {tuple(keys.shape)} and values {tuple(values.shape)} "
                         "must share the batch size, and keys and values the source length")
    if mask is not None and tuple(mask.shape) != tuple(keys.shape[:2]):
        raise ValueError(f"mask must be (batch, source length) = {tuple(keys.shape[:2])} with True on real "
                         f"tokens, got {tuple(mask.shape)}")


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis (S) of scores (B, [T,] S), with weight exactly 0 where mask (B, S) is False."""
    if mask is not None:
        keep = mask.bool() if scores.ndim == 2 else mask.bool().unsqueeze(1)   # (B, S) or (B, 1, S)
        scores = scores.masked_fill(~keep, float("-inf"))                     # (B, [T,] S)
    return torch.softmax(scores, dim=-1)                                       # (B, [T,] S)


class _Attention(nn.Module):
    """Common part: score every key, mask, softmax, weighted sum of the values."""

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Query (B, [T,] Hq), keys (B, S, Hk), values (B, S, Hv) (default: the keys), mask (B, S)
        -> context (B, [T,] Hv), weights (B, [T,] S)."""
        values = keys if values is None else values
        _check(query, keys, values, mask)
        q = query if query.ndim == 3 else query.unsqueeze(1)                   # (B, T, Hq), T = 1 for one query
        weights = masked_softmax(self.score(q, keys), mask)                    # (B, T, S)
        context = weights @ values                                             # (B, T, S) @ (B, S, Hv) -> (B, T, Hv)
        if query.ndim == 2:
            return context[:, 0], weights[:, 0]                                # (B, Hv), (B, S)
        return context, weights


class AdditiveAttention(_Attention):
    """Bahdanau's additive score e_s = v^T tanh(W_q q + W_k k_s)."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.W_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.W_k = nn.Linear(key_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Queries (B, T, Hq), keys (B, S, Hk) -> scores (B, T, S)."""
        if query.shape[-1] != self.W_q.in_features or keys.shape[-1] != self.W_k.in_features:
            raise ValueError(f"AdditiveAttention was built for queries of {self.W_q.in_features} and keys of "
                             f"{self.W_k.in_features} features, got {query.shape[-1]} and {keys.shape[-1]}")
        q = self.W_q(query).unsqueeze(2)                                       # (B, T, 1, A)
        k = self.W_k(keys).unsqueeze(1)                                        # (B, 1, S, A)
        return self.v(torch.tanh(q + k)).squeeze(-1)                           # (B, T, S, A) -> (B, T, S)


class DotProductAttention(_Attention):
    """Luong's dot score e_s = q^T k_s (optionally divided by sqrt(H), as the Transformer will)."""

    def __init__(self, scaled: bool = False):
        super().__init__()
        self.scaled = scaled

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Queries (B, T, H), keys (B, S, H) -> scores (B, T, S)."""
        if query.shape[-1] != keys.shape[-1]:
            raise ValueError(f"dot-product attention needs queries and keys of the same size, got {query.shape[-1]} "
                             f"and {keys.shape[-1]}: project one of them, or use GeneralAttention")
        scores = query @ keys.transpose(1, 2)                                  # (B, T, H) @ (B, H, S) -> (B, T, S)
        return scores / query.shape[-1] ** 0.5 if self.scaled else scores


class GeneralAttention(_Attention):
    """Luong's general score e_s = q^T W k_s (a learned bilinear form; queries and keys may differ in size)."""

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        self.W = nn.Linear(key_dim, query_dim, bias=False)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Queries (B, T, Hq), keys (B, S, Hk) -> scores (B, T, S)."""
        if query.shape[-1] != self.W.out_features or keys.shape[-1] != self.W.in_features:
            raise ValueError(f"GeneralAttention was built for queries of {self.W.out_features} and keys of "
                             f"{self.W.in_features} features, got {query.shape[-1]} and {keys.shape[-1]}")
        return query @ self.W(keys).transpose(1, 2)                            # (B, T, Hq) @ (B, Hq, S) -> (B, T, S)


def make_attention(score: str, query_dim: int, key_dim: int, attn_dim: int) -> _Attention:
    """The attention module for a score name: 'additive', 'dot' or 'general'."""
    if score == "additive":
        return AdditiveAttention(query_dim, key_dim, attn_dim)
    if score == "dot":
        return DotProductAttention()
    if score == "general":
        return GeneralAttention(query_dim, key_dim)
    raise ValueError(f"unknown attention score {score!r}: choose one of {SCORES}")


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first lengths[b] positions of each row of x (B, S, ...); padding stays where it is."""
    S = x.shape[1]
    pos = torch.arange(S, device=x.device).unsqueeze(0)                        # (1, S)
    idx = torch.where(pos < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - pos, pos)   # (B, S)
    idx = idx.view(*idx.shape, *([1] * (x.ndim - 2))).expand_as(x)            # (B, S, ...)
    return torch.gather(x, 1, idx)                                             # (B, S, ...)


class BidirectionalEncoder(nn.Module):
    """Two GRUs of H/2 units read the source forwards and backwards; state s is [h_fwd_s; h_bwd_s], (B, S, H).

    The backward GRU reads each row's real tokens reversed, so padding never reaches a real position.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, pad_id: int = 0, dropout: float = 0.0):
        super().__init__()
        if hidden_dim % 2:
            raise ValueError(f"hidden_dim must be even (two directions of hidden_dim / 2 units), got {hidden_dim}")
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.fwd = nn.GRU(embed_dim, hidden_dim // 2, batch_first=True)
        self.bwd = nn.GRU(embed_dim, hidden_dim // 2, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Source ids (B, S) -> states (B, S, H), mask (B, S) (True on real tokens), summary (B, H)."""
        lengths = source_lengths(src, self.pad_id)                             # (B,)
        x = self.drop(self.embed(src))                                         # (B, S, E)
        fwd, _ = self.fwd(x)                                                   # (B, S, H/2)
        bwd, _ = self.bwd(reverse_padded(x, lengths))                          # (B, S, H/2), reversed order
        bwd = reverse_padded(bwd, lengths)                                     # (B, S, H/2), source order
        rows = torch.arange(src.shape[0], device=src.device)
        summary = torch.cat([fwd[rows, lengths - 1], bwd[:, 0]], dim=-1)       # (B, H): both ends of the sentence
        return torch.cat([fwd, bwd], dim=-1), src != self.pad_id, summary     # (B, S, H), (B, S), (B, H)


class AttentionDecoder(nn.Module):
    """A GRU over the target; at every step its state queries all encoder states for a fresh context c_t."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, score: str = "additive",
                 dropout: float = 0.0):
        super().__init__()
        if score not in CONTEXTS:
            raise ValueError(f"unknown attention score {score!r}: choose one of {CONTEXTS}")
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.init = nn.Linear(hidden_dim, hidden_dim)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.attention = None if score == "fixed" else make_attention(score, hidden_dim, hidden_dim, hidden_dim)
        self.combine = nn.Linear(2 * hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, vocab_size)
        self.drop = nn.Dropout(dropout)

    def initial_state(self, summary: torch.Tensor) -> torch.Tensor:
        """s_0 = tanh(W_init [h_fwd_last; h_bwd_first]), (B, H)."""
        return torch.tanh(self.init(summary))                                  # (B, H)

    def forward(self, tgt_in: torch.Tensor, memory, state: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Inputs (B, T), memory (encoder states (B, S, H), mask (B, S), summary (B, H)), state (B, H)
        -> logits (B, T, V), last state (B, H), attention weights (B, T, S) (None for a fixed context)."""
        states, mask, summary = memory                                         # (B, S, H), (B, S), (B, H)
        y = self.drop(self.embed(tgt_in))                                      # (B, T, E)
        s, last = self.rnn(y, state.unsqueeze(0))                              # (B, T, H), (1, B, H)
        if self.attention is None:                                             # fixed: c_t = c at every step
            context, weights = summary.unsqueeze(1).expand_as(s), None         # (B, T, H)
        else:
            context, weights = self.attention(s, states, states, mask)         # (B, T, H), (B, T, S)
        h = torch.tanh(self.combine(torch.cat([context, s], dim=-1)))          # (B, T, 2H) -> (B, T, H)
        return self.out(self.drop(h)), last[0], weights                        # (B, T, V), (B, H), (B, T, S)


class Seq2SeqAttention(nn.Module):
    """Bidirectional GRU encoder -> all its states -> GRU decoder with attention (or a fixed context); teacher-forced."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128,
                 score: str = "additive", dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        self.encoder = BidirectionalEncoder(src_vocab_size, embed_dim, hidden_dim, pad_id, dropout)
        self.decoder = AttentionDecoder(tgt_vocab_size, embed_dim, hidden_dim, score, dropout)
        keras_init_(self)          # start like the Keras twin: torch's defaults fit this model slower (llmbook.torch.init)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Logits of every target position given the source (B, S) and the shifted targets (B, T) -> (B, T, V)."""
        return self.decode_all(src, tgt_in)[0]                                 # (B, T, V)

    def decode_all(self, src: torch.Tensor, tgt_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced pass: logits (B, T, V) and attention weights (B, T, S)."""
        memory = self.encoder(src)                                             # (B, S, H), (B, S), (B, H)
        logits, _, weights = self.decoder(tgt_in, memory, self.decoder.initial_state(memory[2]))
        return logits, weights                                                 # (B, T, V), (B, T, S) or None

    @torch.no_grad()
    def attention_weights(self, src, tgt_in) -> torch.Tensor:
        """Weights (B, T, S) of target inputs (B, T) (e.g. <bos> + a decoded output) over the source (B, S)."""
        if self.decoder.attention is None:
            raise ValueError("this model has a fixed context (score='fixed'): it has no attention weights")
        self.eval()
        dev = next(self.parameters()).device
        src, tgt_in = (torch.as_tensor(a, device=dev) for a in (src, tgt_in))
        return self.decode_all(src, tgt_in)[1]                                 # (B, T, S)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Memory of each source (B, S): encoder states (B, S, H), mask (B, S), summary (B, H)."""
        return self.encoder(src)

    def initial_state(self, memory) -> torch.Tensor:
        """The decoder state before <bos>, (B, H)."""
        return self.decoder.initial_state(memory[2])                           # (B, H)

    def step(self, prev: torch.Tensor, memory, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoding step: previous tokens (N,), memory, state (N, H) -> logits (N, V), new state (N, H)."""
        logits, state, _ = self.decoder(prev.unsqueeze(1), memory, state)     # (N, 1, V), (N, H)
        return logits[:, 0], state                                             # (N, V), (N, H)
