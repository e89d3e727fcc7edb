"""The batch grader against hostile submissions: each attack of issue 14 gains nothing and breaks nothing.

One batch (module fixture, graded once) holds honest submissions (alice and zoe solved, bob the untouched
stub, carol with crashing cells and endless loops, dan with one wrong choice) and one submission per
attack (20 in all). An attack on the stub must score what the stub scores (0); an attack on a solved
notebook (crashes, kills, endless loops inside one answer) must cost that one question only; the honest
submissions graded after the attacks keep their full marks, the hidden checks and the files outside the
submission stay intact.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from llmbook.grading import build, grade, master as M, remote
from llmbook.grading.worker import sandbox_available

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
MASTER = next(m for m in build.masters(ROOT) if M.set_name(m) == "ch01")
SECRET = "test-secret"
FULL = {"q1": 1, "q2": 2, "q3": 2, "q4": 2, "q5": 1, "q6": 1}
ZERO = dict.fromkeys(FULL, 0)


def _stub() -> nbformat.NotebookNode:
    return nbformat.read(build.targets(ROOT, MASTER)["student"], as_version=4)


def _solved() -> nbformat.NotebookNode:
    nb = _stub()
    solved = [M.solution_source(c.source) for c in M.read(MASTER).cells if "answer" in M.tags(c)]
    for cell, source in zip([c for c in nb.cells if "answer" in M.tags(c)], solved):
        cell.source = source
    return nb


def _with(nb, code: str, after: str = "import numpy as np") -> nbformat.NotebookNode:
    """`nb` with a code cell `code` inserted after the first cell starting with `after`."""
    nb = copy.deepcopy(nb)
    at = next(i for i, c in enumerate(nb.cells) if c.source.startswith(after))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(code))
    return nb


def _replace(nb, start: str, code: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if c.source.startswith(start))
    cell.source = code
    return nb


def _carol() -> nbformat.NotebookNode:
    """The honest mistakes of ch01_scores.csv: an endless loop, a crashing cell, a wrong choice."""
    nb = _replace(_solved(), "def perplexity", (
        "def perplexity(probs):\n    while True:\n        try:\n"
        "            value = float(np.exp(-np.mean(np.log(probs)))) + 1.0\n"
        "            if value < 1.0:\n                return value\n"
        "        except Exception:\n            pass"))
    cell = next(c for c in nb.cells if c.source.startswith("def kneser_ney_bigram"))
    cell.source = "counts_table = load_my_counts()\n\n" + cell.source
    nb = _replace(nb, "answer_q5", 'answer_q5 = "B"')
    return _with(nb, "while True:   # an endless loop at the top level\n    pass", after="import torch")


FORGE = ('for q, n in [("q1", 1), ("q2", 2), ("q3", 2), ("q4", 2), ("q5", 1), ("q6", 1)]:\n'
         '    print("@@llmbook-grade " + \'{"qid": "%s", "score": 1000, "total": %d, "detail": "ok"}\' % (q, n))')
PATCH = ("import llmbook.grading.runner as R, llmbook.grading.grade as G, llmbook.grading as L\n"
         "R.Result.score = property(lambda s: 1000)\n"
         "R.run_question = lambda q, *a, **k: R.Result(q.qid, q.points, 1, {'public': 1})\n"
         "L.Exercises.run = lambda self, qid, *a, **k: R.Result(qid, 1000, 1, {'public': 1})")


def _hidden_path_attack(action: str) -> str:
    return ("import glob, os, re\n"
            "found = []\n"
            "for place in [HIDDEN_DIR]:   # the instructor's hidden folder (the repository's copy is public)\n"
            "    for path in glob.glob(os.path.join(place, '*.py')):\n"
            "        try:\n"
            + action +
            "        except Exception:\n"
            "            pass\n")


HIDDEN_READ = ("            found.append(open(path).read())\n")
HIDDEN_WRITE = ("            open(path, 'w').write('')\n")
GLOBALS = ("from llmbook.grading import Exercises\n"
           "g = {}\n"
           "for q in Exercises('ch01').set.questions.values():\n"
           "    for c in q.checks:\n"
           "        g.update(c.fn.__globals__)\n"
           "ref = g.get('_q2_reference')\n"
           "kneser_ney_bigram = (lambda counts, discount=0.75: ref(counts, discount)) if ref else None\n"
           "t = g.get('_q6_reference')\n"
           "temperature_probs = (lambda logits, T: t(logits, T)) if t else None\n"
           "n = g.get('_nnlm_numpy')\n"
           "def nnlm_forward(ids, C, H, d, U, b):\n"
           "    import torch\n"
           "    return torch.as_tensor(n(ids, C, H, d, U, b), dtype=C.dtype)\n")
EXIT_IN_ANSWER = "def perplexity(probs):\n    import os\n    os._exit(1)"
KILL_PARENT = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
KILL_IN_ANSWER = ("def temperature_probs(logits, T):\n    import os, signal\n"
                  "    os.kill(os.getppid(), signal.SIGKILL)\n    os.killpg(0, signal.SIGKILL)")
LOOP_IN_ANSWER = ("def perplexity(probs):\n    while True:\n        try:\n            pass\n"
                  "        except BaseException:\n            pass")
MEMORY_IN_ANSWER = "def perplexity(probs):\n    hoard = bytearray(20 << 30)\n    return 1.0"
HUGE_FILE = ("with open('big.bin', 'wb') as f:\n    for _ in range(1024):\n"
             "        f.write(bytes(1 << 20))")
SYSTEM_EXIT_IN_ANSWER = "def temperature_probs(logits, T):\n    raise SystemExit(0)"


def _outside(victim: Path) -> str:
    return (f"import os, shutil\n"
            f"for action in (lambda: open({str(victim)!r}, 'w').write('gone'),\n"
            f"               lambda: os.remove({str(victim)!r}),\n"
            f"               lambda: open({str(victim.parent / 'planted.txt')!r}, 'w').write('x'),\n"
            f"               lambda: open(os.path.expanduser('~/../planted.txt'), 'w').write('x')):\n"
            f"    try:\n        action()\n    except Exception:\n        pass")


ENV = ("import os\n"
       "secret = os.environ.get('LLMBOOK_GRADING_SECRET') or os.environ.get('LLMBOOK_TEST_CANARY')\n"
       "if secret:\n    answer_q5 = 'C'\n")


def _batch(tmp: Path) -> dict:
    """Write every submission; return {student: (expected scores, why)}."""
    folder = tmp / "submissions"
    folder.mkdir()
    victim = tmp / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    hidden = tmp / "hidden"
    shutil.copytree(ROOT / "tests" / "hidden", hidden)
    prefix = f"HIDDEN_DIR = {str(hidden)!r}\n"
    stub, solved = _stub(), _solved()
    plan = {
        "alice": (solved, FULL),
        "bob": (stub, ZERO),
        "carol": (_carol(), {**FULL, "q1": 0, "q2": 0, "q5": 0}),
        "h01_forged_line": (_with(stub, FORGE), ZERO),
        "h02_patched_result": (_with(stub, PATCH), ZERO),
        "h03_read_hidden": (_with(stub, prefix + _hidden_path_attack(HIDDEN_READ)
                                  + "m = re.search(r'letter != \"(.)\"', ''.join(found))\n"
                                    "answer_q5 = m.group(1) if m else ...\n", after="answer_q5"), ZERO),
        "h04_overwrite_hidden": (_with(stub, prefix + _hidden_path_attack(HIDDEN_WRITE)), ZERO),
        "h05_reference_globals": (_with(stub, GLOBALS, after="def temperature_probs"), ZERO),
        "h06_exit_in_answer": (_replace(solved, "def perplexity", EXIT_IN_ANSWER), {**FULL, "q1": 0}),
        "h07_exit_in_cell": (_with(solved, "import os\nos._exit(3)"), FULL),
        "h08_kill_parent_cell": (_with(solved, KILL_PARENT), FULL),
        "h09_kill_parent_answer": (_replace(solved, "def temperature_probs", KILL_IN_ANSWER), {**FULL, "q6": 0}),
        "h10_write_outside": (_with(_with(stub, "import llmbook_no_such_module"), _outside(victim)), ZERO),
        "h11_read_env": (_with(stub, ENV, after="answer_q5"), ZERO),
        "h12_endless_loop": (_replace(solved, "def perplexity", LOOP_IN_ANSWER), {**FULL, "q1": 0}),
        "h13_memory_hog": (_replace(solved, "def perplexity", MEMORY_IN_ANSWER), {**FULL, "q1": 0}),
        "h14_huge_file": (_with(solved, HUGE_FILE), FULL),
        "h15_system_exit_in_answer": (_replace(solved, "def temperature_probs", SYSTEM_EXIT_IN_ANSWER),
                                      {**FULL, "q6": 0}),
        "dan": (_with(solved, "answer_q5 = 'A'", after="answer_q5"), {**FULL, "q5": 0}),
        "zoe": (solved, FULL),
    }
    for student, (nb, _) in plan.items():
        nbformat.write(nb, folder / f"{student}.ipynb")
    return {"folder": folder, "hidden": hidden, "victim": victim, "plan": plan}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The whole batch graded once, in a subprocess (so a kill that reached the grader would show)."""
    tmp = tmp_path_factory.mktemp("hostile")
    made = _batch(tmp)
    hidden_before = {p.name: p.read_bytes() for p in made["hidden"].iterdir()}
    out = tmp / "scores.csv"
    env = {**os.environ, "LLMBOOK_GRADING_SECRET": SECRET, "LLMBOOK_TEST_CANARY": "grader-only"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llmbook.grading.grade", str(made["folder"]), "--set", "ch01",
                           "--hidden", str(made["hidden"]), "--out", str(out), "--cell-timeout", "20"],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=1500)
    seconds = time.perf_counter() - start
    rows = list(csv.DictReader(out.open(encoding="utf-8"))) if out.exists() else []
    return {**made, "proc": proc, "rows": rows, "out": out, "seconds": seconds, "hidden_before": hidden_before}


def _scores(batch, student: str) -> dict:
    return {r["question"]: int(r["score"]) for r in batch["rows"] if r["student"] == student}


def test_the_batch_finishes_and_reports_every_student(batch):
    assert batch["proc"].returncode == 0, batch["proc"].stderr[-3000:]
    students = {r["student"] for r in batch["rows"]}
    assert students == set(batch["plan"]), students
    print(f"hostile batch: {len(students)} submissions in {batch['seconds']:.0f} s")


@pytest.mark.parametrize("student", [
    "alice", "bob", "carol", "h01_forged_line", "h02_patched_result", "h03_read_hidden", "h04_overwrite_hidden",
    "h05_reference_globals", "h06_exit_in_answer", "h07_exit_in_cell", "h08_kill_parent_cell",
    "h09_kill_parent_answer", "h10_write_outside", "h11_read_env", "h12_endless_loop", "h13_memory_hog",
    "h14_huge_file", "h15_system_exit_in_answer", "dan", "zoe"])
def test_each_submission_scores_what_its_honest_part_deserves(batch, student):
    want = batch["plan"][student][1]
    got = _scores(batch, student)
    assert {q: got.get(q) for q in want} == want, [r for r in batch["rows"] if r["student"] == student]
    assert got["total"] == sum(want.values())


def test_honest_rows_match_the_fixture(batch):
    expected = list(csv.DictReader((FIXTURES / "ch01_scores.csv").open(encoding="utf-8")))
    got = [r for r in batch["rows"] if r["student"] in ("alice", "bob", "carol")]
    assert got == expected


def test_scores_never_exceed_the_points(batch):
    assert all(0 <= int(r["score"]) <= int(r["total"]) for r in batch["rows"])


def test_hidden_checks_are_unchanged_and_unread(batch):
    after = {p.name: p.read_bytes() for p in batch["hidden"].iterdir()}
    assert after == batch["hidden_before"]
    assert _scores(batch, "zoe")["total"] == 9     # graded after the overwrite attempt, with every hidden check
    zoe = [r["detail"] for r in batch["rows"] if r["student"] == "zoe" and r["question"] == "q2"]
    assert "hidden)" in zoe[0] and "0 hidden" not in zoe[0], zoe


def test_files_outside_the_submission_are_untouched(batch):
    assert batch["victim"].read_text(encoding="utf-8") == "keep me"
    assert not (batch["victim"].parent / "planted.txt").exists()
    before = {p.name for p in batch["folder"].iterdir()}
    assert before == {f"{s}.ipynb" for s in batch["plan"]}


def test_crashes_are_reported_as_such(batch):
    detail = {(r["student"], r["question"]): r["detail"] for r in batch["rows"]}
    assert "died" in detail["h06_exit_in_answer", "q1"], detail["h06_exit_in_answer", "q1"]
    assert "died" in detail["h09_kill_parent_answer", "q6"], detail["h09_kill_parent_answer", "q6"]
    assert "time limit" in detail["h12_endless_loop", "q1"], detail["h12_endless_loop", "q1"]
    note = "(note: a cell raised ModuleNotFoundError: No module named 'llmbook_no_such_module')"
    assert detail["h10_write_outside", "q1"].endswith(note), detail["h10_write_outside", "q1"]


def test_the_record_resumes_a_batch_without_grading_again(batch):
    record = batch["out"].with_suffix(".jsonl")
    lines = record.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(batch["plan"])
    out2 = batch["out"].with_name("again.csv")
    env = {**os.environ, "LLMBOOK_GRADING_SECRET": SECRET}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llmbook.grading.grade", str(batch["folder"]), "--set", "ch01",
                           "--hidden", str(batch["hidden"]), "--out", str(out2), "--log", str(record)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.perf_counter() - start < 60
    assert proc.stderr.count("already graded") == len(batch["plan"])
    assert out2.read_text(encoding="utf-8") == batch["out"].read_text(encoding="utf-8")


def test_sandbox_is_used_where_bubblewrap_exists(batch):
    if sandbox_available():
        assert "WITHOUT a sandbox" not in batch["proc"].stderr
    else:
        assert "WITHOUT a sandbox" in batch["proc"].stderr


def test_a_printed_result_line_is_not_a_message():
    """Only framed messages carrying the run's token count; stray bytes break the protocol, not the grader."""
    r, w = os.pipe()
    os.write(w, b'@@llmbook-grade {"qid": "q1", "score": 1000}\n')
    with pytest.raises(remote.WorkerDied, match="header"):
        remote.Channel(r, w, "token", trusted=True).recv()
    os.close(r)
    os.close(w)
    r, w = os.pipe()
    remote.Channel(r, w, "forged", trusted=True).send({"op": "return", "value": 1000})
    with pytest.raises(remote.WorkerDied, match="token"):
        remote.Channel(r, w, "token", trusted=True).recv()
    os.close(r)
    os.close(w)


def test_hidden_checks_need_a_secret_and_refuse_an_empty_file(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LLMBOOK_GRADING_SECRET", raising=False)
    (tmp_path / "ann.ipynb").write_text("{}", encoding="utf-8")
    assert grade.main([str(tmp_path), "--set", "ch01", "--hidden", str(ROOT / "tests" / "hidden")]) == 2
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / "ch01.py").write_text("", encoding="utf-8")
    assert grade.main([str(tmp_path), "--set", "ch01", "--hidden", str(tmp_path / "hidden"), "--secret", "s"]) == 2
    (tmp_path / "hidden" / "ch01.py").write_text("# nothing here\nx = 1\n", encoding="utf-8")
    assert grade.main([str(tmp_path), "--set", "ch01", "--hidden", str(tmp_path / "hidden"), "--secret", "s"]) == 2
    err = capsys.readouterr().err
    assert "need the instructor's secret" in err and "is empty" in err and "defines no checks" in err


def test_the_secret_changes_the_hidden_inputs():
    from llmbook.grading.spec import secret_seed
    assert secret_seed("a", "ch01", 1) == secret_seed("a", "ch01", 1) != secret_seed("b", "ch01", 1)


def test_a_worker_killing_its_parent_does_not_reach_the_grader(tmp_path):
    """With and without the sandbox: the kill ends the worker (or nothing), never this process."""
    from llmbook.grading.worker import Worker
    kill = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.killpg(os.getpgid(0), signal.SIGKILL)"
    for sandbox in (False, True) if sandbox_available() else (False,):
        worker = Worker(tmp_path, sandbox)
        worker.start()
        try:
            try:
                worker.ask("cell", 30, source=kill, index=0, timeout=10)
                survived = worker.ask("cell", 30, source="x = 1", index=1, timeout=10) == ""
            except remote.WorkerDied:
                survived = False
        finally:
            worker.kill()
        # without the sandbox the worker's parent is its keeper, and its group its own: it dies alone;
        # in the sandbox its parent is the PID namespace's init, which it cannot signal: it lives on
        assert survived == sandbox, (sandbox, survived)


@pytest.mark.skipif(not sandbox_available(), reason="bubblewrap is not installed or cannot start here")
def test_the_sandbox_shows_llmbook_from_a_clone_under_tmp(tmp_path, monkeypatch):
    """A clone under /tmp (which the sandbox replaces by an empty folder) still starts its own worker."""
    import llmbook
    from llmbook.grading import worker as W
    if Path("/tmp").resolve() not in tmp_path.resolve().parents:
        pytest.skip("pytest's temporary folder is not under /tmp here")
    clone = tmp_path / "clone"
    (clone / "llmbook").mkdir(parents=True)
    (clone / "llmbook" / "__init__.py").write_text("WHERE = 'the clone under /tmp'\n", encoding="utf-8")
    monkeypatch.setattr(llmbook, "__file__", str(clone / "llmbook" / "__init__.py"))
    (tmp_path / "work").mkdir()
    worker = W.Worker(tmp_path / "work", sandbox=True)
    box = worker.command(0, 1)
    box = box[:box.index("--")]
    probe = "import llmbook; print(llmbook.WHERE)"
    proc = subprocess.run(box + ["--", sys.executable, "-c", probe], capture_output=True, text=True,
                          env=worker.env(), timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "the clone under /tmp", (proc.stdout, proc.stderr[-2000:])


def test_the_protocol_carries_data_callbacks_in_place_changes_and_gradients(tmp_path):
    """A student's function called from the grader: values, a grader callback, an in-place edit, a gradient."""
    import numpy as np
    import torch
    from llmbook.grading.worker import Worker
    worker = Worker(tmp_path, sandbox_available())
    worker.start()
    try:
        source = ("import numpy as np, torch\n"
                  "def f(a, step, t, s=None):\n"
                  "    a[0] = 42.0\n"
                  "    return {'twice': step(a) * 2, 'square': (t ** 2).sum(), 'n': 3, 'name': 'ok',\n"
                  "            'scalar': (type(s).__name__, s, np.float32(s))}\n")
        assert worker.ask("cell", 60, source=source, index=0, timeout=60) == ""
        f = worker.ask("get", 30, name="f")
        a = np.zeros(3)
        t = torch.tensor([1.0, 2.0], requires_grad=True)
        got = f(a, lambda x: x + 1, t, s=np.float64(1.5))
        assert a.tolist() == [42.0, 0.0, 0.0]                         # the in-place edit came back
        assert got["twice"].tolist() == [86.0, 2.0, 2.0] and got["n"] == 3 and got["name"] == "ok"
        name, value, back = got["scalar"]                             # NumPy scalars keep their type both ways
        assert (name, value, type(value), type(back)) == ("float64", 1.5, np.float64, np.float32)
        assert f.__name__ == "f" and f(np.zeros(3), lambda x: x, t.detach())["n"] == 3
        got["square"].backward()                                      # d/dt sum(t^2) = 2t, computed remotely
        assert t.grad.tolist() == [2.0, 4.0]
        with pytest.raises(ZeroDivisionError):
            worker.ask("cell", 30, source="def g():\n    return 1 / 0", index=1, timeout=10)
            worker.ask("get", 30, name="g")()
    finally:
        worker.kill()
