"""Helpers shared by the encoder-decoder tests (chapters 4-6): a padded batch of ids and PyTorch logits as NumPy."""
from __future__ import annotations

import numpy as np
import torch

from llmbook.data.seq2seq import PAD_ID


def padded_batch(sizes: dict, B: int = 5, S: int = 8, T: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random source (B, S) and target (B, T) ids of a model built with `sizes`; rows 1 and 3 of the source padded."""
    rng = np.random.default_rng(seed)
    src = rng.integers(4, sizes["src_vocab_size"], (B, S))               # ids 0-3 are the specials
    src[1, 5:] = PAD_ID
    src[3, 2:] = PAD_ID
    return src, rng.integers(4, sizes["tgt_vocab_size"], (B, T))


def torch_logits(model, src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Teacher-forced logits (B, T, V) of a PyTorch model in eval mode, as NumPy."""
    with torch.no_grad():
        return model.eval()(torch.as_tensor(src), torch.as_tensor(tgt)).numpy()


def attention_inputs(B: int, S: int, hq: int, hk: int, T: int | None = None, seed: int = 0):
    """Random queries (B, [T,] hq), keys (B, S, hk), values (B, S, 3), a mask padding rows 1 and 2."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, hq) if T is None else (B, T, hq)).astype("float32")   # (B, [T,] hq)
    k = rng.normal(size=(B, S, hk)).astype("float32")                            # (B, S, hk)
    v = rng.normal(size=(B, S, 3)).astype("float32")                             # (B, S, 3)
    mask = np.ones((B, S), bool)                                                  # (B, S)
    mask[1, 4:] = False
    mask[2, 1:] = False
    return q, k, v, mask
