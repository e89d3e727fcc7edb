"""The book: a clean `jupyter-book build -W -n` that is complete, self-contained and links to Colab."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import llmbook

from conftest import REPO, BookBuild

pytestmark = pytest.mark.slow

CDN_HOSTS = ("cdn.jsdelivr", "unpkg.com", "cdnjs", "googleapis.com", "cloudflare")
VENDORED = [
    "mathjax/tex-chtml.js",
    "mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff",
    "mathjax/input/tex/extensions/boldsymbol.js",
    "requirejs/require.js",
    "html-manager/embed-amd.js",
    "widgets-shim.js",
    "switcher.js",
    "switcher.css",
]


def _config() -> dict:
    """The book's _config.yml."""
    return yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))


def _toc_files(node=None) -> list[str]:
    """Every page named in _toc.yml (root first), without suffix."""
    if node is None:
        toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
        return [toc["root"]] + _toc_files(toc)
    found = []
    if isinstance(node, dict):
        if "file" in node:
            found.append(node["file"])
        for key in ("parts", "chapters", "sections"):
            found += _toc_files(node.get(key, []))
    elif isinstance(node, list):
        for item in node:
            found += _toc_files(item)
    return found


class _Assets(HTMLParser):
    """Collects <script src>, <link href> and <a href> of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.anchors: list[tuple[str, str]] = []   # (href, title)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        elif tag == "link" and attrs.get("href") and attrs.get("rel") in ("stylesheet", "preload"):
            self.links.append(attrs["href"])
        elif tag == "a" and attrs.get("href"):
            self.anchors.append((attrs["href"], attrs.get("title") or ""))


def _pages(html: Path) -> list[Path]:
    """The built content pages (not theme templates under _static, not the index.html redirect)."""
    pages = []
    for page in sorted(html.rglob("*.html")):
        if page.relative_to(html).parts[0] in ("_static", "_sources", "_images"):
            continue
        if 'http-equiv="Refresh"' in page.read_text(encoding="utf-8")[:600]:
            continue
        pages.append(page)
    return pages


def _assets(page: Path) -> _Assets:
    """Parse one built page."""
    parser = _Assets()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_build_succeeds_and_leaves_the_repository_clean(book_build: BookBuild):
    """The -W build passed (the fixture fails otherwise) and wrote nothing into the repository."""
    assert "build succeeded" in book_build.log, book_build.log[-2000:]
    assert book_build.new_repo_files == [], (
        f"the book build wrote files into the repository: {book_build.new_repo_files}; "
        "it must write only under --path-output")


def test_every_toc_page_is_built(built_book: Path):
    """Each page in _toc.yml has its HTML page, and chapter notebooks render from the .ipynb twin."""
    pages = _toc_files()
    assert "chapters/01_language_models/index" in pages, f"chapter 1 missing from _toc.yml: {pages}"
    for page in pages:
        assert (built_book / f"{page}.html").is_file(), f"{page}.html was not built (listed in _toc.yml)"
        if (REPO / f"{page}.ipynb").exists():
            assert (built_book / "_sources" / f"{page}.ipynb").is_file(), (
                f"{page} was rendered from its MyST source, not from {page}.ipynb: "
                "check exclude_patterns in _config.yml")


def test_repository_url_is_written_once_and_agrees_with_the_package():
    """_config.yml's repository.url is llmbook.REPOSITORY."""
    url = _config()["repository"]["url"].rstrip("/")
    assert url == llmbook.REPOSITORY.rstrip("/"), (
        f"_config.yml repository.url {url!r} differs from llmbook.REPOSITORY {llmbook.REPOSITORY!r}")


def test_colab_button_opens_the_notebook_in_the_repository(built_book: Path):
    """The launch button's Colab link on each chapter notebook page opens that .ipynb on the configured branch."""
    config = _config()
    owner_repo = re.sub(r"^https://github\.com/", "", config["repository"]["url"].rstrip("/"))
    branch = config["repository"].get("branch", "main")
    notebooks = [p for p in _toc_files() if (REPO / f"{p}.ipynb").exists()]
    assert "chapters/01_language_models/01_ngram" in notebooks, (
        "chapters/01_language_models/01_ngram.ipynb is missing: run `make notebooks`")
    for page in notebooks:
        expected = (f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{page}.ipynb")
        launch = [href for href, title in _assets(built_book / f"{page}.html").anchors
                  if title == "Launch on Colab"]
        assert launch == [expected], f"{page}.html: 'Launch on Colab' links {launch}, expected [{expected!r}]"


def test_no_page_loads_anything_from_a_cdn(built_book: Path):
    """Every script and stylesheet of every page is the book's own file (nothing from a CDN)."""
    pages = _pages(built_book)
    assert len(pages) >= 4, f"only {len(pages)} HTML pages built"
    for page in pages:
        assets = _assets(page)
        for url in assets.scripts + assets.links:
            assert "://" not in url and not url.startswith("//"), (
                f"{page.relative_to(built_book)} loads {url} from the network; serve it from _vendor/ "
                "(tools/vendor.sh) and point _config.yml at it")
            assert not any(host in url for host in CDN_HOSTS), f"{page.relative_to(built_book)}: CDN {url}"


def test_math_and_widget_scripts_are_the_vendored_ones(built_book: Path):
    """Pages load MathJax and, where widgets are saved, require.js, the shim and embed-amd.js locally, in order."""
    ngram = _assets(built_book / "chapters/01_language_models/01_ngram.html").scripts
    assert any(s.split("?")[0].endswith("_static/mathjax/tex-chtml.js") for s in ngram), ngram
    widget_pages = [p for p in _pages(built_book)
                    if "application/vnd.jupyter.widget-state+json" in p.read_text(encoding="utf-8")]
    assert widget_pages, ("no page has saved widget state: the chapter 1 temperature explorer "
                          "should be executed with widget state (`make notebooks`)")
    for page in widget_pages:
        names = [s.split("?")[0].rsplit("_static/", 1)[-1] for s in _assets(page).scripts]
        wanted = ["requirejs/require.js", "widgets-shim.js", "html-manager/embed-amd.js"]
        positions = [names.index(w) if w in names else -1 for w in wanted]
        assert -1 not in positions and positions == sorted(positions), (
            f"{page.relative_to(built_book)}: widget scripts {wanted} missing or out of order in {names}")


def test_vendored_files_are_in_the_build(built_book: Path):
    """MathJax (with fonts and TeX extensions), require.js, the widget bundle and its fonts are copied."""
    static = built_book / "_static"
    for rel in VENDORED:
        assert (static / rel).is_file(), f"_static/{rel} missing from the build: run `bash tools/vendor.sh`"
    assert list((static / "html-manager").glob("*.woff2")), "the widget bundle's Font Awesome fonts are missing"


def test_every_page_loads_the_switcher(built_book: Path):
    """switcher.js and switcher.css are on every page."""
    for page in _pages(built_book):
        assets = _assets(page)
        assert any("_static/switcher.js" in s for s in assets.scripts), f"{page.name} lacks switcher.js"
        assert any("_static/switcher.css" in s for s in assets.links), f"{page.name} lacks switcher.css"
