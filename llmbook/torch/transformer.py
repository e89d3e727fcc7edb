"""The Transformer encoder–decoder (Vaswani et al., 2017), from scratch with torch.nn building blocks.

Shapes: B batch, S source length, T target length, N rows decoded at once (B, or B k for a beam of
width k), D model width (d_model), h heads, d_k = D / h per head, F feed-forward width, V vocabulary,
t the number of target positions already decoded (the length of the key/value cache).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V      the softmax runs over the keys j for each query i
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V),   MultiHead(Q, K, V) = Concat(head_1..head_h) W^O
    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2
    x <- x + Sublayer(LayerNorm(x))                        PRE-NORM residual blocks (Xiong et al., 2020),
                                                           plus a final LayerNorm after each stack

Masks are boolean with True = "may attend" (the Keras convention; `torch.nn.MultiheadAttention`'s
boolean masks mean the opposite). Masked scores become -inf, so their softmax weights are exactly 0.
The decoder's output projection shares its matrix with the target embedding (Press & Wolf, 2017).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor,
                                 v: torch.Tensor,
                                 mask: torch.Tensor | None = None,
                                 dropout: nn.Module | None = None):
    """softmax(q k^T / sqrt(d_k)) v over the last two axes -> out, weights.

    `mask` (True = may attend) broadcasts to (..., T, S)."""
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention needs q (..., T, d_k), k (..., S, d_k), "
                         f"v (..., S, d_v); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    # (..., T, d_k) @ (..., d_k, S) -> (..., T, S)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, S)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"attention mask must be boolean (True = may "
                             f"attend), got {mask.dtype}")
        scores = scores.masked_fill(~mask, float("-inf"))  # blocked: -inf
    weights = torch.softmax(scores, dim=-1)   # (..., T, S): rows sum to 1
    if dropout is not None:
        weights = dropout(weights)                                # (..., T, S)
    return weights @ v, weights                   # (..., T, d_v), (..., T, S)


def causal_mask(T: int, device=None, S: int | None = None) -> torch.Tensor:
    """(T, S) boolean (S = T by default): query i, the last T of S positions, may attend to keys j <= S - T + i."""
    S = T if S is None else S
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)   # (T, S)


def padding_mask(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(B, S) ids -> (B, 1, 1, S) boolean, True at real tokens (broadcasts over heads and queries)."""
    return (ids != pad_id)[:, None, None, :]                              # (B, 1, 1, S)


class MultiHeadAttention(nn.Module):
    """h scaled dot-product attentions on learned projections of D-wide queries, keys and values."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, causal: bool = False):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}: choose d_model = h * d_k")
        self.d_model, self.num_heads, self.d_k = d_model, num_heads, d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)
        self.fused = False   # True: torch's F.scaled_dot_product_attention (flash/memory-efficient kernels), no weights
        self.causal = causal  # True: each query sees only keys up to its own position (the last T of S keys)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, h, L, d_k)."""
        B, L, _ = x.shape
        x = x.view(B, L, self.num_heads, self.d_k)              # (B, L, h, d_k)
        return x.transpose(1, 2)                                # (B, h, L, d_k)

    def keys_values(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected, split keys and values: (B, S, D) each -> (B, h, S, d_k) each."""
        return self.split(self.W_k(key)), self.split(self.W_v(value))      # (B, h, S, d_k) each

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None,
                value: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None):
        """query (B, T, D), key/value (B, S, D) -> (B, T, D), weights (B, h, T, S).

        `kv`: keys and values already projected and split, (B, h, S, d_k) each."""
        if query.ndim != 3 or query.shape[-1] != self.d_model:
            raise ValueError(f"query must be (batch, length, {self.d_model}), "
                             f"got {tuple(query.shape)}")
        B, T, _ = query.shape
        q = self.split(self.W_q(query))                         # (B, h, T, d_k)
        if kv is None:
            kv = self.keys_values(key, value)
        k, v = kv                                         # (B, h, S, d_k) each
        S = k.shape[2]
        if self.fused:                           # same maths, one fused kernel
            p = self.drop.p if self.training else 0.0
            if self.causal and attn_mask is None and S == T:  # Flash may run
                out = F.scaled_dot_product_attention(
                    q, k, v, dropout_p=p, is_causal=True)       # (B, h, T, d_k)
            else:                        # T == 1 after a cache needs no mask
                one = self.causal and attn_mask is None and T == 1
                mask = None if one else self._mask(attn_mask, T, S, q.device)
                out = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask, dropout_p=p)       # (B, h, T, d_k)
            weights = None
        else:
            mask = self._mask(attn_mask, T, S, q.device)  # to (B, h, T, S)
            out, weights = scaled_dot_product_attention(
                q, k, v, mask, self.drop)     # (B, h, T, d_k), (B, h, T, S)
        out = out.transpose(1, 2)                               # (B, T, h, d_k)
        out = out.reshape(B, T, self.d_model)       # (B, T, D): heads concat
        return self.W_o(out), weights               # (B, T, D), (B, h, T, S)


    def _mask(self, attn_mask: torch.Tensor | None, T: int, S: int, device) -> torch.Tensor | None:
        """`attn_mask`, and (when causal) the causal (T, S) mask of the last T of S positions; True = may attend."""
        if not self.causal:
            return attn_mask
        causal = causal_mask(T, device, S)                                 # (T, S)
        return causal if attn_mask is None else attn_mask & causal         # broadcasts to (B, h, T, S)


def library_twin(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    """A `torch.nn.MultiheadAttention` holding the same weights (its in_proj stacks W_q, W_k, W_v as (3D, D))."""
    lib = nn.MultiheadAttention(mha.d_model, mha.num_heads, batch_first=True)
    with torch.no_grad():
        lib.in_proj_weight.copy_(torch.cat([mha.W_q.weight, mha.W_k.weight, mha.W_v.weight]))   # (3D, D)
        lib.in_proj_bias.copy_(torch.cat([mha.W_q.bias, mha.W_k.bias, mha.W_v.bias]))           # (3D,)
        lib.out_proj.weight.copy_(mha.W_o.weight)                          # (D, D)
        lib.out_proj.bias.copy_(mha.W_o.bias)                              # (D,)
    return lib.eval()


def sinusoidal_encoding(max_len: int, d_model: int) -> np.ndarray:
    """PE[pos, 2i] = sin(pos / 10000^(2i/D)), PE[pos, 2i+1] = cos(pos / 10000^(2i/D)) -> (max_len, D) float32."""
    if d_model % 2:
        raise ValueError(f"sinusoidal positions need an even d_model, got {d_model}")
    pos = np.arange(max_len)[:, None]                                      # (L, 1)
    freq = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)                # (D/2,)
    pe = np.zeros((max_len, d_model))                                      # (L, D)
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * freq), np.cos(pos * freq)      # (L, D/2) each
    return pe.astype(np.float32)


class PositionalEncoding(nn.Module):
    """Adds position vectors to embeddings: fixed sinusoids (Vaswani et al.) or a learned table."""

    def __init__(self, d_model: int, max_len: int = 256, learned: bool = False, std: float = 1.0):
        super().__init__()
        self.max_len, self.learned = max_len, learned
        if learned:   # std 1: the scale of token embeddings multiplied by sqrt(D), so positions are seen
            self.table = nn.Parameter(torch.randn(max_len, d_model) * std)      # (L, D), trained
        else:
            self.register_buffer("table", torch.from_numpy(sinusoidal_encoding(max_len, d_model)),
                                 persistent=False)                              # (L, D), fixed

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """x (B, L, D) at positions start .. start+L-1 -> x + PE (B, L, D)."""
        if start + x.shape[1] > self.max_len:
            raise ValueError(f"position {start + x.shape[1] - 1} is beyond max_len={self.max_len}: "
                             "build the model with a larger max_len or shorten the input")
        return x + self.table[start:start + x.shape[1]]                    # (B, L, D) + (L, D)


class FeedForward(nn.Module):
    """Position-wise feed-forward network: Linear(D, F) -> ReLU -> dropout -> Linear(F, D)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.lin1, self.lin2, self.drop = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, D), the same network at every position."""
        return self.lin2(self.drop(F.relu(self.lin1(x))))                  # (B, L, F) -> (B, L, D)


class EncoderLayer(nn.Module):
    """Pre-norm self-attention block and feed-forward block, each wrapped in a residual connection."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, src_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, S, D), src_mask (B, 1, 1, S) -> x (B, S, D), self-attention weights (B, h, S, S)."""
        y = self.norm1(x)                                                  # (B, S, D)
        a, weights = self.self_attn(y, y, y, src_mask)                     # (B, S, D), (B, h, S, S)
        x = x + self.drop(a)                                               # (B, S, D)
        return x + self.drop(self.ff(self.norm2(x))), weights              # (B, S, D)


class DecoderLayer(nn.Module):
    """Pre-norm masked self-attention, cross-attention to the encoder output, feed-forward; residuals around each."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout, causal=True)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor,
                cross_kv: tuple[torch.Tensor, torch.Tensor],
                src_mask: torch.Tensor | None,
                tgt_mask: torch.Tensor | None = None,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x (B, T, D) -> x (B, T, D), weights, new cache (B, h, t+T, d_k) x 2.

        `cross_kv`: the encoder output's projected keys and values,
        (B, h, S, d_k) each; `cache`: the keys and values of the t earlier
        target positions (None = none), to which this call's T positions are
        appended. Weights: self (B, h, T, t+T), cross (B, h, T, S). The
        self-attention is causal by construction; `tgt_mask` (True = may
        attend) is an extra mask on top.
        """
        y = self.norm1(x)                                            # (B, T, D)
        k, v = self.self_attn.keys_values(y, y)       # (B, h, T, d_k) each
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)             # (B, h, t+T, d_k)
            v = torch.cat([cache[1], v], dim=2)             # (B, h, t+T, d_k)
        a, self_w = self.self_attn(y, attn_mask=tgt_mask, kv=(k, v))  # (B, T, D)
        x = x + self.drop(a)                                         # (B, T, D)
        a, cross_w = self.cross_attn(self.norm2(x), attn_mask=src_mask,
                                     kv=cross_kv)                    # (B, T, D)
        x = x + self.drop(a)                                         # (B, T, D)
        x = x + self.drop(self.ff(self.norm3(x)))                    # (B, T, D)
        return x, (self_w, cross_w), (k, v)


class _EmbeddedStack(nn.Module):
    """What Encoder and Decoder share: embedding * sqrt(D) + positions, N layers of `layer`, a final LayerNorm."""

    def __init__(self, layer: type, vocab_size: int, d_model: int, num_heads: int, num_layers: int, d_ff: int,
                 dropout: float, max_len: int, learned_positions: bool):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)            # unit variance after * sqrt(D)
        self.pos = PositionalEncoding(d_model, max_len, learned_positions)
        self.layers = nn.ModuleList(layer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.scale = math.sqrt(d_model)

    def embed_tokens(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Ids (B, L) at positions start .. start+L-1 -> dropout(embedding * sqrt(D) + PE), (B, L, D)."""
        return self.drop(self.pos(self.embed(ids) * self.scale, start=start))   # (B, L, D)


class Encoder(_EmbeddedStack):
    """Embedding * sqrt(D) + positions, N encoder layers, final LayerNorm."""

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, num_layers: int, d_ff: int,
                 dropout: float = 0.0, max_len: int = 256, learned_positions: bool = False):
        super().__init__(EncoderLayer, vocab_size, d_model, num_heads, num_layers, d_ff, dropout, max_len,
                         learned_positions)

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Source ids (B, S), mask (B, 1, 1, S) -> encoder output (B, S, D), per-layer weights (B, h, S, S)."""
        x = self.embed_tokens(src)                                         # (B, S, D)
        weights = []
        for layer in self.layers:
            x, w = layer(x, src_mask)                                      # (B, S, D), (B, h, S, S)
            weights.append(w)
        return self.norm(x), weights                                       # (B, S, D)


class Decoder(_EmbeddedStack):
    """Embedding * sqrt(D) + positions, N decoder layers, final LayerNorm, output = embedding matrix transposed."""

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, num_layers: int, d_ff: int,
                 dropout: float = 0.0, max_len: int = 256, learned_positions: bool = False):
        super().__init__(DecoderLayer, vocab_size, d_model, num_heads, num_layers, d_ff, dropout, max_len,
                         learned_positions)

    def cross_keys_values(self, memory: torch.Tensor) -> tuple:
        """Each layer's cross-attention keys and values of the encoder output (B, S, D) -> ((B, h, S, d_k) x 2) per layer."""
        return tuple(layer.cross_attn.keys_values(memory, memory) for layer in self.layers)

    def forward(self, tgt_in: torch.Tensor, cross_kv: tuple, src_mask: torch.Tensor, cache: tuple | None = None):
        """Target ids (B, T) after t cached positions -> logits (B, T, V), weights per layer, new cache per layer."""
        t = 0 if cache is None else cache[0][0].shape[2]                   # positions already decoded
        x = self.embed_tokens(tgt_in, start=t)                             # (B, T, D)
        weights, new_cache = [], []
        for i, layer in enumerate(self.layers):
            x, w, kv = layer(x, cross_kv[i], src_mask, None, None if cache is None else cache[i])   # (B, T, D); causal
            weights.append(w)
            new_cache.append(kv)
        logits = self.norm(x) @ self.embed.weight.T                        # (B, T, D) @ (D, V) -> (B, T, V)
        return logits, weights, tuple(new_cache)


class Transformer(nn.Module):
    """The encoder–decoder Transformer; `forward` is the teacher-forced pass used in training."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 128, num_heads: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2, d_ff: int = 256, dropout: float = 0.1,
                 max_len: int = 256, learned_positions: bool = False, pad_id: int = 0):
        super().__init__()
        self.pad_id, self.num_heads, self.d_k = pad_id, num_heads, d_model // num_heads
        self.encoder = Encoder(src_vocab_size, d_model, num_heads, num_encoder_layers, d_ff, dropout, max_len,
                               learned_positions)
        self.decoder = Decoder(tgt_vocab_size, d_model, num_heads, num_decoder_layers, d_ff, dropout, max_len,
                               learned_positions)

    def source_mask(self, src: torch.Tensor) -> torch.Tensor:
        """(B, S) ids -> (B, 1, 1, S) boolean mask of real tokens; rejects bad shapes and all-padding rows."""
        if src.ndim != 2:
            raise ValueError(f"expected source ids of shape (batch, source length), got {tuple(src.shape)}")
        keep = padding_mask(src, self.pad_id)                              # (B, 1, 1, S)
        if bool((~keep.any(dim=-1)).any()):
            raise ValueError("a source row is all padding: every source needs at least one real token")
        return keep

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Logits of every target position given the source (B, S) and the shifted targets (B, T) -> (B, T, V)."""
        return self.attention(src, tgt_in)[0]                              # (B, T, V)

    def attention(self, src: torch.Tensor, tgt_in: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Logits (B, T, V) and every attention map: {"encoder": [(B, h, S, S)], "decoder": [(B, h, T, T)], "cross": [(B, h, T, S)]}."""
        src_mask = self.source_mask(src)                                   # (B, 1, 1, S)
        memory, enc_w = self.encoder(src, src_mask)                        # (B, S, D)
        logits, dec_w, _ = self.decoder(tgt_in, self.decoder.cross_keys_values(memory), src_mask)   # (B, T, V)
        return logits, {"encoder": enc_w, "decoder": [w[0] for w in dec_w], "cross": [w[1] for w in dec_w]}

    # -- the decoding protocol of llmbook.torch.decoding --------------------------------------------------
    def encode(self, src: torch.Tensor) -> dict:
        """Source ids (B, S) -> {"mask": (B, 1, 1, S), "cross": per layer ((B, h, S, d_k), (B, h, S, d_k))}."""
        src_mask = self.source_mask(src)                                   # (B, 1, 1, S)
        memory, _ = self.encoder(src, src_mask)                            # (B, S, D)
        return {"mask": src_mask, "cross": self.decoder.cross_keys_values(memory)}

    def initial_state(self, memory: dict) -> tuple:
        """Empty key/value caches, one (k, v) pair per decoder layer, each (B, h, 0, d_k)."""
        B = memory["mask"].shape[0]
        empty = memory["cross"][0][0].new_zeros(B, self.num_heads, 0, self.d_k)   # (B, h, 0, d_k)
        return tuple((empty, empty) for _ in self.decoder.layers)

    def step(self, prev: torch.Tensor, memory: dict, state: tuple):
        """One step at t = cache length: tokens (N,) -> logits (N, V), caches.

        The caches grow to (N, h, t+1, d_k)."""
        logits, _, state = self.decoder(prev[:, None], memory["cross"],
                                        memory["mask"], state)    # (N, 1, V)
        return logits[:, 0], state                           # (N, V), caches
