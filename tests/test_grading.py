"""Graded exercises: the checker, the generated notebooks and checks, and the batch grader.

For every exercise set (one master in grading_src/): the solution passes every public and hidden
check, the untouched stub fails every question, and each plausible wrong answer in
tests/fixtures/grading/<set>_wrong.py is rejected by the hidden checks alone with a message that
names the bug. The batch grader scores three generated submissions (solved, untouched, and one with a
crashing cell, an endless loop and a wrong choice) exactly as tests/fixtures/grading/ch01_scores.csv
(in tests/test_grading_sandbox.py, in one batch with the hostile submissions).
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import os
import random
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from llmbook.grading import BATCH_ENV, Exercises, build, grade, master as M, spec
from llmbook.grading.expect import Answer, CheckFailed, expect_close
from llmbook.grading.runner import QuestionTimeout, time_limit

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
HIDDEN = ROOT / "tests" / "hidden"
MASTERS = build.masters(ROOT)
SETS = {M.set_name(m): m for m in MASTERS}
SECRET = os.environ.get("LLMBOOK_TEST_SECRET", "test-secret")   # seeds the hidden checks' inputs


@pytest.fixture(scope="module")
def exercises():
    """Every set's checks, public and hidden, loaded once."""
    return {name: Exercises(name, [HIDDEN], secret=SECRET) for name in SETS}


@pytest.fixture(scope="module")
def answers():
    """Every set's solved and stubbed answers, run in this process."""
    return {name: {role: M.answer_namespace(m, role) for role in ("solution", "student")} for name, m in SETS.items()}


def wrong_answers(name: str) -> dict:
    path = FIXTURES / f"{name}_wrong.py"
    assert path.exists(), f"exercise set {name} needs plausible wrong answers in {path.relative_to(ROOT)}"
    loaded = importlib.util.spec_from_file_location(f"{name}_wrong", path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module.WRONG


QUESTIONS = [(name, qid) for name in SETS for qid in spec.load(name).questions]
WRONG = [(name, qid, label, answer, words) for name in SETS for qid, items in wrong_answers(name).items()
         for label, answer, words in items]


# --- each question: solution passes, stub fails, wrong answers rejected ------------------------


@pytest.mark.parametrize("name,qid", QUESTIONS, ids=lambda v: str(v))
def test_solution_passes_public_and_hidden_checks(exercises, answers, name, qid):
    q = exercises[name].set.questions[qid]
    assert q.of_kind(["public"]) and q.of_kind(["hidden"]), f"{name} {qid} needs public and hidden checks"
    result = exercises[name].run(qid, answers[name]["solution"][q.answer], hidden=True)
    assert result.status == "passed", result.line()


@pytest.mark.parametrize("name,qid", QUESTIONS, ids=lambda v: str(v))
def test_untouched_stub_fails(exercises, answers, name, qid):
    q = exercises[name].set.questions[qid]
    result = exercises[name].run(qid, answers[name]["student"][q.answer], hidden=True)
    assert result.status == "unanswered" and result.score == 0, result.line()


@pytest.mark.parametrize("name,qid", QUESTIONS, ids=lambda v: str(v))
def test_at_least_two_wrong_answers_per_question(name, qid):
    labels = [w[2] for w in WRONG if w[:2] == (name, qid)]
    assert len(labels) >= 2, f"{name} {qid} has {len(labels)} wrong answers in {name}_wrong.py; add at least 2"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # wrong answers overflow and divide by zero
@pytest.mark.parametrize("name,qid,label,answer,words", WRONG, ids=lambda v: v if isinstance(v, str) else "")
def test_hidden_checks_reject_wrong_answer_and_name_the_bug(exercises, name, qid, label, answer, words):
    q = exercises[name].set.questions[qid]
    from llmbook.grading.runner import run_question
    result = run_question(q, answer, ["hidden"])
    assert result.status != "passed", f"{name} {qid}: the hidden checks accept a wrong answer ({label})"
    assert words in result.failure, f"{name} {qid} ({label}): the message should say {words!r}:\n{result.line()}"
    assert run_question(q, answer, ["public", "hidden"]).score == 0


# --- the learner's call ------------------------------------------------------------------------


def tenth(probs):
    return probs[10]


def test_check_prints_one_plain_line_and_never_raises(exercises, answers, capsys):
    ex = exercises["ch01"]
    ex.check("q1", answers["ch01"]["solution"]["perplexity"])
    ex.check("q1", lambda probs: [1.0, 2.0])                      # wrong shape
    ex.check("q1", tenth)                                         # raises
    ex.check("q1", 4.0)                                           # the result, not the function
    ex.check("q9", 4.0)                                           # no such question
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "q1: passed 4/4 public checks",
        "q1: FAILED public check 1/4 (two tokens of probability 1/2: perplexity 2): expected "
        "perplexity([0.5, 0.5]) to be a single number, got an array of shape (2,)",
        "q1: FAILED public check 1/4 (two tokens of probability 1/2: perplexity 2): tenth([0.5, 0.5]) raised "
        "IndexError: list index out of range (at `return probs[10]`)",
        "q1: FAILED expected a function: pass the function itself, check('q1', perplexity), not its result "
        "(got float)",
        "q9: FAILED ch01 has no question 'q9' (questions: q1, q2, q3, q4, q5, q6)",
    ]


def test_wrong_dtype_is_named(exercises, answers):
    solution = answers["ch01"]["solution"]["nnlm_forward"]
    result = exercises["ch01"].run("q3", lambda *a: solution(*a).double())
    assert result.line().endswith("expected the logits with dtype float32, got float64 — keep the parameters' dtype")


def test_endless_loop_that_swallows_exceptions_costs_only_its_question(exercises):
    def stubborn(probs):
        while True:
            try:
                sum(range(1000))
            except Exception:  # noqa: BLE001 - the point of the test
                pass
    result = exercises["ch01"].run("q1", stubborn, limit=0.5)
    assert result.status == "timeout" and result.score == 0
    assert "stopped after the 0.5 s time limit" in result.line()
    with time_limit(5):   # the alarm is disarmed: nothing fires after the question
        sum(range(10**6))


def test_time_limit_raises_in_the_running_code():
    with pytest.raises(QuestionTimeout):
        with time_limit(0.2):
            while True:
                pass


def test_checks_are_seeded_so_random_answers_fail_the_same_way(exercises):
    import numpy as np
    import torch

    def noisy_numpy(probs):
        return float(np.random.rand() + random.random())

    def noisy_torch(ids, C, H, d, U, b):
        return torch.randn(ids.shape[0], C.shape[0])
    for qid, answer in (("q1", noisy_numpy), ("q3", noisy_torch)):
        first, second = (exercises["ch01"].run(qid, answer).line() for _ in range(2))
        assert first == second and "FAILED" in first


def test_batch_mode_defers_checks_to_the_grader(exercises, monkeypatch, capsys):
    monkeypatch.setenv(BATCH_ENV, "batch")
    exercises["ch01"].check("q1", lambda probs: 1 / 0)
    assert capsys.readouterr().out == "q1: checked by the batch grader after the notebook has run\n"


def test_expect_close_names_the_matching_bug():
    with pytest.raises(CheckFailed, match="forgot the tanh"):
        expect_close([1.0, 2.0], [0.5, 0.9], "y", likely={"forgot the tanh": [1.0, 2.0]})
    with pytest.raises(CheckFailed, match=r"expected y of shape \(2, 3\), got \(3, 2\) — axes swapped"):
        expect_close([[0.0] * 2] * 3, [[0.0] * 3] * 2, "y")


def test_tensorflow_noise_is_trimmed_from_a_message():
    noise = ValueError("{{function_node __wrapped__MatMul_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
                       "Matrix size-incompatible: In[0]: [2,3], In[1]: [4,5] [Op:MatMul] name: \nmore lines")

    def matmul(x):
        raise noise
    with pytest.raises(CheckFailed) as e:
        Answer(matmul, "f")(1)
    assert str(e.value) == ("f(1) raised ValueError: Matrix size-incompatible: In[0]: [2,3], In[1]: [4,5] "
                            "(at `raise noise`)")


def test_answer_wrapper_reports_stub_and_exceptions():
    def stub(x):
        raise NotImplementedError
    with pytest.raises(CheckFailed, match="still raises NotImplementedError"):
        Answer(stub, "stub")(1)
    with pytest.raises(CheckFailed, match=r"f\(1\) raised ZeroDivisionError: division by zero"):
        Answer(lambda x: x / 0, "f")(1)


# --- generated files ---------------------------------------------------------------------------


def test_generated_files_are_up_to_date():
    problems = build.stale(ROOT)
    assert not problems, ("generated exercise files differ from their masters; run `make exercises`:\n"
                          + "\n".join(problems))


def copy_generated(tmp_path: Path) -> dict[Path, bytes]:
    """Masters and generated files copied under tmp_path, in the repository's layout; their bytes by path."""
    files = {}
    for master in MASTERS:
        for path in [master, *build.targets(ROOT, master).values()]:
            if not path.exists():      # a set without stored expected values
                continue
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            files[target] = path.read_bytes()
    return files


def test_stale_generated_file_is_reported(tmp_path):
    copy_generated(tmp_path)
    student = build.targets(tmp_path, MASTERS[0])["student"]
    nb = nbformat.read(student, as_version=4)
    nb.cells[2].source += "\n# edited by hand"
    nbformat.write(nb, student)
    (build.targets(tmp_path, MASTERS[0])["hidden"]).unlink()
    problems = build.stale(tmp_path)
    assert any(p.startswith(f"exercises/{MASTERS[0].stem}.ipynb: cell 2 differs") for p in problems), problems
    assert any("hidden" in p and p.endswith("missing") for p in problems), problems


def _same_data(a, b, where: str = "") -> str:
    """'' when two stored-value data forms agree (floats to 1e-6 relative), else where they differ.

    Floats are compared to 1e-6, ten times tighter than the checks that use them (rtol = atol = 1e-5):
    another NumPy or another CPU rounds the references' last bits differently (the Colab-versions job
    records them with numpy 2.0.2), and those bits are not part of what a check decides.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        if "$a" in a and "$a" in b:
            if (a["$a"], a["s"]) != (b["$a"], b["s"]):
                return f"{where}: dtype/shape {a['$a']}{a['s']} != {b['$a']}{b['s']}"
            x, y = np.asarray(a["d"]), np.asarray(b["d"])
            if x.dtype.kind in "fc" or y.dtype.kind in "fc":
                ok = np.allclose(x, y, rtol=1e-6, atol=1e-6, equal_nan=True)
            else:
                ok = np.array_equal(x, y)
            return "" if ok else f"{where}: values differ"
        if sorted(a) != sorted(b):
            return f"{where}: keys {sorted(set(a) ^ set(b))[:3]}"
        return next((d for k in sorted(a) if (d := _same_data(a[k], b[k], f"{where}/{k}"))), "")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} != {len(b)} items"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := _same_data(x, y, f"{where}[{i}]"))), "")
    if isinstance(a, float) or isinstance(b, float):
        return "" if np.isclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True) else f"{where}: {a} != {b}"
    return "" if a == b else f"{where}: {a!r} != {b!r}"


def test_stored_expected_values_are_what_the_hidden_references_give():
    """The public checks' data files are up to date: recording them again gives the same values."""
    import json
    for master in MASTERS:
        path = build.targets(ROOT, master)["expected"]
        if not path.exists():
            continue
        stored = json.loads(path.read_text(encoding="utf-8"))
        again = json.loads(json.dumps(build.record_expected(master, HIDDEN)))
        diff = _same_data(again, stored)
        assert not diff, f"{path.name} is stale ({diff}): run `make exercises`"


def test_stored_value_comparison_sees_a_changed_value():
    """The comparison above is not blind: a changed key, value or shape is reported."""
    form = {"k": {"$a": "<f4", "s": [2], "d": [1.0, 2.0]}, "n": [1, 0.5]}
    assert _same_data(form, {"k": {"$a": "<f4", "s": [2], "d": [1.0, 2.0 + 1e-9]}, "n": [1, 0.5]}) == ""
    assert _same_data(form, {"k": {"$a": "<f4", "s": [2], "d": [1.0, 2.001]}, "n": [1, 0.5]})
    assert _same_data(form, {"k": {"$a": "<f4", "s": [1, 2], "d": [1.0, 2.0]}, "n": [1, 0.5]})
    assert _same_data(form, {"j": form["k"], "n": [1, 0.5]})
    assert _same_data(form, {"k": form["k"], "n": [1, 0.6]})


def test_public_checks_hold_no_reference_implementations():
    """What a learner's copy of llmbook contains: checks and stored values, no solutions to call."""
    for master in MASTERS:
        text = build.targets(ROOT, master)["public"].read_text(encoding="utf-8")
        if "expected_value(" not in text:
            continue                    # not converted yet
        for name in re.findall(r"^def (\w+)\(", text, flags=re.M):
            assert not name.endswith(("_reference", "_numpy", "_formula", "_variants")), (master.name, name)


def test_rebuild_of_an_up_to_date_set_changes_nothing(tmp_path, capsys):
    files = copy_generated(tmp_path)
    build.build(tmp_path)                       # unchanged masters: nothing written, nothing executed
    assert capsys.readouterr().out == ""
    assert {p: p.read_bytes() for p in files} == files


@pytest.mark.parametrize("name", SETS)
def test_student_notebook_has_no_solution_code_and_no_checks(name):
    master = SETS[name]
    nb = nbformat.read(build.targets(ROOT, master)["student"], as_version=4)
    student_lines = {line.strip() for c in nb.cells for line in c.source.splitlines()}
    cells = M.read(master).cells
    secret = [line for c in cells if "answer" in M.tags(c) for line in M.solution_lines(c.source)]
    secret += [line.strip() for c in cells if {"hidden", "public", "solution-only"} & set(M.tags(c))
               for line in c.source.splitlines() if len(line.strip()) > 20]
    leaked = sorted({line for line in secret if line in student_lines})
    assert not leaked, f"{name}: the student notebook contains solution or check lines: {leaked[:5]}"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "the student notebook has outputs"
    stubs = [c for c in nb.cells if "answer" in M.tags(c)]
    assert stubs and all("raise NotImplementedError" in c.source or "= ...  # YOUR ANSWER HERE" in c.source
                         for c in stubs)


@pytest.mark.parametrize("name", SETS)
def test_solutions_notebook_passes_its_public_checks(name):
    nb = nbformat.read(build.targets(ROOT, SETS[name])["solution"], as_version=4)
    lines = [o.text.strip() for c in nb.cells if "grader.check(" in c.source for o in c.outputs if "text" in o]
    questions = spec.load(name).questions
    assert len(lines) == len(questions), lines
    for q, line in zip(questions.values(), lines):     # a choice's public check can only see its format
        assert line.startswith(f"{q.qid}: passed ") if q.callable else \
            line == f"{q.qid}: format OK, graded by the instructor's checks", line


def test_first_cell_is_the_course_set_up_cell():
    for name, master in SETS.items():
        for role in ("student", "solution"):
            first = nbformat.read(build.targets(ROOT, master)[role], as_version=4).cells[0]
            assert first.source == M.colab_cell().source and M.tags(first) == ["remove-cell"]


def test_public_checks_ship_in_the_package_and_hidden_ones_do_not():
    assert sorted(spec.available()) == sorted(SETS)
    package = Path(spec.public_file("ch01")).parent
    assert package == ROOT / "llmbook" / "grading" / "checks"
    for name in SETS:
        hidden = (HIDDEN / f"{name}.py").read_text(encoding="utf-8")
        public = spec.public_file(name).read_text(encoding="utf-8")
        assert "@check(" in hidden and hidden not in public


def test_solution_markers_become_stubs():
    src = "def f(x):\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION\nanswer = 'C'  # SOLUTION"
    assert M.student_source(src) == ("def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError\n"
                                     "answer = ...  # YOUR ANSWER HERE")
    assert M.solution_source(src) == "def f(x):\n    return x + 1\nanswer = 'C'"
    assert M.solution_lines(src) == ["return x + 1", "answer = 'C'"]
    with pytest.raises(ValueError, match="without # END SOLUTION"):
        M.student_source("# BEGIN SOLUTION\nx = 1")


# --- batch grading (the batch itself: tests/test_grading_sandbox.py) ----------------------------


def test_csv_and_summary_format():
    rows = [grade.Row("ann", "q1", 1, 1, "q1: passed"), grade.Row("ann", "total", 1, 1, "")]
    buffer = io.StringIO()
    grade.write_csv(rows, buffer)
    assert buffer.getvalue() == "student,question,score,total,detail\nann,q1,1,1,q1: passed\nann,total,1,1,\n"
    assert grade.summary(rows) == "student   q1  total\nann        1  1/1"


def test_grader_command_rejects_a_wrong_set_or_hidden_folder(tmp_path, capsys):
    (tmp_path / "ann.ipynb").write_text("{}", encoding="utf-8")
    assert grade.main([str(tmp_path), "--set", "ch99"]) == 2
    assert grade.main([str(tmp_path), "--set", "ch01", "--hidden", str(tmp_path)]) == 2
    assert grade.main([str(tmp_path / "missing"), "--set", "ch01"]) == 2
    err = capsys.readouterr().err
    assert "no exercise set 'ch99'" in err and "no hidden checks for ch01" in err and "no .ipynb submissions" in err


def test_grader_scores_an_unreadable_file_zero(tmp_path):
    bad = tmp_path / "dave.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    rows = grade.grade_notebook(bad, "ch01", [str(HIDDEN)], secret=SECRET)
    assert [r.score for r in rows] == [0] * 6 and "could not be read" in rows[0].detail
    assert os.path.exists(bad)


def test_split_prints_are_merged_into_one_output():
    """A loaded kernel may send one print as two stream messages; the build merges them, so a
    solutions notebook's outputs do not depend on the load of the machine that executed it."""
    stream = nbformat.v4.new_output
    cell = nbformat.v4.new_code_cell("print('q5: passed')", outputs=[
        stream("stream", name="stdout", text="q5: passed 2/2 public checks"), stream("stream", name="stdout", text="\n"),
        stream("stream", name="stderr", text="warning\n"), stream("stream", name="stdout", text="after\n")])
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("text")])
    build.coalesce_streams(nb)
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [
        ("stdout", "q5: passed 2/2 public checks\n"), ("stderr", "warning\n"), ("stdout", "after\n")]
    assert "outputs" not in nb.cells[1]


# --- functions a question asks the learner to write ------------------------------------------------


def test_a_forbidden_call_is_caught_through_an_alias_and_the_watch_cannot_be_switched_off():
    import sys

    from llmbook.grading.forbid import ForbiddenCall, forbidding
    from llmbook.sampling import top_k_filter as renamed
    logits = np.array([1.0, 3.0, 2.0])
    with forbidding(["numpy.linalg.svd"]):                 # other calls pass through
        renamed(logits, 2)
    with pytest.raises(ForbiddenCall, match="called llmbook.sampling.top_k_filter"):
        with forbidding(["llmbook.sampling.top_k_filter"]):
            renamed(logits, 2)
    assert sys.getprofile() is None, "the watch must be removed after the answer ran"
    with pytest.raises(ForbiddenCall, match="sys.setprofile"):
        with forbidding(["llmbook.sampling.top_k_filter"]):
            sys.setprofile(None)
    with pytest.raises(ValueError, match="names no importable function"):
        with forbidding(["llmbook.sampling.no_such_filter"]):
            pass


@pytest.mark.parametrize("attack", ["off_and_on", "thread", "pool", "code_copy", "settrace", "subprocess"])
def test_the_ways_around_the_watch_a_probe_found_fail_the_answer(attack):
    """Switching the watch off and on again, running the call on another thread, or calling a copy of
    the function's code each fail the answer, with a message that says what it did."""
    import concurrent.futures
    import sys
    import threading

    import llmbook.sampling
    from llmbook.grading.forbid import ForbiddenCall, forbidding
    logits = np.array([1.0, 3.0, 2.0])
    banned = llmbook.sampling.top_k_filter

    def run():
        if attack == "off_and_on":
            watch = sys.getprofile()
            sys.setprofile(None)
            out = banned(logits, 2)
            sys.setprofile(watch)
            return out
        if attack == "thread":
            box = []
            t = threading.Thread(target=lambda: box.append(banned(logits, 2)))
            t.start()
            t.join()
            return box[0]
        if attack == "pool":
            return pool.submit(banned, logits, 2).result()
        if attack == "code_copy":
            copy = types.FunctionType(banned.__code__.replace(co_firstlineno=banned.__code__.co_firstlineno + 1),
                                      banned.__globals__)
            return copy(logits, 2)
        if attack == "subprocess":
            import subprocess
            code = "import llmbook.sampling, numpy; print(llmbook.sampling.top_k_filter(numpy.ones(3), 2))"
            return subprocess.run([sys.executable, "-c", code], capture_output=True).stdout
        sys.settrace(None)
        return banned(logits, 2)

    import types
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(int).result()                  # the pool's thread exists before the answer runs
        with pytest.raises(ForbiddenCall, match="may not do that"):
            with forbidding(["llmbook.sampling.top_k_filter"]):
                run()
    assert sys.getprofile() is None
    with forbidding(["llmbook.sampling.top_k_filter"]):      # an honest answer with the same data passes
        np.where(logits >= np.sort(logits)[-2], logits, -np.inf)


def test_a_forbidden_name_whose_library_is_missing_is_not_watched(tmp_path, monkeypatch):
    """A twin in a module that needs an absent library (llmbook.tf without TensorFlow) cannot be called:
    the watch skips it and still catches the others; a misspelt name still fails loudly."""
    from llmbook.grading.forbid import ForbiddenCall, forbidding, resolve
    (tmp_path / "needs_absent_lib.py").write_text("import no_such_library_here\n\ndef f():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve("needs_absent_lib.f") is None
    with pytest.raises(ForbiddenCall, match="called llmbook.sampling.top_k_filter"):
        with forbidding(["needs_absent_lib.f", "llmbook.sampling.top_k_filter"]):
            __import__("llmbook.sampling").sampling.top_k_filter(np.array([1.0, 2.0]), 1)
    with pytest.raises(ValueError, match="names no importable function"):
        resolve("llmbook.sampl.top_k_filter")
