"""A decoder-only Transformer language model (GPT; Radford et al., 2018) built from chapter 6's layers.

Shapes: B batch, T tokens in this call, t tokens already in the key/value cache, D model width
(d_model), h heads, d_k = D / h per head, F feed-forward width, V vocabulary, L layers.

    x_0 = E[ids] * sqrt(D) + P[positions]                    token + learned position embeddings
                                                             (E ~ N(0, 1/D), P ~ N(0, pos_std^2):
                                                             both terms start at unit scale)
    x <- x + Drop(MultiHead(LN(x)))   with a causal mask     pre-norm blocks, no cross-attention
    x <- x + Drop(FFN(LN(x)))
    logits = LN(x) E^T                                       output tied to the input embedding

Incremental decoding keeps each layer's keys and values (`KVCache`): a new token's query attends to
the t cached positions and itself, so one step costs O(t) instead of re-running O(t^2) attention.
Its memory is 2 * L * h * d_k * t numbers per sequence (`GPT.cache_bytes`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from llmbook.torch import sampling
from llmbook.torch.transformer import EncoderLayer, PositionalEncoding


def offset_causal_mask(T: int, t: int, device=None) -> torch.Tensor:
    """(T, t+T) boolean: query i (at position t+i) may attend to keys j <= t+i."""
    return torch.ones(T, t + T, dtype=torch.bool, device=device).tril(diagonal=t)   # (T, t+T)


class KVCache:
    """Per-layer keys and values of the positions read so far, each (B, h, t, d_k)."""

    def __init__(self, num_layers: int):
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * num_layers

    def __len__(self) -> int:
        """t, the number of cached positions."""
        first = self.layers[0]
        return 0 if first is None else first[0].shape[2]

    def update(self, i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append layer i's new keys/values (B, h, T, d_k) -> all of them (B, h, t+T, d_k) each."""
        old = self.layers[i]
        if old is not None:
            k, v = torch.cat([old[0], k], dim=2), torch.cat([old[1], v], dim=2)   # (B, h, t+T, d_k) each
        self.layers[i] = (k, v)
        return k, v

    def nbytes(self) -> int:
        """Bytes held by the cached key and value tensors."""
        return sum(x.numel() * x.element_size() for kv in self.layers if kv is not None for x in kv)


class Block(EncoderLayer):
    """Chapter 6's pre-norm encoder layer, run causally and with a key/value cache."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cache: KVCache | None = None,
                index: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), mask (T, t+T) -> x (B, T, D), attention weights (B, h, T, t+T)."""
        y = self.norm1(x)                                                  # (B, T, D)
        k, v = self.self_attn.keys_values(y, y)                            # (B, h, T, d_k) each
        if cache is not None:
            k, v = cache.update(index, k, v)                               # (B, h, t+T, d_k) each
        a, w = self.self_attn(y, attn_mask=mask, kv=(k, v))                # (B, T, D), (B, h, T, t+T)
        x = x + self.drop(a)                                               # (B, T, D)
        return x + self.drop(self.ff(self.norm2(x))), w                    # (B, T, D)


class GPT(nn.Module):
    """Decoder-only Transformer LM: embeddings, L causal blocks, final LayerNorm, tied output."""

    def __init__(self, vocab_size: int, d_model: int = 96, num_heads: int = 4, num_layers: int = 3,
                 d_ff: int = 384, max_len: int = 256, dropout: float = 0.1, pos_std: float = 1.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}: "
                             "choose d_model = h * d_k")
        self.vocab_size, self.d_model, self.num_heads = vocab_size, d_model, num_heads
        self.num_layers, self.d_k, self.max_len = num_layers, d_model // num_heads, max_len
        self.hparams = dict(vocab_size=vocab_size, d_model=d_model, num_heads=num_heads,   # constructor arguments
                            num_layers=num_layers, d_ff=d_ff, max_len=max_len, dropout=dropout,
                            pos_std=pos_std)
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)            # unit variance after * sqrt(D)
        self.pos = PositionalEncoding(d_model, max_len, learned=True, std=pos_std)
        self.layers = nn.ModuleList(Block(d_model, num_heads, d_ff, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.scale = math.sqrt(d_model)

    def new_cache(self) -> KVCache:
        """An empty key/value cache for this model."""
        return KVCache(self.num_layers)

    def cache_bytes(self, T: int, batch: int = 1, bytes_per_number: int = 4) -> int:
        """Memory of the cache after T positions: 2 * L * h * d_k * T * bytes, per sequence."""
        return 2 * self.num_layers * self.num_heads * self.d_k * T * bytes_per_number * batch

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None,
                return_attention: bool = False):
        """Ids (B, T) after len(cache) cached positions -> logits (B, T, V) (and weights per layer)."""
        if ids.ndim != 2:
            raise ValueError(f"expected token ids of shape (batch, length), got {tuple(ids.shape)}")
        t = 0 if cache is None else len(cache)
        T = ids.shape[1]
        if t + T > self.max_len:
            raise ValueError(f"{t + T} positions exceed max_len={self.max_len}: shorten the "
                             "context (generate() slides its window) or build a larger model")
        x = self.drop(self.pos(self.embed(ids) * self.scale, start=t))     # (B, T, D)
        mask = offset_causal_mask(T, t, ids.device)                        # (T, t+T)
        weights = []
        for i, layer in enumerate(self.layers):
            x, w = layer(x, mask, cache, i)                                # (B, T, D), (B, h, T, t+T)
            weights.append(w)
        logits = self.norm(x) @ self.embed.weight.T                        # (B, T, D) @ (D, V) -> (B, T, V)
        return (logits, weights) if return_attention else logits

    def step(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One incremental step: the newest tokens (B,) -> next-token logits (B, V); extends `cache`."""
        return self(ids[:, None], cache=cache)[:, 0]                             # (B, 1, V) -> (B, V)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int = 0,
                 use_cache: bool = True) -> torch.Tensor:
        """Prompt ids (B, T0) -> (B, T0 + max_new_tokens); temperature 0 is greedy.

        The context is a window: when it would pass max_len, it restarts from the last max_len // 2
        tokens (the cache is refilled from them), so cached and uncached decoding agree exactly.
        """
        if prompt.ndim != 2 or prompt.shape[1] < 1:
            raise ValueError(f"prompt must be (batch, length >= 1) ids, got {tuple(prompt.shape)}")
        was_training = self.training
        self.eval()
        gen = torch.Generator(device=prompt.device).manual_seed(seed)
        seq, start = prompt, max(0, prompt.shape[1] - self.max_len)        # (B, T0)
        cache = None
        for _ in range(max_new_tokens):
            if seq.shape[1] - start > self.max_len:                        # window full: restart
                start, cache = seq.shape[1] - self.max_len // 2, None
            if not use_cache:
                logits = self(seq[:, start:])[:, -1]                       # (B, V)
            elif cache is None:
                cache = self.new_cache()
                logits = self(seq[:, start:], cache=cache)[:, -1]                # (B, V): prefill
            else:
                logits = self.step(seq[:, -1], cache)                      # (B, V)
            nxt = sampling.sample(logits, temperature, top_k, top_p, generator=gen)   # (B,)
            seq = torch.cat([seq, nxt[:, None]], dim=1)                    # (B, T+1)
        self.train(was_training)
        return seq


class GPTTranslator(nn.Module):
    """Translation as next-token prediction: one GPT reads `source <bos> target`, scored on the target only.

    The joint vocabulary holds the source tokens, then the target tokens (target id y is joint id
    offset + y); the target's <bos> marks where the translation starts. Padded sources keep their
    padding out of attention, and every row numbers its positions from its own first token, so a
    batch computes what each sentence alone would. The output layer is the target rows of the tied
    embedding: logits (B, T, V_tgt), as an encoder-decoder's, and the decoding protocol of
    `llmbook.torch.decoding` (encode = read the source into the key/value cache).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 96, num_heads: int = 4,
                 num_layers: int = 6, d_ff: int = 224, max_len: int = 256, dropout: float = 0.1, pad_id: int = 0,
                 pos_std: float = 1.0):
        super().__init__()
        self.offset, self.pad_id = src_vocab_size, pad_id
        self.gpt = GPT(src_vocab_size + tgt_vocab_size, d_model, num_heads, num_layers, d_ff, max_len, dropout, pos_std)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Logits of every target position given the source (B, S) and the shifted targets (B, T) -> (B, T, V_tgt)."""
        memory = self.encode(src)
        return self.read_targets(tgt_in, memory, self.initial_state(memory))[0]   # (B, T, V_tgt)

    def _blocks(self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Joint ids (B, T) at positions (B, T) through every block, extending `cache` -> (B, T, D)."""
        g = self.gpt
        if mask.shape[-1] > g.max_len:
            raise ValueError(f"source and target take {mask.shape[-1]} positions, more than max_len={g.max_len}: "
                             "shorten the sentences or build the model with a larger max_len")
        x = g.drop(g.embed(ids) * g.scale + g.pos.table[positions])         # (B, T, D)
        for i, layer in enumerate(g.layers):
            x, _ = layer(x, mask, cache, i)                                 # (B, T, D)
        return x

    # -- the decoding protocol of llmbook.torch.decoding --------------------------------------------------
    def encode(self, src: torch.Tensor) -> dict:
        """Source ids (B, S) -> {"kv": per layer (k, v) (B, h, S, d_k), "keep": (B, 1, 1, S), "length": (B,)}."""
        if src.ndim != 2:
            raise ValueError(f"expected source ids of shape (batch, source length), got {tuple(src.shape)}")
        keep = src != self.pad_id                                           # (B, S)
        if bool((~keep[:, 0]).any()) or bool((keep[:, 1:] & ~keep[:, :-1]).any()):
            raise ValueError("every source needs a first real token and its padding after its tokens "
                             "(pad on the right, as llmbook.data.pad_sequences does)")
        B, S = src.shape
        positions = torch.arange(S, device=src.device).expand(B, S)        # (B, S)
        mask = offset_causal_mask(S, 0, src.device) & keep[:, None, None, :]   # (B, 1, S, S)
        cache = self.gpt.new_cache()
        self._blocks(src, positions, mask, cache)
        return {"kv": tuple(cache.layers), "keep": keep[:, None, None, :], "length": keep.sum(dim=1)}

    def initial_state(self, memory: dict) -> tuple:
        """Empty key/value caches of the target, one (k, v) pair per layer, each (B, h, 0, d_k)."""
        empty = memory["kv"][0][0][:, :, :0]                                # (B, h, 0, d_k)
        return tuple((empty, empty) for _ in self.gpt.layers)

    def read_targets(self, tgt: torch.Tensor, memory: dict, state: tuple) -> tuple[torch.Tensor, tuple]:
        """Target ids (B, T) after the t in `state` -> logits (B, T, V_tgt), target caches (B, h, t+T, d_k)."""
        B, T = tgt.shape
        S, t = memory["keep"].shape[-1], state[0][0].shape[2]
        cache = self.gpt.new_cache()
        cache.layers = [(torch.cat([mk, k], dim=2), torch.cat([mv, v], dim=2))   # (B, h, S+t, d_k) each
                        for (mk, mv), (k, v) in zip(memory["kv"], state)]
        positions = memory["length"][:, None] + t + torch.arange(T, device=tgt.device)   # (B, T)
        causal = offset_causal_mask(T, t, tgt.device).expand(B, 1, T, t + T)   # (B, 1, T, t+T)
        mask = torch.cat([memory["keep"].expand(B, 1, T, S), causal], dim=-1)   # (B, 1, T, S+t+T)
        x = self._blocks(tgt + self.offset, positions, mask, cache)         # (B, T, D)
        logits = self.gpt.norm(x) @ self.gpt.embed.weight[self.offset:].T   # (B, T, D) @ (D, V_tgt) -> (B, T, V_tgt)
        return logits, tuple((k[:, :, S:], v[:, :, S:]) for k, v in cache.layers)

    def step(self, prev: torch.Tensor, memory: dict, state: tuple) -> tuple[torch.Tensor, tuple]:
        """One incremental step: target tokens (N,) -> logits (N, V_tgt), target caches (N, h, t+1, d_k)."""
        logits, state = self.read_targets(prev[:, None], memory, state)     # (N, 1, V_tgt)
        return logits[:, 0], state                                          # (N, V_tgt), caches
