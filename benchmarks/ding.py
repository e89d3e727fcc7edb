"""English -> German example sentences of the Ding dictionary (Debian `dict-de-en`), read for bible_stats.py only.

The course's translation chapters used this corpus before the EN->ES Bible verses (`llmbook.data.en_es`);
`benchmarks/bible_stats.py` still compares the two, and this module is all that remains of it: the pairs, their
fixed split (seed 0) and the SentencePiece models trained on its training split (data/ende_spm.npz).
`make setup` does not install the dictionary: `sudo apt-get install dict-de-en` to run that one script.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from llmbook.data.pairs import ParallelSplits

DICT_DIR = Path("/usr/share/dictd")                 # where dict-de-en puts english-german.{index,dict.dz}
SPM_FILE = Path(__file__).resolve().parent / "data" / "ende_spm.npz"   # 2,000 BPE pieces per side (en, de)
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
# One plain sentence: capital first letter, final . ? or !, no alternatives (; /), no annotations
# ([Br.], {f}, (sth.)), no ellipsis or quotes.
_EN = re.compile(r"^[A-Z][^…;/\[\]{}()|\"„“”]*[.?!]$")
_DE = re.compile(r"^[A-ZÄÖÜ][^…;/\[\]{}()|\"„“”]*[.?!]$")
_INSTALL = ("Only benchmarks/bible_stats.py reads the Ding dictionary, and `make setup` does not install it: "
            "run `sudo apt-get install dict-de-en` (version 1.9-6 gives the committed results/bible_stats.json), "
            "or pass `dict_dir=` pointing at a folder with english-german.index and english-german.dict.dz.")


def _b64(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + _B64[ch]
    return n


def load_en_de_pairs(dict_dir: str | Path = DICT_DIR) -> list[tuple[str, str]]:
    """Every clean one-sentence (English, German) example pair of the dictionary, deduplicated and sorted."""
    dict_dir = Path(dict_dir)
    index, body = dict_dir / "english-german.index", dict_dir / "english-german.dict.dz"
    for path in (index, body):
        if not path.exists():
            raise FileNotFoundError(f"Ding EN->DE dictionary file {path} not found. {_INSTALL}")
    data = gzip.open(body).read()
    pairs, seen = set(), set()
    for line in index.read_text(encoding="utf-8").splitlines():
        _, off, length = line.split("\t")
        key = (_b64(off), _b64(length))
        if key in seen:                      # many headwords point at the same entry
            continue
        seen.add(key)
        entry = data[key[0]:key[0] + key[1]].decode("utf-8").split("\n\n", 1)
        if len(entry) != 2:
            continue
        en, de = entry[0].strip(), " ".join(entry[1].split())
        if "\n" in en or " " not in en or " " not in de or not _EN.match(en) or not _DE.match(de):
            continue
        pairs.add((en, de))
    if not pairs:
        raise ValueError(f"no sentence pairs found in {dict_dir}: is it the dict-de-en dictionary? {_INSTALL}")
    return sorted(pairs)


def split_pairs(pairs: list[tuple[str, str]], n_validation: int = 1000, n_test: int = 1000,
                seed: int = 0) -> ParallelSplits:
    """Fixed split by source sentence: all translations of one English sentence land in the same split."""
    sources = sorted({en for en, _ in pairs})
    if n_validation + n_test >= len(sources):
        raise ValueError(f"asked for {n_validation} + {n_test} held-out sentences from only {len(sources)}")
    order = np.random.default_rng(seed).permutation(len(sources))
    test_src = {sources[i] for i in order[:n_test]}
    val_src = {sources[i] for i in order[n_test:n_test + n_validation]}
    pick = lambda keep: [p for p in pairs if keep(p[0])]  # noqa: E731
    return ParallelSplits(train=pick(lambda en: en not in test_src and en not in val_src),
                          validation=pick(val_src.__contains__), test=pick(test_src.__contains__))


def en_de(dict_dir: str | Path = DICT_DIR, n_validation: int = 1000, n_test: int = 1000) -> ParallelSplits:
    """The Ding EN->DE corpus with the fixed split (seed 0) the course's chapters used."""
    return split_pairs(load_en_de_pairs(dict_dir), n_validation, n_test, seed=0)
