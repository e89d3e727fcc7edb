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


def _corpus_score(name: str, metric, hypotheses, references):
    """One sacreBLEU corpus score of detokenised hypotheses (one reference each), with `.signature` attached."""
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f"{name} needs one reference per hypothesis, got {len(hypotheses)} hypotheses "
                         f"and {len(references)} references")
    score = metric.corpus_score(hypotheses, [references])
    score.signature = str(metric.get_signature())
    return score


def corpus_bleu(hypotheses, references):
    """sacreBLEU corpus BLEU of detokenised hypotheses against one reference each.

    Returns sacreBLEU's BLEUScore: `.score` (0-100), `.precisions`, `.bp`, and `.signature`, the
    string that says how it was computed (tokeniser, smoothing, version) and must be reported with it.
    """
    import sacrebleu
    return _corpus_score("corpus_bleu", sacrebleu.metrics.BLEU(), hypotheses, references)


def corpus_chrf(hypotheses, references):
    """sacreBLEU corpus chrF (character n-gram F-score, Popović 2015) with its `.signature`."""
    import sacrebleu
    return _corpus_score("corpus_chrf", sacrebleu.metrics.CHRF(), hypotheses, references)


def bleu_by_length(hypotheses, references, sources, buckets, n_bootstrap: int = 1000) -> list[dict]:
    """Corpus BLEU per bucket of source length in words, e.g. buckets ((1, 10), (11, 20)), with sacreBLEU's
    bootstrap 95 % interval (half-width `ci95`, from `n_bootstrap` resamples; its fixed seed makes it repeatable)."""
    import sacrebleu
    hypotheses, references, sources = list(hypotheses), list(references), list(sources)
    if not len(hypotheses) == len(references) == len(sources):
        raise ValueError(f"bleu_by_length needs one hypothesis, reference and source per sentence, got "
                         f"{len(hypotheses)}, {len(references)} and {len(sources)}")
    lengths = np.array([len(s.split()) for s in sources])
    out = []
    for lo, hi in buckets:
        idx = np.nonzero((lengths >= lo) & (lengths <= hi))[0]
        if not len(idx):
            raise ValueError(f"no source of {lo}-{hi} words: choose buckets that each hold sentences")
        score = sacrebleu.metrics.BLEU().corpus_score([hypotheses[i] for i in idx], [[references[i] for i in idx]],
                                                       n_bootstrap=n_bootstrap)
        out.append(dict(bucket=f"{lo}-{hi}", n=len(idx), bleu=score.score, ci95=float(score._ci)))
    return out


def repeated_4gram_rate(texts) -> float:
    """Share of word 4-grams that already occurred earlier in the same text (degenerate loops push it up)."""
    total = repeats = 0
    for t in texts:
        words, seen = t.split(), set()
        for i in range(len(words) - 3):
            g = tuple(words[i:i + 4])
            repeats += g in seen
            seen.add(g)
            total += 1
    return repeats / max(total, 1)


def pick_samples(hypotheses, references, k: int = 3) -> dict[str, list[int]]:
    """Indices of the k best, k typical (around the median) and k worst hypotheses by sentence chrF."""
    import sacrebleu
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references) or len(references) < 3 * k:
        raise ValueError(f"pick_samples needs one reference per hypothesis and at least {3 * k} of them")
    chrf = sacrebleu.metrics.CHRF()
    scores = np.array([chrf.sentence_score(h, [r]).score for h, r in zip(hypotheses, references)])
    order = np.argsort(-scores, kind="stable")                          # best first
    mid = len(order) // 2 - k // 2
    return dict(good=order[:k].tolist(), typical=order[mid:mid + k].tolist(), bad=order[-k:][::-1].tolist())
