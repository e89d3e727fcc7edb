"""Exercise sets as data: questions, their public and hidden checks, and the loader of check files.

A check file is plain Python. It declares questions with `question(...)` and registers checks with
the `@check(qid, name)` decorator; each check receives the learner's answer (their function, wrapped
so its exceptions become messages, or their value) and raises `CheckFailed` with a message that
points at the bug. Public checks ship inside llmbook (`llmbook/grading/checks/<set>.py`, package
data); hidden checks are a file of the same form kept elsewhere (`tests/hidden/<set>.py`, or an
instructor's private folder) and runs in the namespace of the public file, so it can use the
public file's imports and helpers.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

KINDS = ("public", "hidden")


@dataclass
class Check:
    """One named check of one question."""

    qid: str
    name: str
    fn: Callable
    kind: str


@dataclass
class Question:
    """A question: the name of the learner's answer, its points, time limit and checks."""

    qid: str
    answer: str
    points: int = 1
    limit: float = 10.0
    needs: tuple[str, ...] = ()
    callable: bool = True
    forbid: tuple[str, ...] = ()   # dotted names of functions the answer must not call (llmbook.grading.forbid)
    checks: list[Check] = field(default_factory=list)

    def of_kind(self, kinds: Iterable[str]) -> list[Check]:
        """The checks whose kind is in `kinds`, public ones first."""
        kinds = tuple(kinds)
        return [c for k in KINDS if k in kinds for c in self.checks if c.kind == k]


@dataclass
class ExerciseSet:
    """The questions of one chapter's exercise notebook, e.g. 'ch01'."""

    name: str
    questions: dict[str, Question] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    expected: object = None        # llmbook.grading.stored.Expected of this set


_loading: list[tuple[ExerciseSet, str]] = []   # (set, kind) of the check file being executed


def question(qid: str, *, answer: str, points: int = 1, limit: float = 10.0, needs: Iterable[str] = (),
             callable: bool = True, forbid: Iterable[str] = ()) -> None:  # noqa: A002 - the builtin's meaning
    """Declare a question (in the public check file): the answer's variable name, points, time limit in s,
    and the functions (dotted names) the answer is asked to write rather than call."""
    exercise_set, kind = _current()
    if kind != "public":
        raise ValueError(f"question {qid!r} is declared in a {kind} check file; declare questions in the public one")
    if qid in exercise_set.questions:
        raise ValueError(f"question {qid!r} is declared twice in {exercise_set.name}")
    exercise_set.questions[qid] = Question(qid, answer, points, float(limit), tuple(needs), callable, tuple(forbid))


def check(qid: str, name: str) -> Callable[[Callable], Callable]:
    """Register the decorated function as a check of question `qid`, shown to learners as `name`."""
    def register(fn: Callable) -> Callable:
        exercise_set, kind = _current()
        if qid not in exercise_set.questions:
            raise ValueError(f"{kind} check {name!r} is for question {qid!r}, which {exercise_set.name} does not "
                             f"declare (questions: {', '.join(exercise_set.questions) or 'none'})")
        exercise_set.questions[qid].checks.append(Check(qid, name, fn, kind))
        return fn
    return register


def _current() -> tuple[ExerciseSet, str]:
    if not _loading:
        raise RuntimeError("question() and check() only work inside a check file loaded by llmbook.grading")
    return _loading[-1]


def public_file(set_name: str) -> Path:
    """The packaged public check file of `set_name`."""
    path = Path(str(resources.files("llmbook.grading") / "checks" / f"{set_name}.py"))
    if not path.is_file():
        known = ", ".join(available()) or "none"
        raise ValueError(f"no exercise set {set_name!r} in llmbook (available: {known})")
    return path


def available() -> list[str]:
    """Names of the exercise sets whose public checks ship with llmbook."""
    folder = Path(str(resources.files("llmbook.grading") / "checks"))
    return sorted(p.stem for p in folder.glob("*.py")) if folder.is_dir() else []


def hidden_file(set_name: str, location: str | Path) -> Path:
    """The hidden check file of `set_name` in `location` (a folder holding `<set>.py`, or the file itself)."""
    path = Path(location)
    path = path / f"{set_name}.py" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no hidden checks for {set_name}: {path} does not exist")
    return path


SECRET_ENV = "LLMBOOK_GRADING_SECRET"


def secret_seed(secret: str, *labels) -> int:
    """A 63-bit seed derived from the instructor's secret and `labels` (same secret, same seed)."""
    text = "\x1f".join([secret, *map(str, labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def load(set_name: str, hidden: Iterable[str | Path] = (), secret: str | None = None) -> ExerciseSet:
    """The set `set_name`: public checks, plus hidden ones seeded by `secret` (required with `hidden`)."""
    hidden = list(hidden)
    from llmbook.grading.stored import Expected
    exercise_set = ExerciseSet(set_name)
    exercise_set.expected = Expected(set_name)
    public = _exec_file(public_file(set_name), exercise_set, "public", {"expected_value": exercise_set.expected})
    secret = secret if secret is not None else os.environ.get(SECRET_ENV)
    for location in hidden:   # each hidden file sees the public file's imports and helpers
        path = hidden_file(set_name, location)
        if not secret:
            raise ValueError(f"hidden checks need the instructor's secret: pass --secret TEXT or set {SECRET_ENV} "
                             f"(any private text; the same text gives the same hidden inputs)")
        before = sum(len(q.checks) for q in exercise_set.questions.values())
        namespace = dict(public, SEED=lambda n, _s=secret: secret_seed(_s, set_name, n))
        namespace = _exec_file(path, exercise_set, "hidden", namespace)
        exercise_set.expected.live.update({k: v for k, v in namespace.items()
                                           if k.startswith("_") and callable(v) and k not in public})
        if sum(len(q.checks) for q in exercise_set.questions.values()) == before:
            raise ValueError(f"the hidden check file {path} defines no checks (empty or overwritten?): "
                             f"restore it with `python -m llmbook.grading.build` or from your private copy")
    return exercise_set


def _exec_file(path: Path, exercise_set: ExerciseSet, kind: str, namespace: dict) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the {kind} check file {path} ({type(e).__name__}: {e})") from None
    if not text.strip():
        raise ValueError(f"the {kind} check file {path} is empty: restore it with `python -m llmbook.grading.build` "
                         f"or from your private copy")
    code = compile(text, str(path), "exec")
    namespace.update(__name__=f"llmbook_checks_{exercise_set.name}_{kind}", __file__=str(path))
    _loading.append((exercise_set, kind))
    try:
        exec(code, namespace)  # noqa: S102 - check files are course code, like any module
    finally:
        _loading.pop()
    exercise_set.sources.append(str(path))
    return namespace
