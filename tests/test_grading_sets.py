"""The exercise sets of chapters 2-7 as a whole: their shape, and the batch grader on each of them.

tests/test_grading.py checks every set question by question (solution passes, stub fails, every
wrong answer of tests/fixtures/grading/<set>_wrong.py is rejected by the hidden checks with a
message naming the bug, generated files up to date). This file adds what is per set: the
brief's constraints on its size and frameworks, that no wrong answer crashes a check, and that the
batch grader (`make grade`) gives a solved notebook full marks and the untouched one zero.
"""
from __future__ import annotations

import copy
import csv
import importlib.util
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from llmbook.grading import Exercises, build, grade, master as M, spec
from llmbook.grading.runner import run_question

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
SECRET = os.environ.get("LLMBOOK_TEST_SECRET", "test-secret")   # seeds the hidden checks' inputs
HIDDEN = ROOT / "tests" / "hidden"
SETS = {M.set_name(m): m for m in build.masters(ROOT)}
NEW_SETS = [name for name in ("ch02", "ch03", "ch04", "ch05", "ch06", "ch07") if name in SETS]


def wrong_answers(name: str) -> dict:
    loaded = importlib.util.spec_from_file_location(f"{name}_wrong_sets", FIXTURES / f"{name}_wrong.py")
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module.WRONG


def test_chapters_2_to_7_have_sets():
    assert NEW_SETS == ["ch02", "ch03", "ch04", "ch05", "ch06", "ch07"], \
        f"missing masters in grading_src/: have {sorted(SETS)}"


def _frameworks(name: str) -> dict[str, set[str]]:
    """The framework tags (pytorch, tensorflow) of each question's answer cell, by the answer's name."""
    out = {}
    for cell in M.read(SETS[name]).cells:
        if "answer" in M.tags(cell):
            source = M.solution_source(cell.source)
            for q in spec.load(name).questions.values():
                if f"def {q.answer}(" in source or source.lstrip().startswith(f"{q.answer} ="):
                    out[q.answer] = set(M.tags(cell)) & {"pytorch", "tensorflow"}
    return out


@pytest.mark.parametrize("name", NEW_SETS)
def test_set_size_points_and_frameworks(name):
    questions = spec.load(name, [HIDDEN], SECRET).questions
    points = sum(q.points for q in questions.values())
    assert 5 <= len(questions) <= 7, f"{name}: {len(questions)} questions, the course asks for 5-7"
    assert 8 <= points <= 10, f"{name}: {points} points, the course asks for 8-10"
    frameworks = _frameworks(name)
    assert set(frameworks) == {q.answer for q in questions.values()}, frameworks
    kinds = [frameworks[q.answer] for q in questions.values()]
    assert {"pytorch"} in kinds and {"tensorflow"} in kinds and set() in kinds, f"{name}: {kinds}"
    for q in questions.values():
        uses_tf = "tensorflow" in q.needs
        assert q.limit == (20.0 if uses_tf else 10.0), f"{name} {q.qid}: limit {q.limit} s"
        if frameworks[q.answer] == {"pytorch"}:
            assert "torch" in q.needs, f"{name} {q.qid}: import torch before the clock starts (needs)"
        if frameworks[q.answer] == {"tensorflow"}:
            assert uses_tf, f"{name} {q.qid}: import TensorFlow before the clock starts (needs)"


@pytest.mark.parametrize("name", NEW_SETS)
def test_every_question_has_wrong_answers_and_none_crashes_a_check(name):
    exercise_set = spec.load(name, [HIDDEN], SECRET)
    wrong = wrong_answers(name)
    assert set(wrong) == set(exercise_set.questions), f"{name}: wrong answers for {sorted(wrong)}"
    for qid, items in wrong.items():
        assert len(items) >= 4 or not exercise_set.questions[qid].callable, \
            f"{name} {qid}: only {len(items)} wrong implementations"
        for label, answer, _ in items:
            result = run_question(exercise_set.questions[qid], answer, ["public", "hidden"])
            assert result.score == 0, f"{name} {qid} accepts {label}"
            assert "the check itself crashed" not in result.failure, f"{name} {qid} ({label}): {result.line()}"


def _submissions(name: str, folder: Path) -> None:
    """alice: the solved answers pasted into the student notebook; bob: the untouched student notebook."""
    master = SETS[name]
    stub = nbformat.read(build.targets(ROOT, master)["student"], as_version=4)
    solved = [M.solution_source(c.source) for c in M.read(master).cells if "answer" in M.tags(c)]
    alice = copy.deepcopy(stub)
    cells = [c for c in alice.cells if "answer" in M.tags(c)]
    assert len(cells) == len(solved)
    for cell, source in zip(cells, solved):
        cell.source = source
    nbformat.write(alice, folder / "alice.ipynb")
    nbformat.write(stub, folder / "bob.ipynb")


@pytest.mark.parametrize("name", NEW_SETS)
def test_batch_grader_gives_full_marks_to_the_solution_and_zero_to_the_stub(tmp_path, name):
    folder = tmp_path / "submissions"
    folder.mkdir()
    _submissions(name, folder)
    out = tmp_path / "scores.csv"
    assert grade.main([str(folder), "--set", name, "--hidden", str(HIDDEN), "--secret", SECRET, "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    questions = Exercises(name, [HIDDEN], secret=SECRET).set.questions
    total = sum(q.points for q in questions.values())
    by = {(r["student"], r["question"]): r for r in rows}
    assert by["alice", "total"]["score"] == str(total) and by["bob", "total"]["score"] == "0", rows
    for qid in questions:
        assert by["alice", qid]["detail"].startswith(f"{qid}: passed"), by["alice", qid]
        assert "not answered yet" in by["bob", qid]["detail"], by["bob", qid]


def test_batch_grader_fails_an_answer_that_calls_the_function_it_should_write(tmp_path):
    """The forbidden-call watch works in the grading worker too: carol's top-k calls the course's filter
    and dave's its PyTorch twin (right values); each loses that question only, with a message naming the
    call."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    _submissions("ch07", folder)
    carol = nbformat.read(folder / "alice.ipynb", as_version=4)
    cell = next(c for c in carol.cells if "answer" in M.tags(c) and "def top_k_filter(" in c.source)
    cell.source = "import llmbook.sampling\n\ndef top_k_filter(logits, k):\n    return llmbook.sampling.top_k_filter(logits, k)\n"
    nbformat.write(carol, folder / "carol.ipynb")
    cell.source = ("import numpy as np\nimport torch\nimport llmbook.torch.sampling\n\ndef top_k_filter(logits, k):\n"
                   "    t = torch.as_tensor(np.asarray(logits, dtype=np.float64))\n"
                   "    return llmbook.torch.sampling.top_k_filter(t, k).numpy()\n")
    nbformat.write(carol, folder / "dave.ipynb")
    out = tmp_path / "scores.csv"
    assert grade.main([str(folder), "--set", "ch07", "--hidden", str(HIDDEN), "--secret", SECRET, "--out", str(out)]) == 0
    by = {(r["student"], r["question"]): r for r in csv.DictReader(out.open(encoding="utf-8"))}
    questions = Exercises("ch07", [HIDDEN], secret=SECRET).set.questions
    assert by["carol", "q4"]["score"] == "0", by["carol", "q4"]
    assert "called llmbook.sampling.top_k_filter" in by["carol", "q4"]["detail"], by["carol", "q4"]
    assert by["dave", "q4"]["score"] == "0", by["dave", "q4"]
    assert "called llmbook.torch.sampling.top_k_filter" in by["dave", "q4"]["detail"], by["dave", "q4"]
    total = sum(q.points for q in questions.values())
    for student in ("carol", "dave"):
        assert by[student, "total"]["score"] == str(total - questions["q4"].points), student


GARBAGE = {
    "returns None": lambda *a, **k: None,
    "returns a string": lambda *a, **k: "h",
    "returns a short array": lambda *a, **k: np.zeros(3),
    "returns a pair of arrays": lambda *a, **k: (np.zeros(3), np.zeros((2, 2))),
    "returns a triple": lambda *a, **k: (np.zeros(2), np.zeros(2), np.zeros(2)),
    "returns a list of lists": lambda *a, **k: [[1, 2], [3]],
    "returns a scalar": lambda *a, **k: 1.5,
    "raises": lambda *a, **k: 1 / 0,
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", NEW_SETS)
def test_nonsense_answers_fail_with_a_message_and_never_crash_a_check(name):
    exercise_set = spec.load(name, [HIDDEN], SECRET)
    for q in exercise_set.questions.values():
        answers = GARBAGE if q.callable else {"a number": 3, "a word": "maybe", "a lowercase letter": "a"}
        for label, answer in answers.items():
            result = run_question(q, answer, ["public", "hidden"])
            assert result.score == 0 and result.failure, f"{name} {q.qid} ({label}): {result.line()}"
            assert "the check itself crashed" not in result.failure, f"{name} {q.qid} ({label}): {result.line()}"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ["ch01", *NEW_SETS])
def test_public_checks_alone_diagnose_wrong_answers_from_stored_values(name):
    """A learner's copy has no references: every wrong answer still gets a message, never a crash."""
    exercise_set = spec.load(name)
    wrong = {qid: [w[1] for w in items] for qid, items in wrong_answers(name).items()}
    for q in exercise_set.questions.values():
        answers = [*wrong.get(q.qid, []), *(GARBAGE.values() if q.callable else ("a", 3))]
        for answer in answers:
            result = run_question(q, answer, ["public"])
            assert "the check itself crashed" not in result.failure, f"{name} {q.qid}: {result.line()}"


@pytest.mark.parametrize("name", sorted(SETS))
def test_the_intro_shows_the_line_the_first_check_cell_prints(name):
    """The introduction's example line (`q1: passed n/n public checks`) is what the solved set prints."""
    intro = re.search(r"It prints one line: `(q1: passed (\d+)/\2 public checks)`", SETS[name].read_text())
    assert intro, f"{SETS[name].name}: no `q1: passed n/n public checks` example in the introduction"
    solved = nbformat.read(build.targets(ROOT, SETS[name])["solution"], as_version=4)
    printed = [o.get("text", "").strip() for c in solved.cells if c.cell_type == "code" for o in c.outputs]
    first = next((t for t in printed if t.startswith("q1:")), None)
    assert first == intro.group(1), (
        f"{SETS[name].name} says the check prints `{intro.group(1)}`, the solved set prints `{first}`")
