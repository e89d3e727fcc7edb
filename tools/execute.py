"""Execute MyST notebook sources (*.md, jupytext) into their .ipynb twins, outputs and widget state included.

    python tools/execute.py                         # every chapters/*/NN_*.md and appendix/NN_*.md
    python tools/execute.py chapters/01_language_models/01_ngram.md
    python tools/execute.py --text-only chapters/04_seq2seq/01_encoder_decoder.md   # prose, captions
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from llmbook import nbclient_patch

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT = 300          # seconds; finite so a stalled cell cannot hang the run
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def sources(paths: list[str]) -> list[Path]:
    """The MyST sources to execute: the given paths, or every numbered notebook source in chapters/."""
    if paths:
        found = [Path(p).resolve() for p in paths]
        for p in found:
            if p.suffix != ".md" or not p.exists():
                raise SystemExit(f"execute: {p} is not an existing MyST source (*.md)")
        return found
    return sorted([*ROOT.glob("chapters/*/[0-9][0-9]_*.md"), *ROOT.glob("appendix/[0-9][0-9]_*.md")])


def execute(md: Path, out: Path | None = None) -> float:
    """Execute one source into its twin (or into `out`); return the seconds it took."""
    nb = jupytext.read(md)
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata.pop("jupytext", None)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", store_widget_state=True,
                            shutdown_kernel="immediate", resources={"metadata": {"path": str(md.parent)}})
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, out or md.with_suffix(".ipynb"))
    return seconds


def update_text(md: Path) -> int:
    """Copy a source's prose and code-cell metadata into its twin, outputs kept; return cells changed."""
    # Refuses when code, tags or the cell order differ: execute instead. A code cell keeps its
    # source, outputs and `execution` record and takes the source's other metadata (figure captions
    # and alt text under `mystnb`, `nbval-reason`): none of it changes what the cell computes.
    new, twin = jupytext.read(md), nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    shape = lambda nb: [(c.cell_type, c.source if c.cell_type == "code" else "",  # noqa: E731
                         c.metadata.get("tags", [])) for c in nb.cells]
    if shape(new) != shape(twin):
        raise SystemExit(f"execute --text-only: {md.name} changed more than prose (code, tags or cell order): "
                         "execute it without --text-only")
    changed = 0
    for cell, old in zip(new.cells, twin.cells):
        if cell.cell_type == "markdown" and cell.source != old.source:
            old.source, changed = cell.source, changed + 1
        elif cell.cell_type == "code":
            meta = {**cell.metadata, **({"execution": old.metadata["execution"]}
                                        if "execution" in old.metadata else {})}
            if meta != old.metadata:
                old.metadata, changed = nbformat.from_dict(meta), changed + 1
    nbformat.write(twin, md.with_suffix(".ipynb"))
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", help="MyST sources (default: every chapter notebook source)")
    parser.add_argument("--text-only", action="store_true",
                        help="copy markdown and cell-metadata edits into the .ipynb without executing (outputs kept)")
    args = parser.parse_args()
    if args.text_only:
        for md in sources(args.paths):
            print(f"execute: {md.relative_to(ROOT)}: {update_text(md)} cells updated", flush=True)
        return
    nbclient_patch.apply()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for md in sources(args.paths):
        print(f"execute: {md.relative_to(ROOT)} ...", flush=True)
        print(f"execute: {md.with_suffix('.ipynb').relative_to(ROOT)} written in {execute(md):.0f} s", flush=True)


if __name__ == "__main__":
    main()
