"""Token vocabularies with reserved special tokens, shared by both frameworks."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

UNK, PAD, BOS, EOS = "<unk>", "<pad>", "<bos>", "<eos>"

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*|'[a-z]+|[.,;:!?]|\n")


def word_tokens(text: str) -> list[str]:
    """Lower-cased words, apostrophe contractions kept ("'tis", "o'er"), punctuation and newlines as tokens."""
    return _WORD.findall(text.lower())


def char_tokens(text: str) -> list[str]:
    """One token per character."""
    return list(text)


class Vocab:
    """Bidirectional map between tokens and integer ids; unknown tokens map to `<unk>`."""

    def __init__(self, tokens: Sequence[str], specials: Sequence[str] = (UNK,)):
        if UNK not in specials:
            raise ValueError(f"specials must include {UNK!r} so unseen tokens have an id; got {list(specials)}")
        self.itos: list[str] = list(dict.fromkeys([*specials, *tokens]))
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        self.unk_id = self.stoi[UNK]

    @classmethod
    def build(cls, tokens: Iterable[str], min_count: int = 1, max_size: int | None = None,
              specials: Sequence[str] = (UNK,)) -> "Vocab":
        """Vocabulary of the tokens seen at least `min_count` times, most frequent first (ties by token)."""
        counts = Counter(tokens)
        kept = sorted((t for t, c in counts.items() if c >= min_count and t not in specials),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max(0, max_size - len(specials))]
        return cls(kept, specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Ids of `tokens` as an int64 array, `<unk>` for tokens outside the vocabulary."""
        get, unk = self.stoi.get, self.unk_id
        return np.fromiter((get(t, unk) for t in tokens), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of `ids`."""
        return [self.itos[int(i)] for i in ids]

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.itos[:6]})"


def detokenize(words: Sequence[str]) -> str:
    """Join word tokens into readable text (no space before punctuation or after a newline)."""
    out = ""
    for w in words:
        if w in ".,;:!?\n" or not out or out.endswith("\n"):
            out += w
        else:
            out += " " + w
    return out
