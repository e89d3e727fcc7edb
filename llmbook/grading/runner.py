"""Run one question's checks on an answer: seeded, under a time limit, never raising, one line of result."""
from __future__ import annotations

import contextlib
import importlib
import random
import signal
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from llmbook.grading.expect import Answer, CheckFailed, Unanswered
from llmbook.grading.spec import Question

SEED = 0


class QuestionTimeout(BaseException):
    """Raised in the learner's code when a question's time limit is up (a BaseException, so that
    `except Exception` in a learner's loop cannot swallow it)."""


@dataclass
class Result:
    """The outcome of checking one question."""

    qid: str
    points: int
    passed: int            # checks passed before the first failure
    counts: dict           # kind -> number of checks of that kind that were run
    failure: str = ""      # '' when every check passed
    status: str = "passed"  # passed | failed | unanswered | timeout | missing
    choice: bool = False    # a multiple-choice answer: the public checks only see its format

    @property
    def score(self) -> int:
        """Full points when every check passed, else 0 (never outside [0, points])."""
        return max(0, int(self.points)) if self.status == "passed" else 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        """The one-line, deterministic report a learner sees."""
        if self.status == "passed":
            if list(self.counts) == ["public"] and self.choice:
                return f"{self.qid}: format OK, graded by the instructor's checks"
            if list(self.counts) == ["public"]:
                return f"{self.qid}: passed {self.total}/{self.total} public checks"
            kinds = ", ".join(f"{n} {k}" for k, n in self.counts.items())
            return f"{self.qid}: passed {self.total}/{self.total} checks ({kinds})"
        if self.status == "unanswered":
            return f"{self.qid}: not answered yet — {self.failure}"
        return f"{self.qid}: FAILED {self.failure}"


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise QuestionTimeout in this thread after `seconds` (and every 0.25 s after, until the block ends).

    Uses SIGALRM, so it works in the main thread on Linux and macOS (Jupyter, Colab, pytest, the batch
    grader's kernel). Elsewhere it yields False and imposes no limit.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield False
        return
    state = {"armed": True}

    def on_alarm(signum, frame):
        if state["armed"]:
            raise QuestionTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.25)
    try:
        yield True
    finally:
        while True:   # an alarm may fire while disarming: retry until the timer is off
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                state["armed"] = False
                break
            except QuestionTimeout:
                continue
        signal.signal(signal.SIGALRM, previous)


def seed_loaded(n: int = SEED) -> None:
    """Seed Python, NumPy, and PyTorch/TensorFlow if already imported (importing TF here would cost seconds)."""
    random.seed(n)
    np.random.seed(n)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(n)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(n)


def import_needs(needs: Iterable[str]) -> None:
    """Import the frameworks a question's checks use, before its clock starts."""
    for name in needs:
        importlib.import_module("llmbook.tf" if name == "tensorflow" else name)


def run_question(q: Question, answer, kinds: Iterable[str] = ("public",), limit: float | None = None,
                 reseed=None) -> Result:
    """Run `q`'s checks of `kinds` on `answer` until one fails; `reseed` also seeds the answer's process."""
    kinds = tuple(kinds)
    checks = q.of_kind(kinds)
    counts = {k: sum(c.kind == k for c in checks) for k in ("public", "hidden") if k in kinds}
    result = Result(q.qid, q.points, 0, counts, choice=not q.callable)
    if answer is ... or answer is None:
        stub = "..." if answer is ... else "None"
        result.status, result.failure = "unanswered", f"{q.answer} is still {stub}: set it to your answer"
        return result
    if q.callable and not callable(answer):
        result.status = "failed"
        result.failure = (f"expected a function: pass the function itself, check({q.qid!r}, {q.answer}), "
                          f"not its result (got {type(answer).__name__})")
        return result
    wrapped = Answer(answer, getattr(answer, "__name__", q.answer), q.forbid) if q.callable else answer
    import_needs(q.needs)
    limit = q.limit if limit is None else limit
    numbering = {id(c): (i + 1, counts[k]) for k in counts for i, c in enumerate(d for d in checks if d.kind == k)}
    current = None
    try:
        with time_limit(limit):
            for current in checks:
                seed_loaded()
                if reseed is not None:
                    reseed(SEED)
                try:
                    current.fn(wrapped)
                except Unanswered as e:
                    result.status, result.failure = "unanswered", str(e)
                    break
                except CheckFailed as e:
                    result.status, result.failure = "failed", f"{_label(current, numbering)}: {e}"
                    break
                except Exception as e:  # noqa: BLE001 - a bug in a check is reported, not raised
                    result.status = "failed"
                    result.failure = (f"{_label(current, numbering)}: the check itself crashed "
                                      f"({type(e).__name__}: {e}); please report this")
                    break
                result.passed += 1
    except QuestionTimeout:
        result.status = "timeout"
        where = _label(current, numbering) if current is not None else "the checks"
        result.failure = (f"{where}: stopped after the {limit:g} s time limit — an endless loop, "
                          f"or far too slow?")
    return result


def _label(c, numbering) -> str:
    i, n = numbering[id(c)]
    return f"{c.kind} check {i}/{n} ({c.name})"
