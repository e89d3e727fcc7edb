"""Chapter notebooks: every .ipynb twin is in sync with its MyST source, executed, and follows the conventions.

(nbval itself re-runs the twins and compares outputs: see the test command in the README.)
"""
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

import llmbook

from conftest import READABILITY_EXEMPT, load_script

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("chapters/*/[0-9][0-9]_*.md"), *ROOT.glob("appendix/[0-9][0-9]_*.md")])
IGNORE = "# NBVAL_IGNORE_OUTPUT"
IGNORE_TAG = "nbval-ignore-output"      # nbval's cell tag; the cell's metadata "nbval-reason" says why
WIDTH = 80                              # what the book's text column shows without scrolling

# READABILITY_EXEMPT (tests/conftest.py): pages exempt for now from the readability rules (none at present).
READABLE = [md for md in SOURCES if not md.relative_to(ROOT).as_posix().startswith(READABILITY_EXEMPT)]
# Outputs the book renders from a richer representation than text/plain (tables, figures, widgets,
# highlighted code): their text/plain fallback is never shown, so its width does not matter.
RICH = ("text/html", "text/markdown", "text/latex", "image/", "application/vnd.jupyter.widget-view+json")


def cells(nb):
    """(type, source, tags, nbval reason, MyST-NB options) of every cell: what a source and its twin share."""
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", [])), c.metadata.get("nbval-reason"),
             c.metadata.get("mystnb")) for c in nb.cells]


def test_every_chapter_has_notebooks():
    assert SOURCES, "no chapter notebook sources found under chapters/*/NN_*.md"


@pytest.mark.parametrize("md", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_twin_in_sync_with_source(md):
    twin = md.with_suffix(".ipynb")
    assert twin.exists(), f"{twin.name} is missing: run `make notebooks NB={md.relative_to(ROOT)}`"
    src, nb = cells(jupytext.read(md)), cells(nbformat.read(twin, as_version=4))
    for i, (a, b) in enumerate(zip(src, nb)):
        assert a == b, (f"{twin.name} cell {i} differs from {md.name}: the twin is stale, "
                        f"run `make notebooks NB={md.relative_to(ROOT)}` (only prose or captions changed: "
                        f"`python tools/execute.py --text-only {md.relative_to(ROOT)}`)\nsource: {a}\ntwin:   {b}")
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
    readable = md in READABLE
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        tags = set(c.metadata.get("tags", []))
        assert not {"pytorch", "tensorflow"} <= tags, (
            f"{md.name}: a cell cannot be both pytorch and tensorflow; a cell that needs both (a parity check) "
            f"is tagged parity\n{c.source[:200]}")
        assert not ("parity" in tags and tags & {"pytorch", "tensorflow"}), (
            f"{md.name}: a parity cell needs both frameworks, so it carries neither pytorch nor tensorflow\n"
            f"{c.source[:200]}")
        if IGNORE_TAG in tags:
            assert str(c.metadata.get("nbval-reason", "")).strip(), (
                f"{md.name}: a cell tagged {IGNORE_TAG} must say why its output varies: add the line "
                f"':nbval-reason: ...' under its ':tags:' line\n{c.source[:200]}")
        lines = c.source.splitlines()
        for i, line in enumerate(lines):
            if "NBVAL_IGNORE_OUTPUT" in line:
                assert not readable, (
                    f"{md.name}: '{line.strip()}' is a visible comment; tag the cell instead "
                    f"(':tags: [..., {IGNORE_TAG}]' and ':nbval-reason: ...' on the next line)")
                # nbval only honours the marker when the comment is exactly the marker
                assert line.strip() == IGNORE, f"{md.name}: nbval ignores '{line}'; write exactly '{IGNORE}'"
                reason = lines[i + 1] if i + 1 < len(lines) else ""
                assert re.match(r"#\s*\(reason: .+\)", reason.strip()), \
                    f"{md.name}: the line after {IGNORE} must give the reason: '# (reason: ...)'"


def _too_wide(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > WIDTH]


@pytest.mark.parametrize("md", READABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_lines_fit_the_page(md):
    """Every line of every code cell (hidden set-up cells included) fits in the book's column."""
    wide = [(i, line) for i, c in enumerate(jupytext.read(md).cells) if c.cell_type == "code"
            for line in _too_wide(c.source)]
    assert not wide, (f"{md.name}: {len(wide)} code lines are longer than {WIDTH} characters; "
                      "reformat them (first: cell {}: {!r})".format(*wide[0]))


def _text_outputs(cell):
    """The text of a code cell's outputs that the book shows as plain text: printed streams, and
    text/plain results that have no richer representation. Tracebacks (cells tagged raises-exception
    show the library's own error on purpose) and rich outputs are not plain text."""
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            yield out.text
        elif out.output_type in ("execute_result", "display_data"):
            data = out.get("data", {})
            if "text/plain" in data and not any(m.startswith(RICH) for m in data):
                yield data["text/plain"]


@pytest.mark.parametrize("md", READABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_printed_lines_fit_the_page(md):
    """Printed output lines fit in the book's column, so no number is cut off or hidden behind a
    scroll bar. Print less per line, wrap text (textwrap), or show a table with llmbook.widgets.table_html."""
    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    wide = [(i, line) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for text in _text_outputs(c) for line in _too_wide(text)]
    assert not wide, (f"{md.with_suffix('.ipynb').name}: {len(wide)} printed lines are longer than "
                      "{} characters (first: cell {}: {!r})".format(WIDTH, *wide[0]))


@pytest.mark.parametrize("md", READABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_source_listings_fit_the_page(md):
    """Library code a page shows with `show_source` (highlighted HTML of the same lines as its text/plain)
    fits in the book's column like the page's own code: reformat the function in llmbook/, then re-execute."""
    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    wide = [(i, line) for i, c in enumerate(nb.cells) if c.cell_type == "code" and "show_source(" in c.source
            for out in c.get("outputs", []) for line in _too_wide(out.get("data", {}).get("text/plain", ""))]
    assert not wide, (f"{md.with_suffix('.ipynb').name}: {len(wide)} lines of shown library source are longer "
                      "than {} characters (first: cell {}: {!r})".format(WIDTH, *wide[0]))


# The exercise sets are book pages too (exercises/, solutions/); they are generated from grading_src/.
EXERCISE_PAGES = sorted([*ROOT.glob("exercises/ch*.ipynb"), *ROOT.glob("solutions/ch*.ipynb")])


def test_every_exercise_set_has_both_pages():
    names = {p.parent.name: sorted(q.stem for q in EXERCISE_PAGES if q.parent == p.parent) for p in EXERCISE_PAGES}
    masters = sorted(p.stem for p in ROOT.glob("grading_src/ch*.md"))
    assert masters and names == {"exercises": masters, "solutions": masters}


@pytest.mark.parametrize("page", EXERCISE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_exercise_pages_fit_the_page(page):
    """Code lines (the hidden set-up cell included) and printed lines of exercise and solution pages
    fit in the book's column, like the chapters'."""
    cells = [c for c in nbformat.read(page, as_version=4).cells if c.cell_type == "code"]
    code = [(i, line) for i, c in enumerate(cells) for line in _too_wide(c.source)]
    printed = [(i, line) for i, c in enumerate(cells) for text in _text_outputs(c) for line in _too_wide(text)]
    fix = f"reformat grading_src/{page.stem}.md, then run `make exercises`"
    assert not code, (f"{page.relative_to(ROOT)}: {len(code)} code lines are longer than {WIDTH} characters; "
                      f"{fix} (first: code cell {code[0][0]}: {code[0][1]!r})")
    assert not printed, (f"{page.relative_to(ROOT)}: {len(printed)} printed lines are longer than {WIDTH} "
                         f"characters; {fix} (first: code cell {printed[0][0]}: {printed[0][1]!r})")


def test_readability_exemption_is_explicit():
    """The exemption names pages that exist, one by one, and every other page is checked."""
    for page in READABILITY_EXEMPT:
        assert (ROOT / page).with_suffix(".md").is_file(), f"READABILITY_EXEMPT names {page}, which does not exist"
    exempt = [md for md in SOURCES if md not in READABLE]
    assert sorted(md.relative_to(ROOT).with_suffix("").as_posix() for md in exempt) == sorted(READABILITY_EXEMPT)
    assert any(md.parts[-2] == "appendix" for md in READABLE), "the appendix pages must be checked too"


FIGURE_HOWTO = ("give the cell a caption and alt text: under its '```{code-cell} ipython3' line put a YAML block\n"
                "---\nmystnb:\n  figure:\n    name: fig-...\n    caption: what the figure shows\n"
                "  image:\n    alt: what a reader who cannot see it needs to know\n---\n"
                "then copy it into the twin with `python tools/execute.py --text-only <source>.md`")
MIN_ALT_WORDS = 8                       # "Line plot." says nothing; a sentence about the data does


def _figure_cells(nb):
    """(index, cell, display outputs) of every code cell whose outputs include an image."""
    for i, c in enumerate(nb.cells):
        shown = [o for o in c.get("outputs", []) if o.output_type in ("display_data", "execute_result")]
        if c.cell_type == "code" and any(m.startswith("image/") for o in shown for m in o.get("data", {})):
            yield i, c, shown


@pytest.mark.parametrize("md", READABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_figure_has_a_caption_and_alt_text(md):
    """Each image output has a MyST-NB caption and alt text (cell metadata mystnb.figure / .image)."""
    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    for i, c, shown in _figure_cells(nb):
        where = f"{md.with_suffix('.ipynb').name} cell {i} ({c.source.strip().splitlines()[0][:60]!r})"
        options = c.metadata.get("mystnb") or {}
        caption = str((options.get("figure") or {}).get("caption", "")).strip()
        alt = str((options.get("image") or {}).get("alt", "")).strip()
        assert caption, f"{where}: a figure without a caption; {FIGURE_HOWTO}"
        assert alt, f"{where}: a figure without alt text; {FIGURE_HOWTO}"
        assert len(alt.split()) >= MIN_ALT_WORDS and alt != caption, (
            f"{where}: the alt text {alt!r} is too thin: describe what the figure shows (axes, lines, "
            "trends) in a sentence or two that does not just repeat the caption")
        assert len(shown) == 1, (
            f"{where}: MyST-NB wraps each of the cell's {len(shown)} displayed outputs in a figure with "
            "this caption; end the cell with plt.show() so that it displays the figure only")


@pytest.mark.parametrize("md", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_captions_sit_on_figures(md):
    """Caption metadata is on cells that show an image, where MyST-NB puts it, not left on others."""
    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    figures = {i for i, _, _ in _figure_cells(nb)}
    stray = [i for i, c in enumerate(nb.cells) if (c.metadata.get("mystnb") or {}).get("figure")
             and i not in figures]
    assert not stray, (f"{md.name}: cells {stray} carry a figure caption but show no image: move the "
                       "mystnb metadata to the cell that draws the figure")


def test_figure_names_are_unique():
    """Figure names (mystnb.figure.name) are labels for the whole book: each is used once."""
    names = [(md.name, c.metadata["mystnb"]["figure"]["name"]) for md in SOURCES
             for c in jupytext.read(md).cells
             if ((c.metadata.get("mystnb") or {}).get("figure") or {}).get("name")]
    seen: dict[str, str] = {}
    for page, name in names:
        assert name not in seen, f"figure name {name!r} is used on {seen[name]} and on {page}"
        seen[name] = page


def test_text_only_copies_captions_and_keeps_outputs(tmp_path):
    """`tools/execute.py --text-only` carries a caption edit into the twin and leaves its outputs alone."""
    tool = load_script("tools/execute.py")
    md = ROOT / "chapters/02_rnn/01_recurrence.md"
    (tmp_path / md.name).write_text(md.read_text(encoding="utf-8"), encoding="utf-8")
    twin = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    outputs = [c.get("outputs") for c in twin.cells]
    for c in twin.cells:
        c.metadata.pop("mystnb", None)
    nbformat.write(twin, tmp_path / f"{md.stem}.ipynb")
    assert tool.update_text(tmp_path / md.name) >= 1
    updated = nbformat.read(tmp_path / f"{md.stem}.ipynb", as_version=4)
    assert cells(updated) == cells(jupytext.read(md))
    assert [c.get("outputs") for c in updated.cells] == outputs
