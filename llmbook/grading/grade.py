"""Batch grading: `python -m llmbook.grading.grade SUBMISSIONS --set ch01 --hidden DIR --out scores.csv`.

Each SUBMISSIONS/*.ipynb (student = file stem) is run top to bottom in a fresh kernel, from an
in-memory copy in a temporary folder (the file itself is only read), with a per-cell timeout that
interrupts the kernel and moves on, and errors allowed. Then one grading cell per question runs that
question's public and hidden checks on the answer the notebook defined, under the question's time
limit. The CSV has one row per student and question plus a `total` row per student.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from llmbook.grading import BATCH_ENV, Exercises
from llmbook.grading.runner import Result
from llmbook.grading.spec import load

MARK = "@@llmbook-grade "          # prefix of the one line a grading cell prints
CELL_TIMEOUT = 120                 # seconds a submitted cell may run before the kernel is interrupted
GRADING_MARGIN = 60                # seconds a grading cell gets beyond its question's limit (imports, set-up)
FIELDS = ["student", "question", "score", "total", "detail"]

_cache: dict = {}


def grade_here(set_name: str, qid: str, hidden: list[str], namespace: dict, limit: float | None = None) -> None:
    """Inside a kernel: check the answer to `qid` found in `namespace` and print one MARK line of JSON."""
    key = (set_name, tuple(hidden))
    if key not in _cache:
        _cache[key] = Exercises(set_name, hidden)
    exercises = _cache[key]
    q = exercises.set.questions[qid]
    if q.answer in namespace:
        result = exercises.run(qid, namespace[q.answer], hidden=True, limit=limit)
    else:
        thing = "function" if q.callable else "variable"
        result = Result(qid, q.points, 0, {}, f"no {thing} named {q.answer} in the notebook (did its cell fail, "
                                              f"or was it renamed?)", "missing")
    print(MARK + json.dumps({"qid": qid, "score": result.score, "total": q.points, "detail": result.line()}))


@dataclass
class Row:
    student: str
    question: str
    score: int
    total: int
    detail: str


def grading_cell(set_name: str, qid: str, hidden: list[str], limit: float | None) -> nbformat.NotebookNode:
    source = ("from llmbook.grading.grade import grade_here as _llmbook_grade_here\n"
              f"_llmbook_grade_here({set_name!r}, {qid!r}, {hidden!r}, globals(), {limit!r})")
    return nbformat.v4.new_code_cell(source, metadata={"llmbook_grade": qid})


def grade_notebook(path: Path, set_name: str, hidden: list[str], cell_timeout: float = CELL_TIMEOUT,
                   limit: float | None = None) -> list[Row]:
    """Rows (one per question) for the submission at `path`; never raises for a broken submission."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    from llmbook import nbclient_patch
    nbclient_patch.apply()          # a submission that displays widgets must not stall its cells

    student = path.stem
    questions = Exercises(set_name, hidden).set.questions
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - an unreadable file scores 0, with the reason
        return [Row(student, q.qid, 0, q.points, f"{q.qid}: FAILED — the notebook could not be read "
                                                 f"({type(e).__name__}: {e})") for q in questions.values()]
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if c.cell_type in ("code", "markdown", "raw")]
    nb.cells += [grading_cell(set_name, q.qid, hidden, limit) for q in questions.values()]

    def timeout_for(cell) -> float:
        qid = cell.metadata.get("llmbook_grade")
        return (questions[qid].limit if limit is None else limit) + GRADING_MARGIN if qid else cell_timeout

    env = {**os.environ, BATCH_ENV: "batch"}
    died = ""
    with tempfile.TemporaryDirectory(prefix=f"llmbook-grade-{student}-") as tmp:
        client = NotebookClient(nb, timeout_func=timeout_for, allow_errors=True, interrupt_on_timeout=True,
                                error_on_timeout={"ename": "CellTimeoutError", "evalue": "interrupted: the cell "
                                                  "ran past its timeout", "traceback": []},
                                kernel_name="python3", record_timing=False, shutdown_kernel="immediate",
                                resources={"metadata": {"path": tmp}})
        try:
            client.execute(env=env)
        except DeadKernelError:
            died = "the kernel died before this question was graded (did a cell crash Python or call os._exit?)"
        except Exception as e:  # noqa: BLE001 - the grader keeps going with the next student
            died = f"the notebook could not be run ({type(e).__name__}: {e})"
    return [_row(student, q, _graded(nb, q.qid), died, q.limit if limit is None else limit)
            for q in questions.values()]


def _graded(nb, qid: str) -> dict | None:
    for cell in nb.cells:
        if cell.metadata.get("llmbook_grade") == qid:
            for out in cell.get("outputs", []):
                for line in out.get("text", "").splitlines() if out.get("output_type") == "stream" else []:
                    if line.startswith(MARK):
                        return json.loads(line[len(MARK):])
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            return {"error": f"{errors[0]['ename']}: {errors[0]['evalue']}" if errors else ""}
    return None


def _row(student: str, q, graded: dict | None, died: str, limit: float) -> Row:
    if graded and "score" in graded:
        return Row(student, q.qid, int(graded["score"]), q.points, graded["detail"])
    if graded and graded.get("error", "").startswith(("KeyboardInterrupt", "CellTimeoutError")):
        why = (f"grading was interrupted: the answer ignored the {limit:g} s time limit "
               f"(an endless loop that catches every exception?)")
    elif graded and graded.get("error"):
        why = f"the grading cell raised {graded['error']}"
    else:
        why = died or "the grading cell did not run"
    return Row(student, q.qid, 0, q.points, f"{q.qid}: FAILED — {why}")


def grade_folder(folder: Path, set_name: str, hidden: list[str], cell_timeout: float = CELL_TIMEOUT,
                 limit: float | None = None, log=sys.stderr) -> list[Row]:
    """Rows for every *.ipynb in `folder` (sorted by name), plus one `total` row per student."""
    paths = sorted(Path(folder).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no .ipynb submissions in {folder}")
    hidden = [str(Path(h).resolve()) for h in hidden]
    rows = []
    for path in paths:
        start = time.perf_counter()
        student_rows = grade_notebook(path, set_name, hidden, cell_timeout, limit)
        score, total = sum(r.score for r in student_rows), sum(r.total for r in student_rows)
        rows += student_rows + [Row(path.stem, "total", score, total, "")]
        print(f"grade: {path.stem}: {score}/{total} ({time.perf_counter() - start:.1f} s)", file=log, flush=True)
    return rows


def write_csv(rows: list[Row], out) -> None:
    """Write the rows as CSV (header student,question,score,total,detail)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for r in rows:
        writer.writerow([r.student, r.question, r.score, r.total, r.detail])


def summary(rows: list[Row]) -> str:
    """A plain-text table: one line per student, one column per question, then the total."""
    qids = list(dict.fromkeys(r.question for r in rows if r.question != "total"))
    students = list(dict.fromkeys(r.student for r in rows))
    width = max(len("student"), *(len(s) for s in students))
    lines = [f"{'student':<{width}}  " + "  ".join(f"{q:>3}" for q in qids) + "  total"]
    for s in students:
        mine = {r.question: r for r in rows if r.student == s}
        lines.append(f"{s:<{width}}  " + "  ".join(f"{mine[q].score:>3}" for q in qids)
                     + f"  {mine['total'].score}/{mine['total'].total}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmbook.grading.grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files (student = file stem)")
    parser.add_argument("--set", required=True, dest="set_name", help="exercise set, e.g. ch01")
    parser.add_argument("--hidden", action="append", default=[], metavar="DIR",
                        help="folder with hidden checks <set>.py (repeatable); without it only public checks run")
    parser.add_argument("--out", type=Path, help="CSV file to write (default: print CSV to stdout)")
    parser.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT,
                        help=f"seconds per submitted cell before it is interrupted (default {CELL_TIMEOUT})")
    parser.add_argument("--limit", type=float, help="time limit per question in s (default: each question's own)")
    args = parser.parse_args(argv)
    try:
        load(args.set_name, args.hidden)                      # fail early on a wrong set or hidden folder
        if not sorted(args.submissions.glob("*.ipynb")):
            raise FileNotFoundError(f"no .ipynb submissions in {args.submissions}")
    except (ValueError, FileNotFoundError) as e:
        print(f"grade: error: {e}", file=sys.stderr)
        return 2
    if not args.hidden:
        print("grade: no --hidden folder: grading with the public checks only", file=sys.stderr)
    rows = grade_folder(args.submissions, args.set_name, args.hidden, args.cell_timeout, args.limit)
    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            write_csv(rows, f)
    else:
        write_csv(rows, sys.stdout)
    print(summary(rows), file=sys.stderr if not args.out else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
