"""Shared fixtures: the book, built once per test session, for test_book.py and test_browser.py."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP_HINT = "run `make setup` in the repository root (it installs everything the tests use)"
# Pages exempt, for now, from the readability rules (line widths, nbval tags instead of marker comments,
# figure captions and alt text in tests/test_notebooks.py; widgets that fit the page in
# tests/test_browser.py), named without their extension (a source's .md and the book's .html both
# start with the name). None at present: every page, appendix included, follows the rules. The empty
# tuple keeps the mechanism (`str.startswith(())` is False, so nothing is left out); name a page here
# only while it cannot follow the rules yet, and remove the entry when it does.
READABILITY_EXEMPT: tuple[str, ...] = ()


def load_script(path: str):
    """A script of the repository (tools/, benchmarks/: not packages) loaded as a module, by its path."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # before exec_module: dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# Folders the build may not touch; anything else that appears in the repository during the build is junk.
_UNWATCHED = {".git", ".venv", ".venv-colab", "_vendor", "_build", ".pytest_cache", "node_modules"}


@dataclass
class BookBuild:
    """The result of one clean `jupyter-book build` into a temporary folder."""

    html: Path
    log: str
    seconds: float
    new_repo_files: list[str]


def _repo_files() -> set[str]:
    """Every file in the repository except the folders the build is allowed to own."""
    files = set()
    for dirpath, dirnames, filenames in os.walk(REPO):
        dirnames[:] = [d for d in dirnames if d not in _UNWATCHED and d != "__pycache__"]
        for name in filenames:
            files.add(str(Path(dirpath, name).relative_to(REPO)))
    return files


def _jupyter_book() -> str:
    """Path of the jupyter-book command of this Python environment."""
    candidate = Path(sys.executable).with_name("jupyter-book")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("jupyter-book")
    if found is None:
        pytest.fail(f"jupyter-book is not installed for {sys.executable}: {SETUP_HINT}.", pytrace=False)
    return found


def vendor_js() -> None:
    """Fill _vendor/ (MathJax, require.js, the widget manager) as `make book` does, or fail saying why."""
    vendor = subprocess.run(["bash", str(REPO / "tools" / "vendor.sh")], cwd=REPO,
                            capture_output=True, text=True)
    if vendor.returncode != 0:
        pytest.fail(f"tools/vendor.sh failed (the book's MathJax and widget files are missing): "
                    f"{vendor.stderr.strip()}\nFix: {SETUP_HINT}.", pytrace=False)


def build_book(out: Path, *options: str) -> BookBuild:
    """`jupyter-book build` of the repository from clean (-W -n --keep-going, then `options`) into out."""
    before = _repo_files()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")   # no __pycache__ from book/llmbook_html.py
    start = time.perf_counter()
    proc = subprocess.run([_jupyter_book(), "build", str(REPO), "--path-output", str(out),
                           "-W", "-n", "--keep-going", *options],
                          cwd=REPO, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)   # drop terminal colours
    if proc.returncode != 0:
        problems = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
        shown = "\n".join(problems[:30]) or log[-3000:]
        pytest.fail(f"`jupyter-book build . -W -n --keep-going {' '.join(options)}` failed "
                    f"(exit {proc.returncode}); every warning is an error:\n{shown}", pytrace=False)
    html = out / "_build" / "html"
    if not (html / "index.html").exists():
        pytest.fail(f"the build exited 0 but wrote no {html / 'index.html'}; build log tail:\n{log[-3000:]}",
                    pytrace=False)
    return BookBuild(html=html, log=log, seconds=seconds,
                     new_repo_files=sorted(_repo_files() - before))


@pytest.fixture(scope="session")
def book_build(tmp_path_factory: pytest.TempPathFactory) -> BookBuild:
    """Vendor the JavaScript, then build the book (as `make book`: with solutions) into a temp folder."""
    vendor_js()
    return build_book(tmp_path_factory.mktemp("book"))


@pytest.fixture(scope="session")
def built_book(request: pytest.FixtureRequest) -> Path:
    """The html folder of the book built once for this session, or of LLMBOOK_BUILT_HTML's build if set."""
    # LLMBOOK_BUILT_HTML=_build/html reuses a build (`make book`) for the tests that only read it;
    # the build tests themselves (test_build_succeeds_...) still build from clean.
    reuse = os.environ.get("LLMBOOK_BUILT_HTML")
    if reuse:
        html = Path(reuse).resolve()
        if not (html / "index.html").is_file():
            pytest.fail(f"LLMBOOK_BUILT_HTML={reuse}: no index.html there; build the book or unset it",
                        pytrace=False)
        return html
    return request.getfixturevalue("book_build").html

# Notebooks under tests/ are fixtures (e.g. grading submissions), not notebooks for nbval to check.
collect_ignore_glob = ["fixtures/*", "fixtures/**/*"]
