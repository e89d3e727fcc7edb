"""Single-framework notebooks for Colab: a PyTorch-only and a TensorFlow-only notebook from each chapter page.

    python tools/colab_variants.py            # (re)write colab/ from chapters/*/NN_*.md (`make colab`)
    python tools/colab_variants.py --check    # exit 1, saying what to run, if a committed variant is stale
    python tools/colab_variants.py --report   # every cell that breaks the rules, exempted pages included

From each MyST source `chapters/<chapter>/<name>.md` it writes `colab/pytorch/<chapter>/<name>.ipynb` and
`colab/tensorflow/<chapter>/<name>.ipynb` (no outputs; nbformat 4, Python 3 kernel), each with:

- the cells tagged with the other framework removed, and the cells tagged `parity` (they need both
  frameworks: a parity check copies weights from one into the other and compares; the book shows them
  whatever the switcher says) removed from both; shared (untagged) cells and this framework's cells
  kept, in order, source and tags unchanged;
- the first cell (the hidden Colab set-up cell) rewritten: the same `%pip install` of llmbook on Colab,
  then `llmbook.use_frameworks(...)` so that `llmbook.seed()` leaves the other framework alone; only the
  TensorFlow notebook imports `llmbook.tf` (TensorFlow's quiet import and GPU memory growth).

The rules (also checked by tests/test_colab_variants.py): the PyTorch notebook never imports
tensorflow, keras or llmbook.tf, and the TensorFlow notebook never imports torch or llmbook.torch, in any
cell, directly or through an llmbook module that imports one at its top level. A shared cell that imports
both frameworks cannot go into either notebook, and a shared cell that imports one cannot go into the
other's: the generator stops and names the page and the cell, unless the page is in MIXED_PAGES (its
variants then keep such cells as they are: they run on Colab, which has both frameworks, but do not
keep the single-framework promise).

A `parity` cell must not be needed by the cells after it, since neither notebook has it: no later cell kept
in a variant may read a name the parity cell binds (assigns, defines, imports) or changes through an
attribute or item (`model.w = ...`, `d[k] = ...`), unless a kept cell binds that name again in between
(a cell that both binds and reads a name counts as binding it). The check reads names only: a parity
cell that changes an object through a method call (`model.load_state_dict(...)`) is not caught. A parity cell may not also carry `pytorch` or `tensorflow`.
And --report lists, besides, every name a variant reads that only removed cells define (a NameError on
Colab); tests/test_colab_variants.py requires none on pages not in MIXED_PAGES.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "colab"
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE = {"name": "python", "pygments_lexer": "ipython3"}


@dataclass(frozen=True)
class Framework:
    """One single-framework variant: its cell tag (and folder), its name, what it may never import."""

    tag: str                      # "pytorch": the cell tag, the folder under colab/
    title: str                    # "PyTorch"
    module: str                   # "torch": the name llmbook.use_frameworks() takes
    forbidden: tuple[str, ...]    # module prefixes this variant must never import


PYTORCH = Framework("pytorch", "PyTorch", "torch", ("tensorflow", "keras", "tf_keras", "llmbook.tf"))
TENSORFLOW = Framework("tensorflow", "TensorFlow", "tensorflow", ("torch", "llmbook.torch"))
FRAMEWORKS = (PYTORCH, TENSORFLOW)
PARITY = "parity"   # the tag of cells that need both frameworks: shown in the book, in neither variant

# Pages whose variants may break the import rules until their sources are fixed: one explicit list, each
# entry with the cells at fault (cell numbers count every cell of the source from 0, markdown included;
# `python tools/colab_variants.py --report` prints the full messages). Every other page must obey the
# rules, and a page that obeys them must leave this list (tests/test_colab_variants.py checks both).
# "parity cell": a shared cell that builds twin models in both frameworks and copies weights with
# llmbook.parity (the fix: split it, or tag it `pytorch` and `tensorflow`, which leaves it out of both
# single-framework notebooks).
MIXED_PAGES: dict[str, str] = {}          # empty since the chapter 4-6 rework: every page obeys the rules


class RuleError(Exception):
    """A page whose cells cannot make a single-framework notebook (the message names the page and cell)."""


def sources(root: Path = ROOT) -> list[Path]:
    """Every chapter page source: chapters/*/NN_*.md."""
    return sorted(root.glob("chapters/*/[0-9][0-9]_*.md"))


def rel(path: Path, root: Path = ROOT) -> str:
    """A repository path as written in messages and MIXED_PAGES."""
    return path.resolve().relative_to(root.resolve()).as_posix()


def variant_path(md: Path, fw: Framework, root: Path = ROOT) -> Path:
    """colab/<tag>/<chapter folder>/<name>.ipynb for chapters/<chapter folder>/<name>.md."""
    return root / "colab" / fw.tag / md.parent.name / md.with_suffix(".ipynb").name


# --- what a cell imports --------------------------------------------------------------------------


def python_of(source: str) -> str:
    """The cell's source as plain Python: IPython magics and shell lines (%pip, !ls) become `pass`."""
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.splitlines())


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of an llmbook module in this repository (a package's __init__.py), or None."""
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imported(tree: ast.AST, package: str = "", top_level_only: bool = False, root: Path = ROOT) -> set[str]:
    """Names of the modules an AST imports (`from a import b` gives a, and a.b where b is an llmbook module).

    top_level_only: what runs on import of a module (not the bodies of its functions).
    """
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            todo.append(child)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in ("llmbook.torch", "llmbook.tf") or sub.startswith("llmbook.") and _module_file(sub, root):
                    found.add(sub)
    return found


_FRAMEWORK_OF_MODULE: dict[str, frozenset[str]] = {}


def frameworks_of_module(name: str, root: Path = ROOT, _seen: frozenset[str] = frozenset()) -> frozenset[str]:
    """The frameworks ("torch", "tensorflow") that importing module `name` imports.

    torch*, llmbook.torch* -> torch; tensorflow*, keras*, tf_keras*, llmbook.tf* -> tensorflow; any other
    llmbook module -> what its packages' __init__ and its own top-level imports import (functions' bodies
    are not run on import); other modules -> none.
    """
    head = name.split(".")[0]
    if name == "llmbook.torch" or name.startswith("llmbook.torch.") or head == "torch":
        return frozenset({"torch"})
    if name == "llmbook.tf" or name.startswith("llmbook.tf.") or head in ("tensorflow", "keras", "tf_keras"):
        return frozenset({"tensorflow"})
    if head != "llmbook" or name in _seen:
        return frozenset()
    key = f"{root}:{name}"
    if key not in _FRAMEWORK_OF_MODULE:
        found: set[str] = set()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):        # importing a.b.c runs a, a.b and a.b.c
            module = ".".join(parts[:i])
            path = _module_file(module, root)
            if path is None:
                continue
            package = module if path.name == "__init__.py" else ".".join(parts[:i - 1])
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for imported in _imported(tree, package, top_level_only=True, root=root):
                found |= frameworks_of_module(imported, root, _seen | {name})
        _FRAMEWORK_OF_MODULE[key] = frozenset(found)
    return _FRAMEWORK_OF_MODULE[key]


def cell_imports(source: str, root: Path = ROOT) -> dict[str, set[str]]:
    """{"torch": {modules...}, "tensorflow": {...}}: what a cell imports of each framework, by module name."""
    found: dict[str, set[str]] = {"torch": set(), "tensorflow": set()}
    for module in _imported(ast.parse(python_of(source)), root=root):
        for fw in frameworks_of_module(module, root):
            found[fw].add(module)
    return found


def forbidden_imports(source: str, fw: Framework, root: Path = ROOT) -> set[str]:
    """The modules a cell imports that the `fw` variant must not (directly or through llmbook)."""
    other = "tensorflow" if fw is PYTORCH else "torch"
    return cell_imports(source, root)[other]


# --- the variants ---------------------------------------------------------------------------------


def tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def in_neither(cell) -> bool:
    """A cell neither variant keeps: tagged `parity` (or, as before, tagged both frameworks)."""
    return PARITY in tags(cell) or {PYTORCH.tag, TENSORFLOW.tag} <= tags(cell)


def removed_from(cell, fw: Framework) -> bool:
    """Whether the `fw` variant leaves this cell out."""
    other = TENSORFLOW.tag if fw is PYTORCH else PYTORCH.tag
    return in_neither(cell) or other in tags(cell)


def setup_cell_source(first: str, md: Path, fw: Framework, root: Path = ROOT) -> str:
    """The rewritten Colab set-up cell: the page's own install line, then this framework only."""
    install = [line for line in first.splitlines() if re.match(r"\s+%pip install .*llmbook @ git\+", line)]
    if 'if "google.colab" in sys.modules:' not in first or len(install) != 1 or "import llmbook.tf" not in first:
        raise RuleError(f"{rel(md, root)}: the first code cell is not the course's Colab set-up cell "
                        "(`if \"google.colab\" in sys.modules:`, one `%pip install \"llmbook @ git+...\"`, "
                        "`import llmbook.tf`): tools/colab_variants.py cannot rewrite it")
    lines = [f"# Set-up of this {fw.title}-only notebook, made by tools/colab_variants.py from",
             f"# {rel(md, root)}.",
             "# On Colab: install the course package (llmbook) from the repository.",
             "import sys",
             'if "google.colab" in sys.modules:',
             install[0],
             "import llmbook"]
    if fw is PYTORCH:
        lines.append('llmbook.use_frameworks("torch")  # llmbook.seed() will not import TensorFlow')
        lines += ["import torch",
                  "if not torch.cuda.is_available():",
                  "    torch.set_num_threads(1)  # small models: one thread is as fast, steady"]
    else:
        lines.append('llmbook.use_frameworks("tensorflow")  # llmbook.seed() will not import PyTorch')
        lines.append("import llmbook.tf  # imports TensorFlow quietly; it takes GPU memory as needed")
    return "\n".join(lines)


def _line_importing(source: str, modules: set[str]) -> str:
    """The first line of a cell that names one of `modules` (for messages)."""
    for line in source.splitlines():
        if any(m in line or m.rsplit(".", 1)[-1] in line for m in modules) and re.search(r"\bimport\b", line):
            return line.strip()
    return source.strip().splitlines()[0] if source.strip() else ""


def violations(md: Path, root: Path = ROOT) -> list[str]:
    """Every cell of a page that breaks the rules, one message each (page, cell number, modules)."""
    nb = jupytext.read(md)
    found = parity_violations(md, root)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or i == _setup_index(nb):
            continue
        imports = cell_imports(cell.source, root)
        shared = not tags(cell) & {PYTORCH.tag, TENSORFLOW.tag}
        if in_neither(cell):
            continue                              # a parity (cross-framework) cell: in neither notebook
        kind = "shared cell" if shared else f"cell tagged {', '.join(sorted(tags(cell)))}"
        where = f"{rel(md, root)} cell {i} ({kind})"
        if shared and imports["torch"] and imports["tensorflow"]:
            found.append(f"{where} imports both frameworks ({', '.join(sorted(imports['torch']))} and "
                         f"{', '.join(sorted(imports['tensorflow']))}): split it into a pytorch and a "
                         "tensorflow cell (or tag it both, which leaves it out of both notebooks)")
            continue
        for fw in FRAMEWORKS:
            if not shared and fw.tag not in tags(cell):
                continue                          # not in this variant
            bad = forbidden_imports(cell.source, fw, root)
            if bad:
                other = TENSORFLOW if fw is PYTORCH else PYTORCH
                fix = (f"tag it {other.tag} or move that import into the {other.tag} cells" if shared
                       else f"a {fw.tag} cell may use {fw.title} only")
                found.append(f"{where} imports {', '.join(sorted(bad))} ({_line_importing(cell.source, bad)!r}), "
                             f"so the {fw.title}-only notebook would import {other.title}: {fix}")
    return found


def _changed(source: str) -> set[str]:
    """Names whose objects a cell changes through an attribute or item: `a.b = ...`, `a[i] += ...`, `del a.b`."""
    found = set()
    for node in ast.walk(ast.parse(python_of(source))):
        if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            base = node.value
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                base = base.value
            if isinstance(base, ast.Name):
                found.add(base.id)
    return found


def parity_violations(md: Path, root: Path = ROOT) -> list[str]:
    """Parity cells that also carry a framework tag, or that later cells of a variant need.

    Needed: a later cell kept in a variant reads a name the parity cell binds or changes through an
    attribute or item, with no kept cell binding it again in between (names only; see the docstring).
    """
    nb = jupytext.read(md)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or PARITY not in tags(cell):
            continue
        where = f"{rel(md, root)} cell {i} (parity cell)"
        if tags(cell) & {PYTORCH.tag, TENSORFLOW.tag}:
            found.append(f"{where} is also tagged {', '.join(sorted(tags(cell) & {PYTORCH.tag, TENSORFLOW.tag}))}:"
                         " a parity cell is in neither notebook; drop the framework tag")
        bound, _ = _names(cell.source)
        for fw in FRAMEWORKS:
            live = bound | _changed(cell.source)
            for j in range(i + 1, len(nb.cells)):
                later = nb.cells[j]
                if not live or later.cell_type != "code" or removed_from(later, fw):
                    continue
                later_bound, read = _names(later.source)
                needed = sorted(live & (read - later_bound))   # as dangling_names: a cell's own names are its own
                if needed:
                    found.append(f"{where} defines or changes {', '.join(needed)}, which cell {j} reads, so the "
                                 f"{fw.title}-only notebook (without the parity cell) would not run: define "
                                 f"them in a shared or {fw.tag} cell instead")
                live -= later_bound | set(needed)
    return found


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds anywhere, names it reads): a rough picture of what flows between cells."""
    tree = ast.parse(python_of(source))
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return bound, read


def dangling_names(md: Path, fw: Framework) -> list[str]:
    """Names the `fw` variant reads but only the cells it leaves out (the other framework's, parity) define.

    A note for --report, since such a variant stops with a NameError; tests/test_colab_variants.py requires
    none on pages not in MIXED_PAGES.
    """
    import builtins
    nb = jupytext.read(md)
    other = TENSORFLOW.tag if fw is PYTORCH else PYTORCH.tag
    kept_bound, removed_bound, notes = set(dir(builtins)), set(), []
    setup = _setup_index(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = cell.source
        if i == setup:                       # the page's own set-up cell is replaced by the variant's
            removed_bound |= _names(source)[0]
            source = setup_cell_source(source, md, fw)
        bound, read = _names(source)
        if removed_from(cell, fw):
            removed_bound |= bound - kept_bound
            continue
        missing = sorted((read & removed_bound) - kept_bound - bound)
        if missing:
            notes.append(f"{rel(md)} cell {i}: the {fw.title}-only notebook reads {', '.join(missing)}, "
                         f"defined only in {other} or parity cells or the page's own set-up cell")
        kept_bound |= bound
    return notes


def _setup_index(nb) -> int:
    """The index of the first code cell (the hidden Colab set-up cell)."""
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")


def variant(md: Path, fw: Framework, root: Path = ROOT, exempt: dict[str, str] | None = None):
    """The `fw`-only notebook of page `md` (a NotebookNode); RuleError if the page breaks the rules."""
    exempt = MIXED_PAGES if exempt is None else exempt
    page = rel(md, root)
    problems = violations(md, root)
    if problems and page not in exempt:
        raise RuleError(f"{page}: cannot make single-framework notebooks:\n  " + "\n  ".join(problems)
                        + "\n(or, until the page is fixed, list it in MIXED_PAGES in tools/colab_variants.py)")
    source = jupytext.read(md)
    setup = _setup_index(source)
    if "remove-cell" not in tags(source.cells[setup]):
        raise RuleError(f"{page}: the first code cell must be the hidden Colab set-up cell (tag remove-cell)")
    cells = []
    for i, cell in enumerate(source.cells):
        if removed_from(cell, fw):
            continue
        text = setup_cell_source(cell.source, md, fw, root) if i == setup else cell.source
        meta = {"tags": list(cell.metadata["tags"])} if cell.metadata.get("tags") else {}
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(text, metadata=meta)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(text, metadata=meta)
        else:
            new = nbformat.v4.new_raw_cell(text, metadata=meta)
        new.id = hashlib.sha1(f"{fw.tag}:{i}:{text}".encode()).hexdigest()[:12]   # stable between runs
        cells.append(new)
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": dict(KERNEL), "language_info": dict(LANGUAGE)})
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def render(md: Path, fw: Framework, root: Path = ROOT, exempt: dict[str, str] | None = None) -> str:
    """The variant as the text committed under colab/ (validated nbformat 4 JSON, one trailing newline)."""
    nb = variant(md, fw, root, exempt)
    nbformat.validate(nb)
    return nbformat.writes(nb, version=4).rstrip("\n") + "\n"


def expected(root: Path = ROOT) -> dict[Path, str]:
    """Every variant file that should be under colab/, with its text."""
    return {variant_path(md, fw, root): render(md, fw, root) for md in sources(root) for fw in FRAMEWORKS}


def committed(root: Path = ROOT) -> set[Path]:
    """The .ipynb files now under colab/<framework>/."""
    return {p for fw in FRAMEWORKS for p in (root / "colab" / fw.tag).rglob("*.ipynb")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="write nothing; exit 1 if colab/ is not up to date")
    mode.add_argument("--report", action="store_true", help="list every cell that breaks the rules")
    args = parser.parse_args(argv)
    if args.report:
        for md in sources():
            for problem in violations(md):
                print(f"{'(exempt) ' if rel(md) in MIXED_PAGES else ''}{problem}")
        print("\nNames a variant reads that only the other framework's cells define (NameError on Colab):")
        for md in sources():
            for fw in FRAMEWORKS:
                for note in dangling_names(md, fw):
                    print(note)
        return 0
    try:
        wanted = expected()
    except RuleError as e:
        print(f"colab_variants: {e}", file=sys.stderr)
        return 2
    stale = sorted(p for p, text in wanted.items() if not p.is_file() or p.read_text(encoding="utf-8") != text)
    extra = sorted(committed() - set(wanted))
    if args.check:
        for p in stale:
            print(f"colab_variants: {rel(p)} is {'stale' if p.is_file() else 'missing'}", file=sys.stderr)
        for p in extra:
            print(f"colab_variants: {rel(p)} has no source page", file=sys.stderr)
        if stale or extra:
            print("colab_variants: run `make colab` (python tools/colab_variants.py)", file=sys.stderr)
            return 1
        print(f"colab_variants: {len(wanted)} notebooks under colab/ are up to date")
        return 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(wanted[p], encoding="utf-8")
    for p in extra:
        p.unlink()
        for folder in (p.parent, p.parent.parent):
            if folder != OUT and not any(folder.iterdir()):
                folder.rmdir()
    print(f"colab_variants: {len(wanted)} notebooks under colab/ ({len(stale)} written, {len(extra)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
