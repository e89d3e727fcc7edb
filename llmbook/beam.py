"""Beam-search bookkeeping shared by both frameworks (NumPy); each framework supplies only the decoder step.

Shapes: B sources decoded together, k beam width, N = B k decoder rows, V target vocabulary,
t tokens generated so far.

A hypothesis y_1 .. y_L (L counts the tokens generated, `<eos>` included) is scored by its
length-normalised log-probability

    score(Y) = log P(Y | X) / L**alpha,      log P(Y | X) = sum_t log P(y_t | y_<t, X),

so alpha = 0 ranks by raw log-probability (which favours short outputs, since every token adds a
negative term) and alpha = 1 by the mean log-probability per token.

The search, for each source:
  1. keep the k best unfinished prefixes ("beams"), starting from the single prefix <bos>;
  2. extend every beam by every token: k V candidates, each with log P(prefix) + log P(token | prefix);
  3. a candidate that ends in <eos> and ranks among the k best is finished (a hypothesis); the k best
     candidates that do not end in <eos> are the new beams;
  4. stop when k hypotheses are finished, or when no beam can still beat the best hypothesis
     (a beam with log-probability s <= 0 can at best score s / max_len**alpha), or after
     `max_len` tokens, where the beams left are finished as they are (cut, without <eos>);
  5. return the hypothesis with the best score.
With k = 1 this is greedy decoding; with k >= the number of possible outputs it is exhaustive search.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

StepFn = Callable[[np.ndarray, Any], tuple[Any, Any]]
SelectFn = Callable[[Any, np.ndarray], Any]


@dataclass
class Hypothesis:
    """One finished output: its tokens (without <bos>, with <eos> if it ended), log P and score."""

    tokens: list[int]
    logp: float
    score: float
    ended: bool          # True: ended with <eos>; False: cut at max_len

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class BeamResult:
    """Best sequence per source (without <eos>), all finished hypotheses (best first) and, optionally, a trace."""

    sequences: list[list[int]]
    scores: list[float]
    hypotheses: list[list[Hypothesis]]
    trace: list[list[dict]] = field(default_factory=list)   # per source, per step: beams and new hypotheses


def map_structure(fn: Callable[[Any], Any], tree: Any) -> Any:
    """Apply `fn` to every tensor of a (nested) tuple/list/dict, keeping the nesting; None stays None."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {key: map_structure(fn, value) for key, value in tree.items()}
    if isinstance(tree, (tuple, list)):
        mapped = [map_structure(fn, value) for value in tree]
        return type(tree)(*mapped) if hasattr(tree, "_fields") else type(tree)(mapped)
    return fn(tree)


def normalised_score(logp: float | np.ndarray, length: int | np.ndarray, alpha: float) -> float | np.ndarray:
    """log P(Y | X) / length**alpha: the score that ranks hypotheses of different lengths."""
    return logp / np.power(length, alpha, dtype=np.float64)


def search(step: StepFn, select: SelectFn, state: Any, batch_size: int, *, bos_id: int, eos_id: int,
           k: int = 4, max_len: int = 50, alpha: float = 0.0, trace: bool = False) -> BeamResult:
    """Beam search of width `k` for `batch_size` sources at once.

    `state` holds the decoder state of the N = batch_size k rows (each source's row repeated k times);
    `step(tokens (N,), state) -> (log_probs, new state)` runs the decoder one step, where `log_probs`
    is either all next-token log-probabilities (N, V) or only the best m >= min(2k, V) of each row
    as a pair (values (N, m), token ids (N, m)) — the same search, with far less to sort;
    `select(state, rows (N,)) -> state` gathers the rows of the beams that survive.
    """
    if k < 1 or max_len < 1:
        raise ValueError(f"beam width k and max_len must be >= 1, got k={k}, max_len={max_len}")
    B = batch_size
    tokens = np.full(B * k, bos_id, dtype=np.int64)                 # (N,)
    beam_logp = np.full((B, k), -np.inf)                            # (B, k)
    beam_logp[:, 0] = 0.0                                           # one live beam (<bos>) per source
    history = np.zeros((B, k, 0), dtype=np.int64)                   # (B, k, t)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = np.zeros(B, dtype=bool)                                  # (B,)
    steps: list[list[dict]] = [[] for _ in range(B)] if trace else []
    for t in range(1, max_len + 1):
        out, state = step(tokens, state)
        if isinstance(out, tuple):                                  # the best m of each row
            values, ids = (np.asarray(a) for a in out)              # (N, m), (N, m)
        else:                                                       # all V of each row
            values = np.asarray(out)                                # (N, V)
            ids = np.broadcast_to(np.arange(values.shape[-1]), values.shape)
        W = values.shape[-1]                                        # candidates per beam: m or V
        cand = (beam_logp[:, :, None] + values.reshape(B, k, W).astype(np.float64)).reshape(B, k * W)  # (B, k W)
        m = min(2 * k, k * W)                 # at most k candidates end in <eos>: 2k hold k that do not
        top = np.argpartition(-cand, m - 1, axis=1)[:, :m]          # (B, m), unordered
        top_score = np.take_along_axis(cand, top, axis=1)           # (B, m)
        top_token = np.take_along_axis(ids.reshape(B, k * W), top, axis=1)   # (B, m)
        order = np.lexsort((top_token, top // W, -top_score), axis=1)   # best first; ties: lower beam, token
        top = np.take_along_axis(top, order, axis=1)                # (B, m)
        top_score = np.take_along_axis(top_score, order, axis=1)    # (B, m)
        parent, token = top // W, np.take_along_axis(top_token, order, axis=1)   # (B, m), (B, m)
        is_eos = token == eos_id                                    # (B, m)
        new_hyps: list[list[Hypothesis]] = [[] for _ in range(B)]
        # 3a. <eos> among the k best candidates: a finished hypothesis
        for b, r in zip(*np.nonzero(is_eos[:, :k] & np.isfinite(top_score[:, :k]))):
            if done[b]:
                continue
            seq = [*history[b, parent[b, r]].tolist(), eos_id]
            h = Hypothesis(seq, float(top_score[b, r]), float(normalised_score(top_score[b, r], t, alpha)), True)
            finished[b].append(h)
            new_hyps[b].append(h)
        # 3b. the k best candidates that do not end in <eos> continue
        keep = np.argsort(is_eos, axis=1, kind="stable")[:, :k]     # (B, k): non-<eos> first, score order kept
        parent = np.take_along_axis(parent, keep, axis=1)           # (B, k)
        token = np.take_along_axis(token, keep, axis=1)             # (B, k)
        beam_logp = np.take_along_axis(top_score, keep, axis=1)     # (B, k)
        beam_logp[np.take_along_axis(is_eos, keep, axis=1)] = -np.inf   # (only if fewer than k non-<eos> exist)
        history = np.concatenate([np.take_along_axis(history, parent[:, :, None], axis=1),
                                  token[:, :, None]], axis=2)       # (B, k, t)
        rows = (np.arange(B)[:, None] * k + parent).reshape(-1)     # (N,) rows of the surviving parents
        state = select(state, rows)
        tokens = token.reshape(-1)                                  # (N,)
        last = t == max_len
        for b in range(B):
            if done[b]:
                continue
            if trace:
                steps[b].append(dict(step=t, beams=[(history[b, j].tolist(), float(beam_logp[b, j]))
                                                    for j in range(k) if np.isfinite(beam_logp[b, j])],
                                     finished=[(h.tokens, h.logp, h.score) for h in new_hyps[b]]))
            alive = np.isfinite(beam_logp[b])
            if last:                          # 4. out of room: the beams left are cut hypotheses
                for j in np.nonzero(alive)[0]:
                    finished[b].append(Hypothesis(history[b, j].tolist(), float(beam_logp[b, j]),
                                                  float(normalised_score(beam_logp[b, j], t, alpha)), False))
                done[b] = True
                continue
            best = max((h.score for h in finished[b]), default=-np.inf)
            bound = beam_logp[b][alive].max() / max_len ** alpha if alive.any() else -np.inf
            if len(finished[b]) >= k or not alive.any() or best >= bound:
                done[b] = True
        if done.all():
            break
    hyps = [sorted(f, key=lambda h: -h.score) for f in finished]   # stable: earlier-found first on ties
    sequences = [[i for i in h[0].tokens if i != eos_id] if h else [] for h in hyps]
    return BeamResult(sequences=sequences, scores=[h[0].score if h else -np.inf for h in hyps],
                      hypotheses=hyps, trace=steps)


def exhaustive_search(log_prob: Callable[[list[int]], np.ndarray], vocab_size: int, *, eos_id: int,
                      max_len: int, alpha: float = 0.0) -> Hypothesis:
    """The best-scoring output by brute force: every sequence ending in <eos> within max_len, or cut there.

    `log_prob(prefix)` returns the log-probabilities (V,) of the next token after `prefix` (no <bos>).
    Costs V**max_len calls: for tests on tiny vocabularies only.
    """
    best: Hypothesis | None = None

    def visit(prefix: list[int], lp: float) -> None:
        nonlocal best
        dist = np.asarray(log_prob(prefix), dtype=np.float64)          # (V,)
        for tok in range(vocab_size):
            seq, s = [*prefix, tok], lp + float(dist[tok])
            if tok == eos_id or len(seq) == max_len:
                h = Hypothesis(seq, s, float(normalised_score(s, len(seq), alpha)), tok == eos_id)
                if best is None or h.score > best.score:
                    best = h
            else:
                visit(seq, s)

    visit([], 0.0)
    return best
