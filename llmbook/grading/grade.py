"""Batch grading: `python -m llmbook.grading.grade SUBMISSIONS --set ch01 --hidden DIR --secret TEXT --out scores.csv`.

Trusted and untrusted code never share a process. Each SUBMISSIONS/*.ipynb (student = file stem) is
copied into a fresh temporary folder, and its code cells run one by one in a worker process
(llmbook.grading.worker): in a bubblewrap sandbox where it exists (that folder is the only writable
place; no network, empty environment, own PID namespace, resource limits), else with the limits alone.
Then, for each question, the grader looks the answer up in the worker and runs the public and hidden
checks in its own process: the student's function is called through a data-only pipe
(llmbook.grading.remote), so the checks, the expected values, the hidden files and the scores are out
of the student's reach. A worker that dies or hangs costs the current cell or question only: it is
restarted (without the cells that killed it) and grading goes on. Each student's rows are appended to
a JSON-lines log as soon as they are graded (a rerun resumes after the last graded student), and the
CSV (one row per student and question, plus a `total` row) is built from it at the end.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from llmbook.grading import remote
from llmbook.grading.runner import Result, run_question
from llmbook.grading.spec import SECRET_ENV, ExerciseSet, load
from llmbook.grading.worker import Worker, sandbox_available

CELL_TIMEOUT = 120                 # seconds a submitted cell may run before the worker is stopped
GRADING_MARGIN = 60                # seconds a question gets beyond its limit before the worker is stopped
STARTS = 6                         # worker starts per submission before the remaining questions score 0
FIELDS = ["student", "question", "score", "total", "detail"]


@dataclass
class Row:
    student: str
    question: str
    score: int
    total: int
    detail: str


class Session:
    """One submission's worker: its cells run once, re-run (minus the fatal ones) after a restart."""

    def __init__(self, cells: list[str], folder: Path, sandbox: bool, hide: list[Path], cell_timeout: float):
        self.cells, self.folder, self.sandbox, self.hide = cells, folder, sandbox, hide
        self.cell_timeout = cell_timeout
        self.fatal: set[int] = set()      # cells that killed or hung the worker: skipped after a restart
        self.errors: dict[int, str] = {}  # cell index -> the exception it raised ('Type: message')
        self.worker: Worker | None = None
        self.starts = 0

    def ready(self) -> bool:
        """A live worker whose cells have run; False when the restarts are used up."""
        while self.worker is None or self.worker.channel is None or self.worker.channel.broken:
            if self.worker is not None:
                self.worker.kill()
            if self.starts >= STARTS:
                return False
            self.starts += 1
            self.worker = Worker(self.folder, self.sandbox, self.hide)
            self.worker.start()
            for i, source in enumerate(self.cells):
                if i in self.fatal:
                    continue
                try:
                    error = self.worker.ask("cell", self.cell_timeout + 10, source=source, index=i,
                                            timeout=self.cell_timeout)
                    if error and isinstance(error, str):
                        self.errors.setdefault(i, error[:300])
                except (remote.WorkerDied, remote.WorkerTimeout) as e:
                    self.errors.setdefault(i, "the process died" if isinstance(e, remote.WorkerDied)
                                           else f"no answer within {self.cell_timeout + 10:g} s")
                    self.fatal.add(i)
                    self.worker.channel.broken = True
                    break
        return True

    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None


def grade_notebook(path: Path, set_name: str, hidden: list[str], cell_timeout: float = CELL_TIMEOUT,
                   limit: float | None = None, secret: str | None = None, sandbox: bool | None = None,
                   exercise_set: ExerciseSet | None = None, hide: list[Path] = ()) -> list[Row]:
    """Rows (one per question) for the submission at `path`; never raises for a broken submission."""
    student = path.stem
    exercise_set = exercise_set or load(set_name, hidden, secret)
    questions = exercise_set.questions
    try:
        nb = nbformat.read(path, as_version=4)
        cells = [c.source for c in nb.cells if c.cell_type == "code"]
    except Exception as e:  # noqa: BLE001 - an unreadable file scores 0, with the reason
        return [Row(student, q.qid, 0, q.points, f"{q.qid}: FAILED — the notebook could not be read "
                                                 f"({type(e).__name__}: {e})") for q in questions.values()]
    sandbox = sandbox_available() if sandbox is None else sandbox
    hide = [*map(Path, hidden), path.resolve().parent, *map(Path, hide)]
    kinds = ("public", "hidden") if hidden else ("public",)
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"llmbook-grade-{student}-") as tmp:
        folder = Path(tmp) / "work"
        folder.mkdir()
        session = Session(cells, folder.resolve(), sandbox, hide, cell_timeout)
        try:
            for q in questions.values():
                rows.append(_grade_question(session, q, kinds, q.limit if limit is None else limit, student))
        finally:
            session.close()
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _grade_question(session: Session, q, kinds, limit: float, student: str) -> Row:
    if not session.ready():
        return Row(student, q.qid, 0, q.points, f"{q.qid}: FAILED — the notebook's code kept killing its process "
                                                f"({STARTS} restarts): not graded")
    worker = session.worker
    try:
        answer = worker.ask("get", 60, name=q.answer)
        found = True
    except remote.WorkerDied:
        worker.channel.broken = True
        return Row(student, q.qid, 0, q.points, f"{q.qid}: FAILED — the process running the notebook died")
    except (remote.WorkerTimeout, Exception):  # noqa: BLE001 - a lookup that fails is a missing answer
        worker.channel.broken = True
        found, answer = False, None
    found = found and bool(worker.channel.last_reply.get("found"))   # the reply says whether the name exists
    if not found:
        thing = "function" if q.callable else "variable"
        defining = [i for i, c in enumerate(session.cells)
                    if re.search(rf"^(def {q.answer}\(|{q.answer}\s*=)", c, flags=re.M)]
        own = next((session.errors[i] for i in defining if i in session.errors), "")
        why = (f": its cell raised {own}" if own else " (did its cell fail, or was it renamed?)")
        result = Result(q.qid, q.points, 0, {}, f"no {thing} named {q.answer} in the notebook{why}", "missing")
        return Row(student, q.qid, result.score, q.points, result.line())

    def reseed(seed: int) -> None:
        worker.ask("seed", 30, seed=seed)

    worker.channel.deadline = time.monotonic() + limit + GRADING_MARGIN
    try:
        result = run_question(q, answer, kinds, limit, reseed=reseed)
    except remote.WorkerDied:
        worker.channel.broken = True
        result = Result(q.qid, q.points, 0, {}, "the process running your code died during the checks (a crash, "
                                                "os._exit or a kill?)", "failed")
    except remote.WorkerTimeout:
        worker.channel.broken = True
        result = Result(q.qid, q.points, 0, {}, f"stopped: no answer within {limit + GRADING_MARGIN:g} s "
                                                f"(an endless loop?)", "timeout")
    finally:
        if worker.channel is not None:
            worker.channel.deadline = None
    score = min(max(int(result.score), 0), int(q.points))
    line = result.line()
    imports = [e for e in session.errors.values() if e.startswith(("ModuleNotFoundError", "ImportError"))]
    if imports and score < q.points:
        line += f" (note: a cell raised {imports[0]})"
    return Row(student, q.qid, score, q.points, line)


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def read_log(log: Path) -> dict:
    """student -> their logged entry (the last one), from the JSON-lines log; torn lines are skipped."""
    entries = {}
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                entries[entry["student"]] = entry
            except (ValueError, KeyError, TypeError):
                continue
    return entries


def append_log(log: Path, entry: dict) -> None:
    """Append one student's entry and make it durable before going on."""
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def grade_folder(folder: Path, set_name: str, hidden: list[str], cell_timeout: float = CELL_TIMEOUT,
                 limit: float | None = None, log=sys.stderr, secret: str | None = None,
                 sandbox: bool | None = None, record: Path | None = None, hide: list[Path] = ()) -> list[Row]:
    """Rows for every *.ipynb in `folder` plus a `total` per student; `record` logs them and resumes a batch."""
    paths = sorted(Path(folder).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no .ipynb submissions in {folder}")
    hidden = [str(Path(h).resolve()) for h in hidden]
    exercise_set = load(set_name, hidden, secret)          # read once, before any student code runs
    sandbox = sandbox_available() if sandbox is None else sandbox
    if record is not None:
        record.touch()
        hide = [*hide, record.resolve()]
    done = read_log(record) if record is not None else {}
    rows = []
    for path in paths:
        start = time.perf_counter()
        key = {"set": set_name, "sha256": _digest(path), "hidden": bool(hidden)}
        entry = done.get(path.stem)
        if entry and all(entry.get(k) == v for k, v in key.items()):
            student_rows = [Row(**r) for r in entry["rows"]]
            note = "already graded"
        else:
            student_rows = grade_notebook(path, set_name, hidden, cell_timeout, limit, secret, sandbox,
                                          exercise_set, hide)
            if record is not None:
                append_log(record, {"student": path.stem, **key, "rows": [asdict(r) for r in student_rows]})
            note = f"{time.perf_counter() - start:.1f} s"
        score, total = sum(r.score for r in student_rows), sum(r.total for r in student_rows)
        rows += student_rows + [Row(path.stem, "total", score, total, "")]
        print(f"grade: {path.stem}: {score}/{total} ({note})", file=log, flush=True)
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
    parser.add_argument("--secret", help=f"the instructor's secret that seeds the hidden checks' inputs "
                                         f"(default: ${SECRET_ENV}); required with --hidden")
    parser.add_argument("--out", type=Path, help="CSV file to write (default: print CSV to stdout)")
    parser.add_argument("--log", type=Path, help="JSON-lines record of graded students, for resuming "
                                                 "(default: the --out file with suffix .jsonl, else scores.jsonl)")
    parser.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT,
                        help=f"seconds per submitted cell before it is stopped (default {CELL_TIMEOUT})")
    parser.add_argument("--limit", type=float, help="time limit per question in s (default: each question's own)")
    parser.add_argument("--no-sandbox", action="store_true", help="run student code without bubblewrap "
                                                                   "(resource limits only)")
    args = parser.parse_args(argv)
    record = args.log or (args.out.with_suffix(".jsonl") if args.out else Path("scores.jsonl"))
    try:
        load(args.set_name, args.hidden, args.secret)        # fail early on a wrong set, hidden folder or secret
        if not sorted(args.submissions.glob("*.ipynb")):
            raise FileNotFoundError(f"no .ipynb submissions in {args.submissions}")
    except (ValueError, FileNotFoundError) as e:
        print(f"grade: error: {e}", file=sys.stderr)
        return 2
    if not args.hidden:
        print("grade: no --hidden folder: grading with the public checks only", file=sys.stderr)
    sandbox = not args.no_sandbox and sandbox_available()
    if not sandbox:
        why = "--no-sandbox" if args.no_sandbox else "bubblewrap (bwrap) is missing or cannot start here"
        print(f"grade: WARNING: {why}: student code runs WITHOUT a sandbox (own session, clean environment and "
              f"resource limits only; it can read and write your files). Install bubblewrap (make setup).",
              file=sys.stderr)
    hide = [args.out.resolve()] if args.out else []
    rows = grade_folder(args.submissions, args.set_name, args.hidden, args.cell_timeout, args.limit,
                        secret=args.secret, sandbox=sandbox, record=record, hide=hide)
    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            write_csv(rows, f)
    else:
        write_csv(rows, sys.stdout)
    print(summary(rows), file=sys.stderr if not args.out else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
