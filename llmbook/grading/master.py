"""Solved masters (`grading_src/chNN_*.md`, MyST/jupytext) and what is generated from them.

Cell tags in a master:
  answer         a cell the learner edits. Lines between `# BEGIN SOLUTION` and `# END SOLUTION`
                 become `raise NotImplementedError` in the student notebook; a line ending in
                 `# SOLUTION` (`name = value  # SOLUTION`) becomes `name = ...`.
  public         public checks: concatenated into llmbook/grading/checks/<set>.py (package data)
  hidden         hidden checks: concatenated into tests/hidden/<set>.py
  solution-only  shown in the solutions notebook only (worked explanations, demos using answers)
Every other cell goes to both notebooks; both start with the course's Colab set-up cell.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

import llmbook

BEGIN, END, LINE = "# BEGIN SOLUTION", "# END SOLUTION", "# SOLUTION"
INTERNAL_TAGS = ("public", "hidden", "solution-only")
STUB = ("# YOUR CODE HERE", "raise NotImplementedError")


def set_name(master: Path) -> str:
    """'ch01' for grading_src/ch01_language_models.md."""
    return Path(master).stem.split("_")[0]


def read(master: Path) -> nbformat.NotebookNode:
    """The master as a notebook (cells and their tags)."""
    import jupytext
    return jupytext.read(master)


def digest(master: Path) -> str:
    """SHA-256 of the master's text: the solutions notebook records it to know when to re-execute."""
    return hashlib.sha256(Path(master).read_bytes()).hexdigest()


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def student_source(source: str) -> str:
    """`source` with every solution block and solution line replaced by a stub."""
    out, inside = [], False
    for number, line in enumerate(source.splitlines(), 1):
        text = line.strip()
        if text == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution block")
            inside, indent = True, line[:len(line) - len(line.lstrip())]
            out += [indent + s for s in STUB]
        elif text == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(_stub_line(line) if _is_solution_line(line) else line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    return "\n".join(out)


def solution_source(source: str) -> str:
    """`source` without the solution markers."""
    out = []
    for line in source.splitlines():
        if line.strip() in (BEGIN, END):
            continue
        out.append(line[:line.rstrip().rfind(LINE)].rstrip() if _is_solution_line(line) else line)
    return "\n".join(out)


def solution_lines(source: str) -> list[str]:
    """The stripped, non-empty lines that only the solution has (for the no-leak test)."""
    lines, inside = [], False
    for line in source.splitlines():
        text = line.strip()
        if text in (BEGIN, END):
            inside = text == BEGIN
        elif inside and text and not text.startswith("#"):
            lines.append(text)
        elif _is_solution_line(line):
            lines.append(text[:text.rfind(LINE)].rstrip())
    return lines


def _is_solution_line(line: str) -> bool:
    return line.rstrip().endswith(LINE) and line.strip() != LINE and "=" in line


def _stub_line(line: str) -> str:
    return line[:line.index("=")].rstrip() + " = ...  # YOUR ANSWER HERE"


def colab_cell() -> nbformat.NotebookNode:
    """The course's standard first cell (hidden in the book): on Colab only, install llmbook; import llmbook.tf."""
    source = ("# Set-up. On Colab: install the course package (llmbook) from the repository.\n"
              "# Locally: nothing to do.\n"
              "import sys\n"
              "if \"google.colab\" in sys.modules:\n"
              f"    %pip install -q \"llmbook @ git+{llmbook.REPOSITORY}\"\n"
              "import llmbook.tf  # TensorFlow, imported quietly, sharing the GPU with PyTorch")
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["remove-cell"]})


def notebook(master: Path, role: str) -> nbformat.NotebookNode:
    """The 'student' or 'solution' notebook of `master`, without outputs."""
    if role not in ("student", "solution"):
        raise ValueError(f"role must be 'student' or 'solution', got {role!r}")
    cells = [colab_cell()]
    for cell in read(master).cells:
        cell_tags = tags(cell)
        if "public" in cell_tags or "hidden" in cell_tags or ("solution-only" in cell_tags and role == "student"):
            continue
        source = cell.source
        if "answer" in cell_tags:
            source = student_source(source) if role == "student" else solution_source(source)
        keep = [t for t in cell_tags if t not in INTERNAL_TAGS]
        metadata = {"tags": keep} if keep else {}
        new = (nbformat.v4.new_code_cell(source, metadata=metadata) if cell.cell_type == "code"
               else nbformat.v4.new_markdown_cell(source, metadata=metadata))
        cells.append(new)
    for i, cell in enumerate(cells):
        cell.id = f"{set_name(master)}-{role}-{i:02d}"
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    })
    return nb


def checks_source(master: Path, kind: str) -> str:
    """The text of the public or hidden check file of `master`."""
    if kind not in ("public", "hidden"):
        raise ValueError(f"kind must be 'public' or 'hidden', got {kind!r}")
    master = Path(master)
    cells = [c.source.strip("\n") for c in read(master).cells if c.cell_type == "code" and kind in tags(c)]
    if not cells:
        raise ValueError(f"{master} has no code cell tagged {kind!r}")
    scope = (f"\nRuns in the namespace of the public checks (llmbook/grading/checks/{set_name(master)}.py), "
             f"whose imports and helpers it uses.\n" if kind == "hidden" else "")
    header = (f'"""{kind.capitalize()} checks of exercise set {set_name(master)}.\n\n'
              f"Generated by `python -m llmbook.grading.build` from grading_src/{master.name}: "
              f'edit the master, not this file.\n{scope}"""\n')
    return header + "\n\n\n".join(cells) + "\n"


def cell_signature(nb: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """(type, source, tags) of every cell: what the up-to-date test compares (not outputs or ids)."""
    return [(c.cell_type, c.source, tuple(tags(c))) for c in nb.cells]


def answer_namespace(master: Path, role: str) -> dict:
    """Run the answer cells (solved or stubbed) and the set-up cells of `master` in a fresh namespace.

    Check calls, solution-only cells and check cells are skipped: this is the learner's code alone,
    for testing the checks in one process without a kernel.
    """
    namespace: dict = {"__name__": f"{set_name(master)}_{role}"}
    for i, cell in enumerate(read(master).cells):
        cell_tags = tags(cell)
        if cell.cell_type != "code" or set(cell_tags) & set(INTERNAL_TAGS) or "grader.check(" in cell.source:
            continue
        source = cell.source
        if "answer" in cell_tags:
            source = student_source(source) if role == "student" else solution_source(source)
        exec(compile(source, f"<{Path(master).name} cell {i} ({role})>", "exec"), namespace)  # noqa: S102
    return namespace
