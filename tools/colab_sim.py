"""The Colab simulation: each single-framework notebook run from the llmbook wheel alone, away from the repository.

    python tools/colab_sim.py                     # every notebook under colab/pytorch/
    python tools/colab_sim.py --framework tensorflow              # every one under colab/tensorflow/
    python tools/colab_sim.py colab/pytorch/01_language_models/01_ngram.ipynb ...
    python tools/colab_sim.py --json out.json     # also write the table as JSON

What a learner's Colab runtime has is the wheel that the notebook's first cell installs, not this
repository. So this tool
1. builds the llmbook wheel (`pip wheel --no-deps`) and installs it, without dependencies, into a
   temporary folder (the dependencies are this Python's: run it in .venv-colab, whose packages are
   Colab's own versions plus llmbook's declared dependencies, as `pip install llmbook` would give);
2. copies each notebook alone into an empty temporary directory and executes it there with this
   Python, the wheel's folder first on the kernel's PYTHONPATH; a first cell, added to the copy,
   stops the notebook unless `llmbook` is the wheel's and no path of the repository is on sys.path,
   so a page that reads a file next to the repository, or imports something only the repository
   has, fails here as it would on Colab; and the other framework is hidden from the kernel (a
   sitecustomize on its path), as if not installed, so a single-framework notebook that needs both
   fails too;
3. prints `| notebook | seconds | first error |` and exits 1 when a notebook outside PENDING fails, or
   a notebook in PENDING passes (then delete its entry).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ROOT / "colab"
BLOCKED = {"pytorch": ("tensorflow", "keras"), "tensorflow": ("torch",)}     # what each variant must not import
CELL_TIMEOUT = 300          # seconds, as tools/execute.py
# Notebooks known to fail from the wheel alone, each with its reason; the run fails when one passes.
PENDING: dict[str, str] = {}          # empty since the chapter 4-6 rework: every notebook runs

GUARD = """\
# added by tools/colab_sim.py: this notebook must run from the wheel alone
import os, sys
import llmbook
_site, _repo = {site!r}, {repo!r}
assert llmbook.__file__.startswith(_site), f"llmbook from {{llmbook.__file__}}"
_near = [p for p in sys.path if os.path.abspath(p).startswith(_repo)
         and not os.path.abspath(p).startswith(sys.prefix)]   # the venv may live there
assert not _near, f"the repository is on sys.path: {{_near}}"
assert not os.path.abspath(os.getcwd()).startswith(_repo), "running inside the repository"
"""


def build_wheel(out: Path) -> Path:
    """The llmbook wheel of this working tree, built without network or build isolation."""
    fresh = not (ROOT / "build").exists()         # setuptools builds in the tree: remove what it adds
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(ROOT)], check=True)
    if fresh:
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    wheels = sorted(out.glob("llmbook-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"colab_sim: expected one llmbook wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def install(wheel: Path, site: Path) -> None:
    """The wheel, and nothing else, installed into `site`."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                    "--target", str(site), str(wheel)], check=True)


def first_error(error: Exception) -> str:
    """The last non-empty line of a cell error (the exception and its message), uncoloured and shortened."""
    lines = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:300]


def run_notebook(nb, cwd: Path, cell_timeout: int = CELL_TIMEOUT,
                 env: dict[str, str] | None = None) -> tuple[float, str | None]:
    """Execute a notebook object in `cwd` with the python3 kernel, whose environment is `env` (None: this
    process's); (seconds, first error or None)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    from llmbook import nbclient_patch
    nbclient_patch.apply()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(cwd)}})
    start, error = time.perf_counter(), None
    try:
        client.execute(**({} if env is None else dict(env=env)))    # jupyter_client: env replaces os.environ
    except (CellExecutionError, CellTimeoutError) as e:
        error = first_error(e)
    except Exception as e:  # noqa: BLE001 - a kernel that dies is a result too
        error = f"{type(e).__name__}: {e}"[:300]
    return time.perf_counter() - start, error


BLOCKER = """\
# written by tools/colab_sim.py: the other framework is not installed, as far as this kernel can tell
# (the path finder does not see it; probes such as importlib.util.find_spec get None, imports fail)
import sys
from importlib.machinery import PathFinder


class _PathFinderWithout(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            return None
        return super().find_spec(name, path, target)


sys.meta_path[:] = [_PathFinderWithout if f is PathFinder else f for f in sys.meta_path]
"""


def simulate_one(path: Path, site: Path, cell_timeout: int, env: dict[str, str]) -> dict:
    """One notebook copied alone into an empty folder and run there: {notebook, seconds, error}."""
    with tempfile.TemporaryDirectory(prefix="colab-sim-") as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        nb = nbformat.read(copy, as_version=4)
        guard = GUARD.format(site=str(site.resolve()), repo=str(ROOT))
        nb.cells.insert(0, nbformat.v4.new_code_cell(guard))
        seconds, error = run_notebook(nb, Path(tmp), cell_timeout, env)
    name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    return dict(notebook=name, seconds=round(seconds, 1), error=error)


def simulate(notebooks: list[Path], site: Path, cell_timeout: int = CELL_TIMEOUT,
             blocked: tuple[str, ...] = (), jobs: int = 1) -> list[dict]:
    """Each notebook copied alone into an empty folder and run there from the wheel in `site`, the modules
    `blocked` unimportable; `jobs` notebooks at a time (each kernel then gets cores / jobs threads)."""
    blocker = Path(tempfile.mkdtemp(prefix="colab-sim-block-"))
    (blocker / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(blocked)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(site)])
    if jobs > 1:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    rows = {}
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:     # the kernels are the processes
            futures = {pool.submit(simulate_one, p, site, cell_timeout, env): p for p in notebooks}
            for future in as_completed(futures):
                row = rows[futures[future]] = future.result()
                print(f"| {row['notebook']} | {row['seconds']:.0f} | {row['error'] or ''} |", flush=True)
    finally:
        shutil.rmtree(blocker, ignore_errors=True)
    return [rows[p] for p in notebooks]


def verdict(rows: list[dict]) -> list[str]:
    """What is wrong with a run: failures outside PENDING, PENDING notebooks that now pass."""
    problems = []
    for r in rows:
        if r["error"] and r["notebook"] not in PENDING:
            problems.append(f"{r['notebook']} fails from the wheel alone: {r['error']}")
        if not r["error"] and r["notebook"] in PENDING:
            problems.append(f"{r['notebook']} now runs from the wheel alone: delete its PENDING entry "
                            "in tools/colab_sim.py")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook of the framework")
    parser.add_argument("--framework", choices=sorted(BLOCKED), default="pytorch",
                        help="whose variants (colab/<framework>/); the other framework is blocked")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT)
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at a time (default 1)")
    args = parser.parse_args(argv)
    folder = VARIANTS / args.framework
    notebooks = [p.resolve() for p in args.notebooks] or sorted(folder.glob("*/*.ipynb"))
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing or not notebooks:
        raise SystemExit(f"colab_sim: no such notebook: {missing or folder}; run `make colab` first")
    outside = [str(p) for p in notebooks if not p.is_relative_to(folder)]
    if outside:
        raise SystemExit(f"colab_sim: {outside} are not {args.framework} variants (under {folder})")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="colab-sim-wheel-") as tmp:
        site = Path(tmp) / "site"
        install(build_wheel(Path(tmp) / "wheel"), site)
        print("| notebook (from the wheel alone) | seconds | first error |\n|---|---:|---|", flush=True)
        rows = simulate(notebooks, site, args.cell_timeout, BLOCKED[args.framework], args.jobs)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    problems = verdict(rows)
    pending = sum(n.startswith(f"colab/{args.framework}/") for n in PENDING)
    print(f"colab_sim: {sum(not r['error'] for r in rows)} of {len(rows)} {args.framework} notebooks ran from the "
          f"wheel alone ({pending} pending) in {time.perf_counter() - start:.0f} s", flush=True)
    for p in problems:
        print("colab_sim:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
