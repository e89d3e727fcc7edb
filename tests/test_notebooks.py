"""Chapter notebooks: every .ipynb twin is in sync with its MyST source, executed, and follows the conventions.

(nbval itself re-runs the twins and compares outputs: see the test command in the README.)
"""
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

import llmbook

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("chapters/*/[0-9][0-9]_*.md"), *ROOT.glob("appendix/[0-9][0-9]_*.md")])
IGNORE = "# NBVAL_IGNORE_OUTPUT"


def cells(nb):
    """(type, source, tags) of every cell: what must agree between a source and its twin."""
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_chapter_has_notebooks():
    assert SOURCES, "no chapter notebook sources found under chapters/*/NN_*.md"


@pytest.mark.parametrize("md", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_twin_in_sync_with_source(md):
    twin = md.with_suffix(".ipynb")
    assert twin.exists(), f"{twin.name} is missing: run `make notebooks NB={md.relative_to(ROOT)}`"
    src, nb = cells(jupytext.read(md)), cells(nbformat.read(twin, as_version=4))
    for i, (a, b) in enumerate(zip(src, nb)):
        assert a == b, (f"{twin.name} cell {i} differs from {md.name}: the twin is stale, "
                        f"run `make notebooks NB={md.relative_to(ROOT)}`\nsource: {a}\ntwin:   {b}")
    assert len(src) == len(nb), f"{md.name} has {len(src)} cells, {twin.name} {len(nb)}: run `make notebooks`"


@pytest.mark.parametrize("md", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_twin_is_executed_without_errors(md):
    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert all(counts), f"{md.name}: some cells were never executed: run `make notebooks`"
    assert counts == sorted(counts), f"{md.name}: cells were executed out of order"
    # A cell tagged raises-exception (the appendix runs the seeds' broken listings) must show its error;
    # every other cell must run clean.
    expected = [c for c in code if "raises-exception" in c.metadata.get("tags", [])]
    for c in expected:
        assert any(o.output_type == "error" for o in c.outputs), \
            f"{md.name}: a cell tagged raises-exception ran without an error; drop the tag:\n{c.source[:200]}"
    errors = [o for c in code if c not in expected for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{md.name}: committed outputs contain an error: {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("md", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_cell_installs_on_colab_only(md):
    first = jupytext.read(md).cells[1 if jupytext.read(md).cells[0].cell_type == "markdown" else 0]
    assert first.cell_type == "code" and "remove-cell" in first.metadata.get("tags", []), \
        f"{md.name}: the first code cell must be the hidden Colab set-up cell (tag remove-cell)"
    assert 'if "google.colab" in sys.modules:' in first.source
    assert f"llmbook @ git+{llmbook.REPOSITORY}" in first.source, \
        f"{md.name}: the Colab install must use llmbook.REPOSITORY = {llmbook.REPOSITORY}"
    assert "import llmbook.tf" in first.source, "the set-up cell must enable TF memory growth via llmbook.tf"


@pytest.mark.parametrize("md", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_framework_tags_and_ignore_markers(md):
    nb = jupytext.read(md)
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        tags = set(c.metadata.get("tags", []))
        assert not {"pytorch", "tensorflow"} <= tags, f"{md.name}: a cell cannot be both pytorch and tensorflow"
        if "nbval-ignore-output" in tags:
            assert str(c.metadata.get("nbval-reason", "")).strip(), \
                f"{md.name}: a cell tagged nbval-ignore-output needs ':nbval-reason: why its output varies'"
        lines = c.source.splitlines()
        for i, line in enumerate(lines):
            if "NBVAL_IGNORE_OUTPUT" in line:
                # nbval only honours the marker when the comment is exactly the marker
                assert line.strip() == IGNORE, f"{md.name}: nbval ignores '{line}'; write exactly '{IGNORE}'"
                reason = lines[i + 1] if i + 1 < len(lines) else ""
                assert re.match(r"#\s*\(reason: .+\)", reason.strip()), \
                    f"{md.name}: the line after {IGNORE} must give the reason: '# (reason: ...)'"
