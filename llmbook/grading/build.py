"""Regenerate every exercise set from its solved master: `python -m llmbook.grading.build [SET ...] [--check]`.

For grading_src/chNN_topic.md it writes
  exercises/chNN_topic.ipynb          student notebook (stubs, no outputs)
  solutions/chNN_topic.ipynb          solved notebook, executed (re-executed only when the master changed)
  llmbook/grading/checks/chNN.py      public checks (package data): no reference implementations
  llmbook/grading/checks/chNN_expected.json
                                      the reference values for the public checks' fixed inputs, recorded
                                      by running the public checks on the solutions with the hidden
                                      references loaded
  tests/hidden/chNN.py                hidden checks (outside the package)
`--check` writes nothing and exits 1 when a committed file differs from what the master gives
(cell types, sources and tags; not outputs, ids or other metadata).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat

from llmbook.grading import BATCH_ENV, master as M

MASTERS = "grading_src"
CELL_TIMEOUT = 300   # seconds per cell when executing a solutions notebook


def masters(root: Path, names: list[str] | None = None) -> list[Path]:
    """The master files under root/grading_src, optionally only the sets in `names`."""
    found = sorted((root / MASTERS).glob("ch*_*.md"))
    if not found:
        raise FileNotFoundError(f"no masters (chNN_topic.md) in {root / MASTERS}: run from the repository root "
                                f"or pass --root")
    if names:
        unknown = set(names) - {M.set_name(p) for p in found}
        if unknown:
            raise ValueError(f"no master for {sorted(unknown)} in {root / MASTERS} "
                             f"(have: {[M.set_name(p) for p in found]})")
        found = [p for p in found if M.set_name(p) in names]
    return found


def targets(root: Path, master: Path) -> dict[str, Path]:
    """Where each generated file of `master` goes."""
    name = M.set_name(master)
    return {"student": root / "exercises" / f"{master.stem}.ipynb",
            "solution": root / "solutions" / f"{master.stem}.ipynb",
            "public": root / "llmbook" / "grading" / "checks" / f"{name}.py",
            "expected": root / "llmbook" / "grading" / "checks" / f"{name}_expected.json",
            "hidden": root / "tests" / "hidden" / f"{name}.py"}


def stale(root: Path, names: list[str] | None = None) -> list[str]:
    """One line per generated file that is missing or differs from its master."""
    problems = []
    for master in masters(root, names):
        out = targets(root, master)
        for role in ("student", "solution"):
            path = out[role]
            if not path.exists():
                problems.append(f"{path.relative_to(root)}: missing")
                continue
            want = M.cell_signature(M.notebook(master, role))
            got = M.cell_signature(nbformat.read(path, as_version=4))
            if got != want:
                problems.append(f"{path.relative_to(root)}: {_first_difference(got, want)}")
        for kind in ("public", "hidden"):
            path = out[kind]
            if not path.exists() or path.read_text(encoding="utf-8") != M.checks_source(master, kind):
                problems.append(f"{path.relative_to(root)}: {'missing' if not path.exists() else 'differs'}")
        if "expected_value(" in M.checks_source(master, "public") and not out["expected"].exists():
            problems.append(f"{out['expected'].relative_to(root)}: missing")
    return problems


def record_expected(master: Path, hidden: Path) -> dict:
    """The public checks' expected values: run them on the solutions with the hidden references loaded."""
    from llmbook.grading.runner import run_question
    from llmbook.grading.spec import load
    exercise_set = load(M.set_name(master), [hidden], secret="build")
    exercise_set.expected.recording = recorded = {}
    answers = M.answer_namespace(master, "solution")
    wrong = _wrong_answers(Path(master).resolve().parents[1] / "tests" / "fixtures" / "grading"
                           / f"{M.set_name(master)}_wrong.py")
    for q in exercise_set.questions.values():
        result = run_question(q, answers[q.answer], ["public"], limit=600)
        if result.status != "passed":
            raise RuntimeError(f"{M.set_name(master)} {q.qid}: the solution fails its public checks while "
                               f"recording expected values: {result.line()}")
        for _, answer, _ in wrong.get(q.qid, []):    # the values the diagnoses of wrong answers look up
            run_question(q, answer, ["public"], limit=600)
    return dict(sorted(recorded.items()))


def _wrong_answers(path: Path) -> dict:
    """WRONG of a tests/fixtures/grading/<set>_wrong.py file ({} when there is none)."""
    if not path.is_file():
        return {}
    import importlib.util
    import warnings
    spec = importlib.util.spec_from_file_location(f"_llmbook_wrong_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    return getattr(module, "WRONG", {})


def _first_difference(got, want) -> str:
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"cell {i} differs ({w[1].splitlines()[0][:60] if w[1] else '(empty)'!r})"
    return f"{len(got)} cells, the master gives {len(want)}"


def build(root: Path, names: list[str] | None = None, force: bool = False) -> None:
    """Write every generated file; execute a solutions notebook when its master changed (or `force`)."""
    for master in masters(root, names):
        out = targets(root, master)
        changed = [_write_text(out[kind], M.checks_source(master, kind), root) for kind in ("public", "hidden")]
        if "expected_value(" in M.checks_source(master, "public") and (any(changed) or force
                                                                  or not out["expected"].exists()):
            import json
            values = record_expected(master, out["hidden"])
            _write_text(out["expected"], json.dumps(values, indent=0, sort_keys=True) + "\n", root)
        _write_notebook(out["student"], M.notebook(master, "student"), root)
        solution = M.notebook(master, "solution")
        solution.metadata["llmbook"] = {"master": f"{MASTERS}/{master.name}", "master_sha256": M.digest(master)}
        if force or _needs_execution(out["solution"], solution):
            print(f"build: executing {out['solution'].relative_to(root)} ...", flush=True)
            execute_notebook(solution, out["solution"].parent)
        else:
            solution = nbformat.read(out["solution"], as_version=4)
        _write_notebook(out["solution"], solution, root)


def _needs_execution(path: Path, fresh: nbformat.NotebookNode) -> bool:
    if not path.exists():
        return True
    old = nbformat.read(path, as_version=4)
    return (old.metadata.get("llmbook") != fresh.metadata["llmbook"]
            or M.cell_signature(old) != M.cell_signature(fresh)
            or any(c.cell_type == "code" and c.execution_count is None for c in old.cells))


def execute_notebook(nb: nbformat.NotebookNode, cwd: Path) -> None:
    """Run `nb` in place with a fresh kernel (finite timeout, no timing metadata, errors raise)."""
    from nbclient import NotebookClient
    env = {k: v for k, v in os.environ.items() if k != BATCH_ENV}
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                            shutdown_kernel="immediate", resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    coalesce_streams(nb)


def coalesce_streams(nb: nbformat.NotebookNode) -> None:
    """Merge consecutive outputs of one stream (stdout, stderr) in each code cell, in place.

    A loaded kernel may flush one print in two messages ("q5: passed ..." and "\\n"); merged,
    the committed outputs do not depend on the machine's load.
    """
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if (merged and out.output_type == "stream" and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        if cell.cell_type == "code":
            cell.outputs = merged


def _write_text(path: Path, text: str, root: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
        print(f"build: wrote {path.relative_to(root)}")
        return True
    return False


def _write_notebook(path: Path, nb: nbformat.NotebookNode, root: Path) -> None:
    nbformat.validate(nb)
    _write_text(path, nbformat.writes(nb) + "\n", root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmbook.grading.build", description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", help="sets to build, e.g. ch01 (default: every master)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: .)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file is stale")
    parser.add_argument("--force", action="store_true", help="re-execute solutions even if their master is unchanged")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.check:
        problems = stale(root, args.sets)
        for line in problems:
            print(f"stale: {line}")
        if problems:
            print("run `python -m llmbook.grading.build` (make exercises) to regenerate")
        return 1 if problems else 0
    build(root, args.sets, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
