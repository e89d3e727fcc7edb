"""Bag-of-words text classification in NumPy, and what every classifier is scored with.

Multinomial naive Bayes (e.g. Manning, Raghavan & Schütze, *Introduction to Information Retrieval*,
§13.2): a passage is a bag of token ids w_1..w_n; the class c maximises

    log P(c) + sum_i log P(w_i | c),     P(w | c) = (count(w, c) + alpha) / (sum_w' count(w', c) + alpha V)

with add-alpha smoothing. Word order is ignored: the baseline an encoder has to beat.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bag_of_words(ids: Sequence[np.ndarray], vocab_size: int) -> np.ndarray:
    """Token counts per passage: a list of id arrays -> (N, V) float64."""
    out = np.zeros((len(ids), vocab_size))                                  # (N, V)
    for row, seq in zip(out, ids):
        np.add.at(row, np.asarray(seq, dtype=np.int64), 1.0)
    return out


class MultinomialNB:
    """Multinomial naive Bayes with add-alpha smoothing on bag-of-words counts."""

    def __init__(self, alpha: float = 1.0):
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0 (add-alpha smoothing), got {alpha}")
        self.alpha = alpha

    def fit(self, counts: np.ndarray, labels: np.ndarray, num_classes: int) -> "MultinomialNB":
        """Estimate log P(c) (C,) and log P(w | c) (C, V) from counts (N, V) and labels (N,)."""
        onehot = np.eye(num_classes)[labels]                                # (N, C)
        self.log_prior = np.log(onehot.mean(axis=0))                        # (C,)
        per_class = onehot.T @ counts + self.alpha                          # (C, V)
        self.log_likelihood = np.log(per_class / per_class.sum(axis=1, keepdims=True))   # (C, V)
        return self

    def scores(self, counts: np.ndarray) -> np.ndarray:
        """Unnormalised log posteriors (N, C) of counts (N, V)."""
        return counts @ self.log_likelihood.T + self.log_prior              # (N, V) @ (V, C) -> (N, C)

    def predict(self, counts: np.ndarray) -> np.ndarray:
        """The most probable class of each passage, (N,)."""
        return self.scores(counts).argmax(axis=1)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(labels), np.asarray(predictions)), 1)
    return out


def bootstrap_accuracy(correct: np.ndarray, n_boot: int = 2000, seed: int = 0,
                       groups: np.ndarray | None = None) -> tuple[float, float]:
    """95 % percentile interval of the accuracy of a 0/1 array, resampling items (or whole `groups`)."""
    rng = np.random.default_rng(seed)
    correct = np.asarray(correct, dtype=np.float64)
    if groups is None:
        idx = rng.integers(0, len(correct), size=(n_boot, len(correct)))   # (n_boot, N)
        acc = correct[idx].mean(axis=1)                                     # (n_boot,)
    else:                     # cluster bootstrap: resample whole groups (plays), pool their items
        names, inverse = np.unique(groups, return_inverse=True)
        hits = np.bincount(inverse, weights=correct)                        # (G,) correct per group
        sizes = np.bincount(inverse).astype(np.float64)                     # (G,) items per group
        idx = rng.integers(0, len(names), size=(n_boot, len(names)))        # (n_boot, G)
        acc = hits[idx].sum(axis=1) / sizes[idx].sum(axis=1)                # (n_boot,)
    lo, hi = np.percentile(acc, [2.5, 97.5])
    return float(lo), float(hi)
