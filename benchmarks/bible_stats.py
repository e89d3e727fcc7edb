"""How learnable is each translation corpus? The EN->ES Bible verses against the Ding EN->DE sentences.

For each corpus (the default splits the chapters load: Bible verses of <= 30 words per side, Ding's
fixed split) prints and writes results/bible_stats.json:
  - pairs per split;
  - words per side (whitespace-separated): mean, median, max;
  - the share of word types that occur once in the whole corpus (lower-cased words, `word_tokens`);
  - the share of held-out (validation + test) word tokens never seen in the training split;
  - SentencePiece pieces per word on held-out text, for the corpus's tokenisers (llmbook/checkpoints/enes_spm.npz,
    benchmarks/data/ende_spm.npz: both trained on their training split only).
Ding is read by benchmarks/ding.py, from the Debian package dict-de-en, which `make setup` does not install (no
other part of the course uses it): `sudo apt-get install dict-de-en` first.

    python benchmarks/bible_stats.py      # ~15 s on 2 CPU cores
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from pathlib import Path

import llmbook
from ding import SPM_FILE, en_de
from llmbook.data import en_es
from llmbook.data.seq2seq import load_tokenizers
from llmbook.data.vocab import word_tokens

RESULTS = Path(__file__).resolve().parent / "results" / "bible_stats.json"
CORPORA = {"EN->ES Bible": (en_es, llmbook.checkpoint_path("enes_spm.npz"), ("en", "es")),
           "EN->DE Ding": (en_de, SPM_FILE, ("en", "de"))}


def words(text: str) -> list[str]:
    """Lower-cased words, punctuation left out."""
    return [t for t in word_tokens(text) if any(c.isalnum() for c in t)]


def side_stats(train: list[str], held_out: list[str], tokenizer) -> dict:
    """Length, singleton, unseen-word and pieces-per-word statistics of one language side."""
    lengths = [len(t.split()) for t in train + held_out]
    types = Counter(w for t in train + held_out for w in words(t))
    seen = {w for t in train for w in words(t)}
    held = [w for t in held_out for w in words(t)]
    pieces = sum(len(tokenizer.encode(t)) for t in held_out)
    return dict(words_mean=round(statistics.mean(lengths), 2), words_median=statistics.median(lengths),
                words_max=max(lengths), types=len(types),
                singleton_type_share=round(sum(c == 1 for c in types.values()) / len(types), 4),
                held_out_unseen_token_share=round(sum(w not in seen for w in held) / len(held), 4),
                pieces_per_word=round(pieces / sum(len(t.split()) for t in held_out), 3),
                vocab_size=len(tokenizer))


def corpus_stats(load, spm_file: Path, langs: tuple[str, str]) -> dict:
    """Pairs per split, split checksum and both sides' statistics of one corpus."""
    data = load()
    toks = load_tokenizers(spm_file)
    held_out = data.validation + data.test
    row = dict(pairs={s: len(getattr(data, s)) for s in ("train", "validation", "test")}, checksum=data.checksum)
    for i, lang in enumerate(langs):
        row[lang] = side_stats([p[i] for p in data.train], [p[i] for p in held_out], toks[lang])
    return row


def main() -> None:
    try:
        results = {name: corpus_stats(*spec) for name, spec in CORPORA.items()}
    except FileNotFoundError as e:            # above all: dict-de-en not installed (benchmarks/ding.py says how)
        sys.exit(f"bible_stats.py: {e}")
    print(f"{'corpus':13} {'side':4} {'pairs tr/va/te':>18} {'words mean/med/max':>19} {'once':>6} "
          f"{'unseen':>7} {'pieces/w':>8}")
    for name, row in results.items():
        p = row["pairs"]
        for lang in (k for k in row if k not in ("pairs", "checksum")):
            s = row[lang]
            print(f"{name:13} {lang:4} {p['train']:>8}/{p['validation']}/{p['test']} "
                  f"{s['words_mean']:>9.1f}/{s['words_median']:g}/{s['words_max']:<3} "
                  f"{100 * s['singleton_type_share']:5.1f}% {100 * s['held_out_unseen_token_share']:6.1f}% "
                  f"{s['pieces_per_word']:>8.2f}")
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(RESULTS.parents[2])}")


if __name__ == "__main__":
    main()
