"""Graded exercises: `Exercises("ch01").check("q1", answer)` in a learner's notebook, batch grading for instructors.

    from llmbook.grading import Exercises
    grader = Exercises("ch01")
    grader.check("q1", perplexity)      # prints e.g. "q1: passed 4/4 public checks"; never raises

Instructors: `python -m llmbook.grading.grade SUBMISSIONS --set ch01 --hidden DIR --secret TEXT --out scores.csv`.
Authors: `python -m llmbook.grading.build` regenerates notebooks and checks from `grading_src/`.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from llmbook.grading.expect import CheckFailed
from llmbook.grading.runner import Result, run_question
from llmbook.grading.spec import available, load

BATCH_ENV = "LLMBOOK_GRADING"   # set to "batch" in the kernels of the batch grader

__all__ = ["Exercises", "CheckFailed", "Result", "available"]


class Exercises:
    """The checks of one chapter's exercise set; `check(qid, answer)` prints one line per call."""

    def __init__(self, set_name: str, hidden: Iterable[str | Path] = (), secret: str | None = None):
        self.hidden = tuple(hidden)
        self.set = load(set_name, self.hidden, secret)
        self.name = set_name

    @property
    def questions(self) -> list[str]:
        return list(self.set.questions)

    def check(self, qid: str, answer) -> None:
        """Check `answer` to question `qid` with the public checks and print the result; never raises."""
        if os.environ.get(BATCH_ENV) == "batch":
            print(f"{qid}: checked by the batch grader after the notebook has run")
            return
        print(self.run(qid, answer).line())

    def run(self, qid: str, answer, hidden: bool = False, limit: float | None = None) -> Result:
        """The Result of checking `answer` (public checks, plus hidden ones when `hidden`)."""
        if qid not in self.set.questions:
            q = Result(qid, 0, 0, {}, f"{self.name} has no question {qid!r} (questions: "
                                      f"{', '.join(self.questions)})", "missing")
            return q
        kinds = ("public", "hidden") if hidden else ("public",)
        return run_question(self.set.questions[qid], answer, kinds, limit)
