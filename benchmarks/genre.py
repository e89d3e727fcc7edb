"""Appendix, encoder-only: which genre (comedy, history, tragedy) a Shakespeare passage comes from.

Passages of 48-96 word tokens from the 36 First Folio plays (llmbook.data.genre), split by whole
plays, two plays of each genre held out for validation and two for test (seed 0). Three classifiers:

- the majority class of the training passages (no model);
- a bag-of-words multinomial naive Bayes (llmbook.bow), alpha chosen on the validation plays;
- `EncoderClassifier` (chapter 6's Transformer encoder, masked mean pooling, a linear head), trained
  with the course's `fit` in each framework, the same recipe: Adam, `epochs` passes, the epoch with
  the best validation accuracy kept (the test plays are never used to choose).

Writes benchmarks/results/genre.json (accuracies with 95 % bootstrap intervals over passages and over
plays, confusion matrices, per-play accuracy, parameters, training seconds, seed) and the
checkpoints llmbook/checkpoints/genre_{torch,tf}.npz (float16) with genre.json beside them, which the
appendix page loads.

    OMP_NUM_THREADS=1 python benchmarks/genre.py                      # both frameworks (~10 min on one thread)
    python benchmarks/genre.py --frameworks torch                     # one framework
    python benchmarks/genre.py --skip-train                           # evaluate the committed checkpoints
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import llmbook  # noqa: E402
from llmbook.bow import MultinomialNB, bag_of_words, bootstrap_accuracy, confusion_matrix  # noqa: E402
from llmbook.data import Batches  # noqa: E402
from llmbook.data.genre import GENRES, encode_passages, genre_passages, genre_vocab  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints"
RESULTS = ROOT / "benchmarks" / "results" / "genre.json"
DATASET = "Shakespeare genres, passages of 48-96 tokens (held-out plays)"
DATA = dict(min_tokens=48, max_tokens=96, seed=0, per_genre=2, min_count=3)
MODEL = dict(d_model=64, num_heads=4, num_layers=2, d_ff=128, dropout=0.3, max_len=96)
TRAIN = dict(batch_size=64, lr=1e-3, clip=1.0, epochs=4, seed=0)
ALPHAS = (0.03, 0.1, 0.3, 1.0, 3.0)
FRAMEWORK_NAMES = {"torch": "PyTorch", "tf": "TensorFlow"}


def prepare():
    """(data, vocab, {split: (ids (N, S), labels (N,), plays)})."""
    data = genre_passages(DATA["min_tokens"], DATA["max_tokens"], DATA["seed"], DATA["per_genre"])
    vocab = genre_vocab(data, DATA["min_count"])
    arrays = {s: (encode_passages(getattr(data, s), vocab, DATA["max_tokens"]), getattr(data, s).labels,
                  np.array(getattr(data, s).plays)) for s in ("train", "validation", "test")}
    return data, vocab, arrays


def scores(labels: np.ndarray, pred: np.ndarray, plays: np.ndarray) -> dict:
    """Accuracy (%), its 95 % bootstrap intervals (passages; whole plays), confusion matrix, per-play accuracy."""
    correct = pred == labels
    lo, hi = bootstrap_accuracy(correct)
    plo, phi = bootstrap_accuracy(correct, groups=plays)
    recall = [float(correct[labels == c].mean()) for c in range(len(GENRES))]
    return dict(accuracy=100 * float(correct.mean()), ci_passages=[100 * lo, 100 * hi],
                ci_plays=[100 * plo, 100 * phi], balanced_accuracy=100 * float(np.mean(recall)),
                confusion=confusion_matrix(labels, pred, len(GENRES)).tolist(),
                per_play={p: 100 * float(correct[plays == p].mean()) for p in sorted(set(plays))})


def framework_api(framework: str):
    """(EncoderClassifier, fit, save, load, n_params, make_adam, predict) of one framework."""
    threads = int(os.environ["OMP_NUM_THREADS"])
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
        from llmbook.torch.checkpoint import load_checkpoint, save_checkpoint
        from llmbook.torch.classifier import EncoderClassifier
        from llmbook.torch.train import fit
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        make_adam = lambda m, lr: torch.optim.Adam(m.parameters(), lr=lr)  # noqa: E731

        @torch.no_grad()
        def predict(model, ids):
            model.eval()
            dev = next(model.parameters()).device
            return np.concatenate([model(torch.as_tensor(ids[i:i + 256], device=dev)).argmax(-1).cpu().numpy()
                                   for i in range(0, len(ids), 256)])
    else:
        import keras
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        from llmbook.tf.checkpoint import load_checkpoint, save_checkpoint
        from llmbook.tf.classifier import EncoderClassifier
        from llmbook.tf.train import fit
        count = lambda m: int(sum(np.prod(w.shape) for w in m.trainable_weights))  # noqa: E731
        make_adam = lambda m, lr: keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)  # noqa: E731
        step = {}

        def predict(model, ids):
            if model not in step:
                step[model] = tf.function(lambda x: tf.argmax(model(x, training=False), -1),
                                          reduce_retracing=True)
            return np.concatenate([step[model](tf.constant(ids[i:i + 256])).numpy()
                                   for i in range(0, len(ids), 256)])
    return EncoderClassifier, fit, save_checkpoint, load_checkpoint, count, make_adam, predict


def train_encoder(framework: str, vocab_size: int, arrays: dict) -> dict:
    """Train one framework's EncoderClassifier, keep its best epoch on validation; return its row."""
    Model, fit, save, _, _, make_adam, predict = framework_api(framework)
    llmbook.seed(TRAIN["seed"])
    config = dict(vocab_size=vocab_size, num_classes=len(GENRES), **MODEL)
    model = Model(**config)
    opt = make_adam(model, TRAIN["lr"])
    x, y, _ = arrays["train"]
    batches = Batches(x, y, TRAIN["batch_size"], shuffle=True, seed=TRAIN["seed"])
    path = CKPT / f"genre_{framework}.npz"
    best, history, seconds = -1.0, [], 0.0
    for epoch in range(1, TRAIN["epochs"] + 1):
        start = time.perf_counter()
        hist = fit(model, batches, epochs=1, optimizer=opt, clip=TRAIN["clip"], progress=False)
        seconds += time.perf_counter() - start
        val = 100 * float((predict(model, arrays["validation"][0]) == arrays["validation"][1]).mean())
        history.append(dict(epoch=epoch, train_loss=hist["loss"][0], val_accuracy=val, seconds=seconds))
        print(f"  {framework} epoch {epoch}: loss {hist['loss'][0]:.3f}  val acc {val:.1f} %  ({seconds:.0f} s)",
              flush=True)
        if val > best:
            best, best_epoch = val, epoch
            save(model, path, **config)
    return dict(train_s=seconds, best_epoch=best_epoch, history=history,
                checkpoint_kb=path.stat().st_size / 1024, config=config)


def evaluate_encoder(framework: str, arrays: dict) -> dict:
    """Validation and test scores of a framework's committed checkpoint."""
    Model, _, _, load, count, _, predict = framework_api(framework)
    model = load(Model, CKPT / f"genre_{framework}.npz")
    out = dict(params=count(model))
    for split in ("validation", "test"):
        ids, labels, plays = arrays[split]
        out[split] = scores(labels, predict(model, ids), plays)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frameworks", nargs="+", default=["torch", "tf"], choices=["torch", "tf"])
    ap.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoints")
    args = ap.parse_args()

    data, vocab, arrays = prepare()
    counts = {s: getattr(data, s).counts() for s in ("train", "validation", "test")}
    print(f"vocabulary {len(vocab)}; passages per genre: {counts}")
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    old_rows = {(r["model"], r["framework"]): r for r in old.get("rows", [])}

    # Majority class of the training passages.
    majority = int(np.bincount(arrays["train"][1]).argmax())
    rows = [dict(model=f"majority class ({GENRES[majority]})", framework="NumPy", dataset=DATASET,
                 metric="test accuracy %", params=0, train_s=None,
                 **{s: scores(arrays[s][1], np.full_like(arrays[s][1], majority), arrays[s][2])
                    for s in ("validation", "test")})]

    # Bag-of-words naive Bayes, alpha chosen on validation.
    start = time.perf_counter()
    bow = {s: bag_of_words([r[r != 0] for r in arrays[s][0]], len(vocab)) for s in arrays}
    val_acc = {a: float((MultinomialNB(a).fit(bow["train"], arrays["train"][1], len(GENRES)).predict(
        bow["validation"]) == arrays["validation"][1]).mean()) for a in ALPHAS}
    alpha = max(ALPHAS, key=lambda a: (val_acc[a], -a))
    nb = MultinomialNB(alpha).fit(bow["train"], arrays["train"][1], len(GENRES))
    nb_s = time.perf_counter() - start
    rows.append(dict(model=f"bag-of-words naive Bayes (alpha={alpha:g}, chosen on validation)",
                     framework="NumPy", dataset=DATASET, metric="test accuracy %",
                     params=int(nb.log_likelihood.size + nb.log_prior.size), train_s=nb_s, alpha=alpha,
                     alpha_grid={str(a): 100 * v for a, v in val_acc.items()},
                     **{s: scores(arrays[s][1], nb.predict(bow[s]), arrays[s][2])
                        for s in ("validation", "test")}))

    name = "Transformer encoder + mean pooling"
    for fw in ("torch", "tf"):
        key = (name, FRAMEWORK_NAMES[fw])
        if fw not in args.frameworks:
            if key in old_rows:
                rows.append(old_rows[key])
            continue
        trained = train_encoder(fw, len(vocab), arrays) if not args.skip_train else \
            {k: v for k, v in old_rows.get(key, {}).items() if k in ("train_s", "best_epoch", "history",
                                                                 "checkpoint_kb", "config")}
        rows.append(dict(model=name, framework=FRAMEWORK_NAMES[fw], dataset=DATASET, metric="test accuracy %",
                         **trained, **evaluate_encoder(fw, arrays)))
    for r in rows:
        r["value"] = r["test"]["accuracy"]
        print(f"{r['model'][:50]:50s} {r['framework']:10s} val {r['validation']['accuracy']:5.1f}  "
              f"test {r['value']:5.1f} [{r['test']['ci_passages'][0]:.1f}, {r['test']['ci_passages'][1]:.1f}]")

    result = dict(task="genre of a passage from held-out plays", dataset=DATASET, genres=list(GENRES),
                  data=DATA, model=MODEL, train=TRAIN, vocab_size=len(vocab), plays=data.plays,
                  passages=counts, bootstrap="95 % percentile interval, 2000 resamples of passages "
                                             "(ci_passages) or of whole plays (ci_plays)", rows=rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    # What the appendix page shows about the checkpoints' training (package data: the page reads no repository file).
    summary = {r["framework"]: dict(train_s=r.get("train_s"), best_epoch=r.get("best_epoch"), params=r["params"],
                                    epochs=TRAIN["epochs"]) for r in rows if r["model"] == name}
    (CKPT / "genre.json").write_text(json.dumps(dict(data=DATA, model=MODEL, train=TRAIN, vocab_size=len(vocab),
                                                     encoders=summary), indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)} and {(CKPT / 'genre.json').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
