"""Framework-neutral metrics on NumPy arrays."""
from __future__ import annotations

import numpy as np


def perplexity(mean_nll: float) -> float:
    """Perplexity exp(mean negative log-likelihood in nats per token)."""
    if not np.isfinite(mean_nll) or mean_nll < 0:
        raise ValueError(f"mean NLL must be a finite number of nats >= 0, got {mean_nll}")
    return float(np.exp(mean_nll))


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax along `axis`."""
    z = logits - logits.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def mean_nll(logits: np.ndarray, targets: np.ndarray, ignore_index: int | None = None) -> float:
    """Mean negative log-likelihood (nats) of integer `targets` under `logits` (..., V), skipping `ignore_index`."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64))
    targets = np.asarray(targets)
    if logp.shape[:-1] != targets.shape:
        raise ValueError(f"logits {logp.shape} must be targets {targets.shape} plus a vocabulary axis")
    keep = np.ones(targets.shape, bool) if ignore_index is None else targets != ignore_index
    picked = np.take_along_axis(logp, np.where(keep, targets, 0)[..., None], axis=-1)[..., 0]
    return float(-(picked * keep).sum() / max(keep.sum(), 1))


def exact_match(predictions, references) -> float:
    """Fraction of predictions equal to their reference string (e.g. dates -> ISO)."""
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references) or not references:
        raise ValueError(f"exact_match needs as many predictions as references (> 0), got "
                         f"{len(predictions)} and {len(references)}")
    return float(np.mean([p == r for p, r in zip(predictions, references)]))


def corpus_bleu(hypotheses, references):
    """sacreBLEU corpus BLEU of detokenised hypotheses against one reference each.

    Returns sacreBLEU's BLEUScore: `.score` (0-100), `.precisions`, `.bp`, and `.signature`, the
    string that says how it was computed (tokeniser, smoothing, version) and must be reported with it.
    """
    import sacrebleu
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f"corpus_bleu needs one reference per hypothesis, got {len(hypotheses)} hypotheses "
                         f"and {len(references)} references")
    metric = sacrebleu.metrics.BLEU()
    score = metric.corpus_score(hypotheses, [references])
    score.signature = str(metric.get_signature())
    return score
