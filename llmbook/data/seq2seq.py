"""Tokenisers and padded teacher-forcing batches for sequence-to-sequence models (both frameworks).

Every tokeniser here numbers its specials the same way: 0 <pad>, 1 <unk>, 2 <bos>, 3 <eos>, so a
model, its loss (`ignore_index=PAD_ID`) and its decoder agree whatever the data.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .batching import pad_sequences, similar_length_batches
from .vocab import BOS, EOS, PAD, UNK, Vocab

SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
_SPM_HINT = ("SubwordTokenizer (SentencePiece BPE) needs the PyPI package `sentencepiece` "
             "(`pip install sentencepiece`; `make setup` installs it)")


class CharTokenizer:
    """Characters as tokens, over a `Vocab` with the four specials (for the dates corpus)."""

    def __init__(self, vocab: Vocab):
        if vocab.itos[:4] != list(SPECIALS):
            raise ValueError(f"the vocabulary must start with {SPECIALS}, got {vocab.itos[:4]}")
        self.vocab = vocab

    @classmethod
    def build(cls, texts: Iterable[str]) -> "CharTokenizer":
        """Every character of `texts` (most frequent first), after the specials."""
        return cls(Vocab.build((ch for t in texts for ch in t), specials=SPECIALS))

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> np.ndarray:
        """Ids of the characters of `text` (no <bos>/<eos>)."""
        return self.vocab.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`, specials dropped."""
        return "".join(t for t in self.vocab.decode(ids) if t not in SPECIALS)

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """One string per id, for display."""
        return self.vocab.decode(ids)


class SubwordTokenizer:
    """A SentencePiece BPE model trained on the training split only (the `sentencepiece` library)."""

    def __init__(self, model_proto: bytes):
        try:
            import sentencepiece as spm
        except ImportError as e:
            raise ImportError(_SPM_HINT) from e
        self.model_proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        specials = (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id())
        if specials != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(f"a SentencePiece model with pad/unk/bos/eos ids {specials}; expected 0, 1, 2, 3")

    @classmethod
    def train(cls, sentences: Sequence[str], vocab_size: int) -> "SubwordTokenizer":
        """Learn `vocab_size` BPE pieces (specials included) from `sentences`, deterministically, offline."""
        try:
            import sentencepiece as spm
        except ImportError as e:
            raise ImportError(_SPM_HINT) from e
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=out, vocab_size=vocab_size, model_type="bpe",
            character_coverage=1.0, normalization_rule_name="identity", pad_id=PAD_ID, unk_id=UNK_ID,
            bos_id=BOS_ID, eos_id=EOS_ID, num_threads=1, minloglevel=2)
        return cls(out.getvalue())

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> np.ndarray:
        """Piece ids of `text` (no <bos>/<eos>)."""
        return np.asarray(self.sp.encode(text), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`, specials dropped."""
        return self.sp.decode([int(i) for i in ids if int(i) > EOS_ID])

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """One piece per id, for display ('▁' marks the start of a word)."""
        return [self.sp.id_to_piece(int(i)) for i in ids]

    @property
    def checksum(self) -> str:
        """SHA-256 (first 16 hex digits) of the pieces in id order: changes if the vocabulary changes."""
        return hashlib.sha256("\n".join(self.sp.id_to_piece(i) for i in range(len(self))).encode()).hexdigest()[:16]


def save_tokenizers(path: str | Path, **tokenizers: SubwordTokenizer) -> Path:
    """Write SubwordTokenizers (by name, e.g. en=..., de=...) into one .npz."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{k: np.frombuffer(t.model_proto, dtype=np.uint8) for k, t in tokenizers.items()})
    return path


def load_tokenizers(path: str | Path) -> dict[str, SubwordTokenizer]:
    """The SubwordTokenizers written by `save_tokenizers`, by name."""
    with np.load(path) as z:
        return {k: SubwordTokenizer(z[k].tobytes()) for k in z.files}


class Seq2SeqBatches:
    """Re-iterable padded batches ((source ids, decoder inputs), targets) for `fit`, as NumPy arrays.

    Targets are y_1 .. y_n <eos>; decoder inputs are the targets shifted right, <bos> y_1 .. y_n
    (teacher forcing). `shift=False` feeds the unshifted targets instead, which is seed 002's bug:
    the decoder then sees the very token it must predict. Batches hold sentences of similar length
    (sorted within pools of 50 batches), padded with PAD_ID to the longest in the batch; each pass
    (epoch) draws a new shuffle from `seed + epoch`.
    """

    def __init__(self, sources: Sequence[np.ndarray], targets: Sequence[np.ndarray], batch_size: int,
                 shuffle: bool = True, seed: int = 0, limit: int | None = None, shift: bool = True):
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
        if not len(sources):
            raise ValueError("Seq2SeqBatches got no pairs")
        self.sources, self.targets = list(sources), list(targets)
        self.batch_size, self.shuffle, self.seed, self.limit, self.shift = batch_size, shuffle, seed, limit, shift
        self.epoch = 0

    def __len__(self) -> int:
        n = -(-len(self.sources) // self.batch_size)
        return n if self.limit is None else min(n, self.limit)

    def _batches(self, seed: int) -> list[np.ndarray]:
        n, bs = len(self.sources), self.batch_size
        if not self.shuffle:
            return [np.arange(i, min(i + bs, n)) for i in range(0, n, bs)]
        lengths = np.array([len(s) for s in self.sources])    # pools of 50 batches, sorted by source length
        return similar_length_batches(lengths, bs, np.random.default_rng(seed))

    def __iter__(self) -> Iterator[tuple[tuple[np.ndarray, np.ndarray], np.ndarray]]:
        batches = self._batches(self.seed + self.epoch)
        self.epoch += 1
        for idx in batches[:self.limit]:
            src, _ = pad_sequences([self.sources[i] for i in idx], PAD_ID)                    # (B, S)
            dec_out, _ = pad_sequences([[*self.targets[i], EOS_ID] for i in idx], PAD_ID)     # (B, T)
            if self.shift:
                dec_in, _ = pad_sequences([[BOS_ID, *self.targets[i]] for i in idx], PAD_ID)  # (B, T)
            else:
                dec_in = dec_out.copy()                                                      # (B, T) seed 002
            yield (src, dec_in), dec_out


def encode_pairs(pairs: Sequence[tuple[str, str]], src_tok, tgt_tok) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Token ids of every (source, target) pair."""
    return [src_tok.encode(s) for s, _ in pairs], [tgt_tok.encode(t) for _, t in pairs]
