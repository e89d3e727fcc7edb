"""The single-framework notebooks for Colab (colab/pytorch/, colab/tensorflow/; tools/colab_variants.py).

Like the twins: a committed variant that differs from what the generator makes of the current source fails
(run `make colab`). And the rules, checked on the committed files: no cell of the other framework, every
shared cell and every cell of this framework present and in order, a set-up cell for this framework only,
and no import of the other framework in any cell (pages in MIXED_PAGES excepted, see below).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jupytext
import nbformat
import pytest

import llmbook

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("colab_variants", ROOT / "tools" / "colab_variants.py")
cv = importlib.util.module_from_spec(_spec)
sys.modules["colab_variants"] = cv        # before exec_module: dataclasses look their module up
_spec.loader.exec_module(cv)

SOURCES = cv.sources()
CASES = [(md, fw) for md in SOURCES for fw in cv.FRAMEWORKS]
# The one list of pages exempt from the import rule lives in the generator, which needs it too
# (tools/colab_variants.py, MIXED_PAGES: each entry names the cells at fault). It is repeated here by
# reference only, so that the rule below applies to every page not in it, and
# test_mixed_pages_are_exactly_the_pages_that_break_the_rules keeps it from going stale.
MIXED_PAGES = cv.MIXED_PAGES
FRAMEWORK_TAGS = {"pytorch", "tensorflow"}
PARITY = "parity"      # cells that need both frameworks: in neither variant


def _id(case) -> str:
    md, fw = case
    return f"{fw.tag}:{md.relative_to(ROOT).as_posix()}"


def _tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def _other(fw) -> str:
    return "tensorflow" if fw.tag == "pytorch" else "pytorch"


def test_every_chapter_page_has_its_two_variants():
    assert len(SOURCES) >= 18, f"only {len(SOURCES)} chapter sources found"
    wanted = {cv.variant_path(md, fw) for md, fw in CASES}
    on_disk = cv.committed()
    missing = sorted(cv.rel(p) for p in wanted - on_disk)
    extra = sorted(cv.rel(p) for p in on_disk - wanted)
    assert not missing, f"variants missing under colab/: {missing}; run `make colab`"
    assert not extra, f"variants under colab/ without a source page: {extra}; run `make colab` (it removes them)"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_variant_in_sync_with_source(case):
    md, fw = case
    path = cv.variant_path(md, fw)
    assert path.is_file(), f"{cv.rel(path)} is missing: run `make colab`"
    assert path.read_text(encoding="utf-8") == cv.render(md, fw), (
        f"{cv.rel(path)} differs from what tools/colab_variants.py makes of {cv.rel(md)}: "
        "the variant is stale, run `make colab`")


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_variant_follows_the_rules(case):
    md, fw = case
    path = cv.variant_path(md, fw)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata["kernelspec"]["name"] == "python3", nb.metadata
    assert nb.metadata["kernelspec"]["language"] == "python" and nb.metadata["language_info"]["name"] == "python"
    source = jupytext.read(md)
    name = cv.rel(path)
    # No cell of the other framework; no outputs.
    other = _other(fw)
    assert not [i for i, c in enumerate(nb.cells) if other in _tags(c)], f"{name} has cells tagged {other}"
    assert not [i for i, c in enumerate(nb.cells) if PARITY in _tags(c)], f"{name} has cells tagged {PARITY}"
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), f"{name} has outputs"
    # Every kept cell of the source, in order, unchanged (the set-up cell aside); shared cells in particular.
    setup = next(i for i, c in enumerate(source.cells) if c.cell_type == "code")
    kept = [(c.cell_type, c.source, sorted(_tags(c))) for i, c in enumerate(source.cells)
            if i != setup and other not in _tags(c) and PARITY not in _tags(c)]
    got = [(c.cell_type, c.source, sorted(_tags(c))) for c in nb.cells]
    got_setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    shared = [k for k in kept if not FRAMEWORK_TAGS & set(k[2])]
    got_shared = [g for i, g in enumerate(got) if i != got_setup and not FRAMEWORK_TAGS & set(g[2])]
    assert got_shared == shared, f"{name}: the shared cells of {md.name} are not all there, in order"
    assert got[:got_setup] + got[got_setup + 1:] == kept, (
        f"{name}: its cells are not the {fw.tag} and shared cells of {md.name}, in order")
    # The set-up cell: hidden in the book, the Colab install, this framework only.
    first = nb.cells[got_setup].source
    assert "remove-cell" in _tags(nb.cells[got_setup]) and got_setup == setup
    assert 'if "google.colab" in sys.modules:' in first and f"llmbook @ git+{llmbook.REPOSITORY}" in first
    assert f'llmbook.use_frameworks("{fw.module}")' in first, first
    assert ("import llmbook.tf" in first) == (fw.tag == "tensorflow"), first
    assert all(len(line) <= 80 for line in first.splitlines()), f"{name}: set-up cell wider than 80 columns"
    # No import of the other framework in any cell (directly, or through an llmbook module).
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        bad = cv.forbidden_imports(cell.source, fw)
        if i == got_setup or cv.rel(md) not in MIXED_PAGES:
            assert not bad, (f"{name} cell {i} imports {sorted(bad)}: the {fw.title}-only notebook must not "
                             f"(fix {md.name}, see `python tools/colab_variants.py --report`)")


def test_mixed_pages_are_exactly_the_pages_that_break_the_rules():
    """An exempt page that obeys the rules leaves MIXED_PAGES; a page that breaks them is never silently new."""
    pages = {cv.rel(md) for md in SOURCES}
    assert set(MIXED_PAGES) <= pages, f"MIXED_PAGES names pages that do not exist: {set(MIXED_PAGES) - pages}"
    for md in SOURCES:
        problems = cv.violations(md)
        if cv.rel(md) in MIXED_PAGES:
            assert problems, f"{cv.rel(md)} obeys the rules now: remove it from MIXED_PAGES in tools/colab_variants.py"
        else:
            assert not problems, "\n".join(problems)


# Pages outside MIXED_PAGES whose variants still read names only the other framework's cells define
# (`python tools/colab_variants.py --report` lists them); to be fixed, then removed from here. None now:
# chapters 1-3 keep their cross-framework comparisons in `parity` cells (book only).
NAME_ERRORS_PENDING: dict[str, str] = {}


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_variant_defines_what_it_uses(case):
    """A variant runs on its own, top to bottom: no cell reads a name that only the cells it leaves out (the
    other framework's, parity) define (a NameError on Colab). Pages in MIXED_PAGES are excepted."""
    md, fw = case
    if cv.rel(md) in MIXED_PAGES:
        pytest.skip("in MIXED_PAGES")
    notes = cv.dangling_names(md, fw)
    if cv.rel(md) in NAME_ERRORS_PENDING:
        assert notes, f"{cv.rel(md)} defines what it uses now: remove it from NAME_ERRORS_PENDING"
        pytest.xfail(NAME_ERRORS_PENDING[cv.rel(md)])
    assert not notes, "\n".join(notes)


def test_check_mode_agrees_and_says_what_to_run(tmp_path, capsys):
    assert cv.main(["--check"]) == 0, capsys.readouterr().err


# --- the generator's rules on made-up pages ---------------------------------------------------------

SETUP = textwrap.dedent('''\
    ```{code-cell} ipython3
    :tags: [remove-cell]

    import sys
    if "google.colab" in sys.modules:
        %pip install -q "llmbook @ git+https://github.com/llmbook/llm-foundations"
    import llmbook.tf
    ```
    ''')


def _page(root: Path, *cells: tuple[str, str]) -> Path:
    """A chapter source chapters/99_test/01_page.md under root: the set-up cell, then (tag or '', code) cells."""
    text = "# A page\n\n" + SETUP
    for tag, code in cells:
        tags = f":tags: [{tag}]\n\n" if tag else ""
        text += f"\n```{{code-cell}} ipython3\n{tags}{code}\n```\n"
    md = root / "chapters" / "99_test" / "01_page.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(text, encoding="utf-8")
    return md


def test_a_shared_cell_importing_both_frameworks_stops_the_generator(tmp_path):
    md = _page(tmp_path, ("", "import numpy as np"), ("pytorch", "import torch"),
               ("", "from llmbook.torch.rnn import RNN\nfrom llmbook.tf.rnn import RNN as TFRNN"))
    for fw in cv.FRAMEWORKS:
        with pytest.raises(cv.RuleError) as err:
            cv.variant(md, fw, tmp_path, exempt={})
        message = str(err.value)
        assert "chapters/99_test/01_page.md cell 4 (shared cell) imports both frameworks" in message, message
        assert "llmbook.torch.rnn" in message and "llmbook.tf.rnn" in message
    # listed as exempt, the page is made, the cell kept as it is
    nb = cv.variant(md, cv.PYTORCH, tmp_path, exempt={"chapters/99_test/01_page.md": "test"})
    assert "from llmbook.tf.rnn import RNN as TFRNN" in nb.cells[-1].source


def test_a_shared_cell_importing_one_framework_stops_the_other_variant(tmp_path):
    md = _page(tmp_path, ("", "import numpy as np\nimport torch"), ("tensorflow", "x = 1"))
    with pytest.raises(cv.RuleError, match=r"cell 2 \(shared cell\) imports torch .*TensorFlow-only"):
        cv.variant(md, cv.TENSORFLOW, tmp_path, exempt={})
    with pytest.raises(cv.RuleError):          # the page is refused as a whole
        cv.variant(md, cv.PYTORCH, tmp_path, exempt={})


def test_a_framework_cell_importing_the_other_framework_is_refused(tmp_path):
    md = _page(tmp_path, ("tensorflow", "from llmbook.torch.checkpoint import load_checkpoint"))
    with pytest.raises(cv.RuleError, match=r"cell 2 \(cell tagged tensorflow\) imports llmbook.torch.checkpoint"):
        cv.variant(md, cv.TENSORFLOW, tmp_path, exempt={})


def test_cells_are_split_by_tag_and_a_cell_tagged_both_is_in_neither(tmp_path):
    md = _page(tmp_path, ("", "a = 1"), ("pytorch", "import torch\nb = 2"), ("tensorflow", "import keras\nc = 3"),
               ("pytorch, tensorflow", "import torch, keras"), ("", "d = 4"))
    torch_nb = cv.variant(md, cv.PYTORCH, tmp_path, exempt={})
    tf_nb = cv.variant(md, cv.TENSORFLOW, tmp_path, exempt={})
    code = lambda nb: [c.source for c in nb.cells if c.cell_type == "code"][1:]   # noqa: E731
    assert code(torch_nb) == ["a = 1", "import torch\nb = 2", "d = 4"]
    assert code(tf_nb) == ["a = 1", "import keras\nc = 3", "d = 4"]
    assert cv.render(md, cv.PYTORCH, tmp_path, exempt={}) == cv.render(md, cv.PYTORCH, tmp_path, exempt={})


def test_a_parity_cell_is_in_neither_variant_and_must_not_be_needed(tmp_path):
    md = _page(tmp_path, ("", "a = 1"), ("pytorch", "import torch\nb = 2"), ("tensorflow", "import keras\nc = 3"),
               ("parity", "import torch, keras\nd = b + c"), ("", "e = a"))
    code = lambda nb: [c.source for c in nb.cells if c.cell_type == "code"][1:]   # noqa: E731
    assert code(cv.variant(md, cv.PYTORCH, tmp_path, exempt={})) == ["a = 1", "import torch\nb = 2", "e = a"]
    assert code(cv.variant(md, cv.TENSORFLOW, tmp_path, exempt={})) == ["a = 1", "import keras\nc = 3", "e = a"]
    assert cv.violations(md, tmp_path) == []
    # a later kept cell reads what the parity cell defined, or changed through an attribute: refused
    for later in ("e = d", "e = a.x"):
        md = _page(tmp_path, ("", "a = 1"), ("parity", "import torch, keras\nd = 2\na.x = 3"), ("", later))
        with pytest.raises(cv.RuleError, match=r"cell 3 \(parity cell\) defines or changes"):
            cv.variant(md, cv.PYTORCH, tmp_path, exempt={})
    # ... unless a kept cell binds the name again first
    md = _page(tmp_path, ("parity", "d = 2"), ("tensorflow", "d = 3"), ("pytorch", "d = 4"), ("", "e = d"))
    assert cv.violations(md, tmp_path) == []
    # a parity cell carrying a framework tag is refused
    md = _page(tmp_path, ("parity, pytorch", "x = 1"))
    with pytest.raises(cv.RuleError, match="also tagged pytorch"):
        cv.variant(md, cv.PYTORCH, tmp_path, exempt={})


def test_imports_are_found_directly_in_functions_and_through_llmbook_modules(tmp_path):
    pkg = tmp_path / "llmbook"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import numpy\n")
    (pkg / "eager.py").write_text("import torch\n")                          # at import: counts
    (pkg / "lazy.py").write_text("def f():\n    import tensorflow\n")       # only when called: does not
    (pkg / "sub" / "__init__.py").write_text("from ..eager import *\n")     # relative, transitive
    found = lambda src: {k: sorted(v) for k, v in cv.cell_imports(src, tmp_path).items() if v}  # noqa: E731
    assert found("%pip install x\nimport torch.nn as nn") == {"torch": ["torch.nn"]}
    assert found("from llmbook import tf") == {"tensorflow": ["llmbook.tf"]}
    assert found("from llmbook.tf import tensorflow as tf") == {"tensorflow": ["llmbook.tf"]}
    assert found("import keras") == {"tensorflow": ["keras"]}
    assert found("def g():\n    from tensorflow import keras\n") == {"tensorflow": ["tensorflow"]}
    assert found("import llmbook.eager") == {"torch": ["llmbook.eager"]}
    assert found("from llmbook import sub") == {"torch": ["llmbook.sub"]}
    assert found("from llmbook.lazy import f") == {}
    assert found("import numpy, llmbook") == {}


# --- the set-up cells keep the other framework out of the kernel -------------------------------------


def test_use_frameworks_rejects_unknown_names():
    with pytest.raises(ValueError, match="torch"):
        llmbook.use_frameworks("jax")
    with pytest.raises(ValueError):
        llmbook.use_frameworks()


@pytest.mark.parametrize("fw", cv.FRAMEWORKS, ids=lambda fw: fw.tag)
def test_set_up_cell_and_seed_never_import_the_other_framework(fw, tmp_path):
    """Run a committed variant's set-up cell, llmbook.seed() and the framework-neutral modules in a fresh
    Python: the other framework must not be in sys.modules (as on Colab, both are installed here)."""
    other = "tensorflow" if fw.tag == "pytorch" else "torch"
    if importlib.util.find_spec(other) is None or importlib.util.find_spec(fw.module) is None:
        pytest.skip("needs both frameworks installed, as on Colab")
    nb = nbformat.read(cv.variant_path(ROOT / "chapters/01_language_models/02_nnlm.md", fw), as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code").source
    script = cv.python_of(setup) + textwrap.dedent(f'''
        import llmbook.data, llmbook.metrics, llmbook.ngram, llmbook.parity, llmbook.plots
        import llmbook.sampling, llmbook.widgets, llmbook.beam
        llmbook.seed(0)
        import json, sys
        print(json.dumps({{"other": {other!r} in sys.modules, "own": {fw.module!r} in sys.modules}}))
        ''')
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen == {"other": False, "own": True}, (
        f"the {fw.title}-only set-up cell, then llmbook.seed(): {seen} ({other} imported: {seen['other']})")


def test_make_colab_and_make_notebooks_run_the_generator():
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    for target in ("colab", "notebooks"):
        run = subprocess.run([make, "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert run.returncode == 0 and "tools/colab_variants.py" in run.stdout, (target, run.stdout, run.stderr)
