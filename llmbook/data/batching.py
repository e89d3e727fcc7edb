"""Fixed-context windows and mini-batches over token-id streams, as NumPy arrays."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def context_windows(ids: np.ndarray, context: int, start: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (previous `context` ids, next id) for every position t >= start (default: `context`)."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D stream of token ids, got shape {ids.shape}")
    if context < 1:
        raise ValueError(f"context must be >= 1 previous tokens, got {context}")
    start = context if start is None else start
    if start < context:
        raise ValueError(f"start={start} leaves fewer than context={context} previous tokens for the first target")
    if len(ids) <= start:
        raise ValueError(f"stream of {len(ids)} ids is too short for start={start}")
    windows = np.lib.stride_tricks.sliding_window_view(ids, context + 1)  # (N - context, context + 1)
    windows = windows[start - context:]                                   # (N - start, context + 1)
    return windows[:, :-1].copy(), windows[:, -1].copy()                 # (N', context), (N',)


def minibatches(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = True,
                seed: int = 0, limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Mini-batches (x[i], y[i]); a fresh permutation from `seed` when shuffling; at most `limit` batches."""
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    order = np.random.default_rng(seed).permutation(len(x)) if shuffle else np.arange(len(x))
    n = 0
    for i in range(0, len(x), batch_size):
        if limit is not None and n >= limit:
            return
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]
        n += 1


class Batches:
    """Re-iterable mini-batches: each pass (epoch) draws a new shuffle from `seed + epoch`."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = True,
                 seed: int = 0, limit: int | None = None):
        self.x, self.y, self.batch_size, self.shuffle, self.seed, self.limit = x, y, batch_size, shuffle, seed, limit
        self.epoch = 0

    def __iter__(self):
        it = minibatches(self.x, self.y, self.batch_size, self.shuffle, self.seed + self.epoch, self.limit)
        self.epoch += 1
        return it

    def __len__(self) -> int:
        n = -(-len(self.x) // self.batch_size)
        return n if self.limit is None else min(n, self.limit)


def pad_sequences(seqs: list, pad_id: int, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences into (ids, mask), both (B, T); mask is True on real tokens."""
    if not len(seqs):
        raise ValueError("pad_sequences got no sequences")
    longest = max(len(s) for s in seqs)
    T = longest if length is None else length
    if T < longest:
        raise ValueError(f"length={T} is shorter than the longest sequence ({longest} tokens)")
    ids = np.full((len(seqs), T), pad_id, dtype=np.int64)         # (B, T)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
    mask = np.arange(T)[None, :] < np.array([len(s) for s in seqs])[:, None]  # (B, T)
    return ids, mask


def similar_length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Index batches of items of similar length: shuffle, sort within pools of 50 batches, shuffle the batches."""
    order = rng.permutation(len(lengths))
    pool = 50 * batch_size
    batches = []
    for i in range(0, len(order), pool):
        chunk = order[i:i + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[j] for j in rng.permutation(len(batches))]


def teacher_forcing(targets: list, bos_id: int, eos_id: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoder inputs <bos> y_1..y_n and targets y_1..y_n <eos>, padded: the shift that teacher forcing needs."""
    dec_in, _ = pad_sequences([[bos_id, *t] for t in targets], pad_id)    # (B, T)
    dec_out, _ = pad_sequences([[*t, eos_id] for t in targets], pad_id)   # (B, T)
    return dec_in, dec_out


def next_token_windows(ids: np.ndarray, length: int, stride: int | None = None, burn_in: int = 0,
                       offset: int = 0, ignore_index: int = -100) -> tuple[np.ndarray, np.ndarray]:
    """Windows (x, y) of `length` ids and their next ids, y = x shifted by one, for sequence models.

    Window i starts at offset + i * stride (default stride: `length`, so windows do not overlap).
    The first `burn_in` targets of every window are set to `ignore_index`: the model reads them as
    context but they are not scored. With stride = length - burn_in every target from position
    offset + burn_in + 1 on is scored exactly once, each with at least `burn_in` previous tokens.
    Returns x (N, length) and y (N, length), int64.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D stream of token ids, got shape {ids.shape}")
    stride = length if stride is None else stride
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be >= 1, got length={length}, stride={stride}")
    if not 0 <= burn_in < length:
        raise ValueError(f"burn_in must be in [0, length={length}), got {burn_in}")
    if stride > length - burn_in:
        raise ValueError(f"stride={stride} > length - burn_in = {length - burn_in} would skip targets")
    n = (len(ids) - 1 - offset - length) // stride + 1
    if offset < 0 or n < 1:
        raise ValueError(f"a stream of {len(ids)} ids is too short for one window of {length} (+1) after offset {offset}")
    starts = offset + stride * np.arange(n)                              # (N,)
    idx = starts[:, None] + np.arange(length)[None, :]                   # (N, length)
    x, y = ids[idx], ids[idx + 1]                                        # (N, length) each
    y[:, :burn_in] = ignore_index
    return x, y
