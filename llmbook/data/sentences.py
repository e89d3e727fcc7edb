"""Short real English sentences for the sentence VAE (appendix): the Bible corpus's English side, split at sentence ends.

Each English verse of `llmbook.data.bible` (World English Bible) is split after '.', '?' or '!';
the pieces of `min_words` to `max_words` words are the sentences (a piece may end with a comma
where a sentence runs over a verse boundary). The corpus's own split by whole chapters is kept, so
no test sentence comes from a training chapter. Tokens are lower-cased words and punctuation
(`word_tokens`); ids 0-3 are <pad>, <unk>, <bos>, <eos>.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .batching import pad_sequences, teacher_forcing
from .bible import load_bible_verses
from .vocab import BOS, EOS, PAD, UNK, Vocab, word_tokens

SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def short_sentences(split: str, min_words: int = 4, max_words: int = 15) -> list[str]:
    """The English sentences of one split ('train', 'validation', 'test') with min_words..max_words words."""
    pieces = (p for v in load_bible_verses(split, max_words=None) for p in _SENTENCE_END.split(v.en.strip()))
    return [p for p in pieces if min_words <= len(p.split()) <= max_words]


def sentence_vocab(sentences: Sequence[str], min_count: int = 3) -> Vocab:
    """Vocabulary of the word tokens seen at least `min_count` times, after <pad> <unk> <bos> <eos>."""
    return Vocab.build((t for s in sentences for t in word_tokens(s)), min_count=min_count, specials=SPECIALS)


def encode_sentences(sentences: Sequence[str], vocab: Vocab) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encoder inputs y (N, L), decoder inputs <bos> y (N, L+1), targets y <eos> (N, L+1); padded with 0."""
    ids = [vocab.encode(word_tokens(s)) for s in sentences]
    src, _ = pad_sequences(ids, PAD_ID)                                            # (N, L)
    dec_in, targets = teacher_forcing(ids, BOS_ID, EOS_ID, PAD_ID)                 # (N, L+1) each
    return src, dec_in, targets


def word_dropout(dec_in: np.ndarray, p: float, rng: np.random.Generator, unk_id: int = UNK_ID,
                 keep: Sequence[int] = (PAD_ID, BOS_ID)) -> np.ndarray:
    """Decoder inputs (B, T) with each token outside `keep` replaced by <unk> with probability p (Bowman et al., 2016)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"word dropout rate must be in [0, 1], got {p}")
    drop = (rng.random(dec_in.shape) < p) & ~np.isin(dec_in, keep)                 # (B, T)
    return np.where(drop, unk_id, dec_in)                                          # (B, T)


def take(src: np.ndarray, dec_in: np.ndarray, targets: np.ndarray,
         idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows `idx` of the three arrays, with the columns that are padding in every row cut off."""
    s, d, t = src[idx], dec_in[idx], targets[idx]                                  # (B, L), (B, L+1), (B, L+1)
    n = int((s != PAD_ID).sum(1).max())
    return s[:, :n], d[:, :n + 1], t[:, :n + 1]                                    # (B, n), (B, n+1), (B, n+1)
