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
