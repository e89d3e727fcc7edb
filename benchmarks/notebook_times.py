"""Execution time of every chapter notebook on this machine (executed from its MyST source, twin untouched).

    python benchmarks/notebook_times.py [chapters/01_language_models/01_ngram.md ...]
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import execute  # noqa: E402

from llmbook import nbclient_patch  # noqa: E402


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    nbclient_patch.apply()
    sources = execute.sources(sys.argv[1:])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n")
    print("| notebook | seconds |\n|---|---:|")
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for md in sources:
            seconds = execute.execute(md, Path(tmp) / md.with_suffix(".ipynb").name)
            total += seconds
            print(f"| {md.relative_to(ROOT)} | {seconds:.0f} |", flush=True)
    print(f"| **total** | **{total:.0f}** |")


if __name__ == "__main__":
    main()
