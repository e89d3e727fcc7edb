"""Chapter 1 quality table: n-gram (add-k, Kneser–Ney) vs Bengio NNLM, PyTorch vs TensorFlow, held-out plays.

Trains the NNLM checkpoints that the chapter-1 notebook loads (llmbook/checkpoints/nnlm_{torch,tf}.npz),
then prints validation/test perplexity for every model. `--skip-train` only evaluates the committed
checkpoints. Add-k's k is chosen for each order n on the validation plays from llmbook.ngram.ADD_K_GRID,
as on the chapter-1 page; the test plays are only scored.

    python benchmarks/ch1_quality.py               # train both frameworks (~10 min each on 2 CPU cores)
    python benchmarks/ch1_quality.py --skip-train  # evaluate the committed checkpoints (~1 min)
    python benchmarks/ch1_quality.py --ngrams-only # recompute the n-gram rows of the results file
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402

import llmbook  # noqa: E402
from llmbook.data import Batches, context_windows, tokenized_shakespeare  # noqa: E402
from llmbook.metrics import perplexity  # noqa: E402
from llmbook.ngram import ADD_K_GRID, NGramLM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints"
RESULTS = ROOT / "benchmarks" / "results" / "ch1_quality.json"
# The NNLM recipe (shared by both frameworks). context=4 previous words: a 5-gram-sized window.
NNLM = dict(context=4, embed_dim=64, hidden_dim=128, dropout=0.3)
TRAIN = dict(batch_size=512, lr=2e-3, epochs=6, seed=0)


def best_add_k(lm: NGramLM, corpus, start: int) -> float:
    """The k of ADD_K_GRID with the lowest validation perplexity for this fitted model (the test is not used)."""
    by_k = {}
    for k in ADD_K_GRID:
        lm.smoothing, lm.k = "add-k", k
        by_k[k] = perplexity(lm.nll(corpus.validation, start))
    return min(by_k, key=by_k.get)


def ngram_rows(corpus, start: int) -> list[dict]:
    """Perplexity of add-k (k chosen on validation) and Kneser–Ney n-gram models, n = 1..5, on validation and test."""
    rows = []
    for n in range(1, 6):
        for smoothing in ("add-k", "kneser-ney"):
            t = time.perf_counter()
            lm = NGramLM(n, len(corpus.vocab), smoothing=smoothing).fit(corpus.train)
            name = f"{n}-gram {smoothing}"
            if smoothing == "add-k":
                lm.k = best_add_k(lm, corpus, start)
                name += f" (k={lm.k:g}, chosen on validation)"
            rows.append(dict(model=name, framework="NumPy",
                             params=sum(len(c) for c in lm.counts),
                             val_ppl=perplexity(lm.nll(corpus.validation, start)),
                             test_ppl=perplexity(lm.nll(corpus.test, start)),
                             train_s=time.perf_counter() - t))
    return rows


def nnlm_row(framework: str, corpus, train: bool) -> dict:
    """Train (or load) the NNLM in one framework and evaluate it from its saved float16 checkpoint."""
    config = dict(vocab_size=len(corpus.vocab), **NNLM)
    x, y = context_windows(corpus.train, NNLM["context"])
    xv, yv = context_windows(corpus.validation, NNLM["context"])
    xt, yt = context_windows(corpus.test, NNLM["context"])
    path = CKPT / f"nnlm_{framework}.npz"
    if framework == "torch":
        from llmbook.torch.checkpoint import load_checkpoint, save_checkpoint
        from llmbook.torch.lm import NNLM as Model
        from llmbook.torch.train import evaluate, fit
    else:
        from llmbook.tf.checkpoint import load_checkpoint, save_checkpoint
        from llmbook.tf.lm import NNLM as Model
        from llmbook.tf.train import evaluate, fit
    seconds = None
    if train:
        llmbook.seed(TRAIN["seed"])
        model = Model(**config)
        best, seconds = np.inf, 0.0
        for epoch in range(TRAIN["epochs"]):
            hist = fit(model, Batches(x, y, TRAIN["batch_size"], seed=TRAIN["seed"] + epoch), epochs=1,
                       lr=TRAIN["lr"], valid=Batches(xv, yv, 4096, shuffle=False), progress=False)
            seconds += hist["seconds"][0]
            print(f"  {framework} epoch {epoch + 1}: train {hist['loss'][0]:.3f}  "
                  f"val ppl {np.exp(hist['val_loss'][0]):.1f}  ({hist['seconds'][0]:.0f} s)", flush=True)
            if hist["val_loss"][0] < best:          # keep the best epoch on validation (early stopping)
                best = hist["val_loss"][0]
                save_checkpoint(model, path, **config)
    model = load_checkpoint(Model, path)
    params = int(sum(np.prod(w.shape) for w in (model.parameters() if framework == "torch" else model.weights)))
    return dict(model="NNLM (Bengio 2003)", framework="PyTorch" if framework == "torch" else "TensorFlow",
                params=params,
                val_ppl=perplexity(evaluate(model, Batches(xv, yv, 4096, shuffle=False))),
                test_ppl=perplexity(evaluate(model, Batches(xt, yt, 4096, shuffle=False))),
                train_s=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoints only")
    parser.add_argument("--frameworks", nargs="+", default=["torch", "tf"], choices=["torch", "tf"])
    parser.add_argument("--ngrams-only", action="store_true",
                        help="recompute the n-gram rows and rewrite them in the results file, keeping its NNLM rows")
    args = parser.parse_args()
    corpus = tokenized_shakespeare("word")
    start = NNLM["context"]          # every model scores the same target positions
    rows = ngram_rows(corpus, start)
    if args.ngrams_only:
        saved = json.loads(RESULTS.read_text())
        saved["rows"] = rows + [r for r in saved["rows"] if r["framework"] != "NumPy"]
        RESULTS.write_text(json.dumps(saved, indent=1) + "\n")
        print(f"written the n-gram rows of {RESULTS.relative_to(ROOT)}")
        return
    for fw in args.frameworks:
        rows.append(nnlm_row(fw, corpus, train=not args.skip_train))
    print(f"\nChapter 1 — word-level perplexity on held-out plays (V = {len(corpus.vocab)}, "
          f"{len(corpus.validation) - start} validation / {len(corpus.test) - start} test tokens)\n")
    print("| model | framework | parameters / n-grams | val PPL | test PPL | train s |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        t = "" if r["train_s"] is None else f"{r['train_s']:.0f}"
        print(f"| {r['model']} | {r['framework']} | {r['params']:,} | {r['val_ppl']:.1f} | {r['test_ppl']:.1f} | {t} |")
    if not args.skip_train:
        RESULTS.write_text(json.dumps(dict(nnlm=NNLM, train=TRAIN, rows=rows), indent=1) + "\n")
        print(f"\nwritten {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
