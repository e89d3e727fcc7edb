"""Execute chapter pages top to bottom in this environment and check their parity verdicts (tools/test_colab.sh).

    python tools/colab_pages.py chapters/05_attention/02_attention_dates.md ...

Each MyST source is executed into a temporary folder (the committed twin is not touched). A cell
that raises fails the run. The pages' outputs are not compared with the committed twins (other
library versions may change the last digits), except in the parity cells (those that call
`torch_to_tf`): their printed verdicts must be the twin's, word for word.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute import ROOT, execute  # noqa: E402

from llmbook import nbclient_patch  # noqa: E402


def printed(cell) -> str:
    """The text a code cell printed (stdout streams)."""
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def parity_cells(nb) -> list[tuple[str, str]]:
    """(source, printed text) of every code cell that copies weights across frameworks."""
    return [(c.source, printed(c)) for c in nb.cells if c.cell_type == "code" and "torch_to_tf(" in c.source]


def check(md: Path, out_dir: Path) -> float:
    """Execute md into out_dir; raise SystemExit if a parity cell prints other than the twin; return seconds."""
    out = out_dir / md.with_suffix(".ipynb").name
    seconds = execute(md, out)
    ran, twin = parity_cells(nbformat.read(out, 4)), parity_cells(nbformat.read(md.with_suffix(".ipynb"), 4))
    if [s for s, _ in ran] != [s for s, _ in twin]:
        raise SystemExit(f"colab_pages: {md.name}: the parity cells of the source and of its committed twin "
                         "differ; re-execute the page with tools/execute.py")
    if not ran:
        raise SystemExit(f"colab_pages: {md.name} has no parity cell (one calling torch_to_tf) to check")
    for (source, got), (_, want) in zip(ran, twin):
        if got != want:
            raise SystemExit(f"colab_pages: {md.name}: a parity cell printed\n{got}\ninstead of the committed\n"
                             f"{want}\ncell:\n{source}")
    return seconds


def same_python() -> None:
    """The kernel that executes the pages must be this environment's Python (its library versions)."""
    from nbclient import NotebookClient
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    kernel = printed(nb.cells[0]).strip()
    if Path(kernel).resolve() != Path(sys.prefix).resolve():
        raise SystemExit(f"colab_pages: the python3 kernel runs in {kernel}, not in {sys.prefix}: "
                         "put this environment's bin/ first on PATH")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="MyST sources (*.md) of chapter pages")
    args = parser.parse_args()
    nbclient_patch.apply()
    same_python()
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.paths:
            md = (ROOT / path).resolve()
            start = time.perf_counter()
            check(md, Path(tmp))
            print(f"colab_pages: {path} ran top to bottom, parity verdicts as committed "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
