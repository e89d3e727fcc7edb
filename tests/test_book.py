"""The book: a clean `jupyter-book build -W -n` that is complete, self-contained and links to Colab."""
from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import llmbook
from llmbook.grading import build as grading_build, master as grading_master, spec as grading_spec

from conftest import BookBuild, READABILITY_EXEMPT, REPO, build_book, load_script, vendor_js

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


def _toc() -> dict:
    """The book's _toc.yml."""
    return yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))


def _toc_files(node=None) -> list[str]:
    """Every page named in _toc.yml (or in the toc `node`, a dict with a root), root first, without suffix."""
    if node is None:
        node = _toc()
    if isinstance(node, dict) and "root" in node:
        return [node["root"]] + _toc_files({k: v for k, v in node.items() if k != "root"})
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


# Exercise sets by name: {"ch01": "ch01_language_models", ...}, one per master in grading_src/.
EXERCISE_SETS = {grading_master.set_name(m): m.stem for m in grading_build.masters(REPO)}
# Chapter folders whose exercise set is not written yet (their last page has no Exercises section).
WITHOUT_EXERCISE_SET: set[str] = set()


def _book_toc():
    """tools/book_toc.py, the toc and config with or without the Solutions part."""
    return load_script("tools/book_toc.py")


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
    for name in EXERCISE_SETS.values():   # the exercise sets and their solutions are notebook pages too
        assert f"exercises/{name}" in notebooks and f"solutions/{name}" in notebooks, (name, notebooks)
    for page in notebooks:
        expected = (f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{page}.ipynb")
        launch = [href for href, title in _assets(built_book / f"{page}.html").anchors
                  if title == "Launch on Colab"]
        assert launch == [expected], f"{page}.html: 'Launch on Colab' links {launch}, expected [{expected!r}]"


def _committed(path: str) -> bool:
    """Whether a repository file is committed (tracked by git); outside a git checkout, whether it exists."""
    git = shutil.which("git")
    inside = git and subprocess.run([git, "rev-parse", "--is-inside-work-tree"], cwd=REPO,
                                    capture_output=True, text=True).stdout.strip() == "true"
    if not inside:
        return (REPO / path).is_file()
    return subprocess.run([git, "ls-files", "--error-unmatch", path], cwd=REPO, capture_output=True).returncode == 0


def test_chapter_pages_open_in_colab_per_framework(built_book: Path):
    """Under each chapter page's title: "Open in Colab: PyTorch · TensorFlow · both" (book/llmbook_html.py).

    PyTorch and TensorFlow open the single-framework notebooks (colab/, tools/colab_variants.py), "both"
    the page's twin, as the theme's launch button does; every link points at a committed file.
    """
    config = _config()
    owner_repo = re.sub(r"^https://github\.com/", "", config["repository"]["url"].rstrip("/"))
    branch = config["repository"].get("branch", "main")
    colab = f"{config['launch_buttons']['colab_url'].rstrip('/')}/github/{owner_repo}/blob/{branch}/"
    pages = [p for p in _toc_files() if p.startswith("chapters/") and (REPO / f"{p}.ipynb").exists()]
    assert len(pages) >= 18, pages
    for page in pages:
        folder, name = page.split("/")[1:]
        html = (built_book / f"{page}.html").read_text(encoding="utf-8")
        blocks = re.findall(r'<p class="llmbook-colab">(.*?)</p>', html, flags=re.S)
        assert len(blocks) == 1, f"{page}.html: {len(blocks)} 'Open in Colab' lines, expected 1"
        assert html.index('<p class="llmbook-colab">') > html.index("</h1>"), f"{page}.html: links above the title"
        assert "Open in Colab:" in blocks[0], blocks[0]
        links = re.findall(r'<a [^>]*data-framework-link="(\w+)" href="([^"]+)"[^>]*>([^<]+)</a>', blocks[0])
        wanted = [("pytorch", f"colab/pytorch/{folder}/{name}.ipynb", "PyTorch"),
                  ("tensorflow", f"colab/tensorflow/{folder}/{name}.ipynb", "TensorFlow"),
                  ("both", f"{page}.ipynb", "both")]
        assert links == [(key, colab + path, text) for key, path, text in wanted], f"{page}.html: {links}"
        for _, path, _ in wanted:
            assert _committed(path), f"{page}.html links {path}, which is not committed: run `make colab`, commit"
        launch = [href for href, title in _assets(built_book / f"{page}.html").anchors if title == "Launch on Colab"]
        assert launch == [links[-1][1]], f"{page}.html: 'both' {links[-1][1]} is not the launch button's {launch}"
    others = [p for p in _pages(built_book) if p.relative_to(built_book).as_posix()[:-5] not in pages]
    assert others, "no other pages built"
    for page in others:
        assert 'class="llmbook-colab"' not in page.read_text(encoding="utf-8"), (
            f"{page.relative_to(built_book)} has Colab framework links; only chapter notebook pages have variants")


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


# --- the Exercises and Solutions parts --------------------------------------------------------------


def _part(toc: dict, caption: str) -> list[str]:
    """The pages of the part with this caption, in order."""
    parts = [p for p in toc["parts"] if p.get("caption") == caption]
    assert len(parts) == 1, f"_toc.yml should have one part captioned {caption!r}: {[p.get('caption') for p in toc['parts']]}"
    return _toc_files(parts[0])


def test_toc_has_exercises_and_solutions_parts_with_every_set():
    """After the chapters, before the appendix: an Exercises part and a Solutions part, each an index and every set."""
    toc = _toc()
    assert [p.get("caption") for p in toc["parts"]] == ["Chapters", "Exercises", "Solutions", "Appendix"]
    assert EXERCISE_SETS, "no exercise masters found in grading_src/"
    for folder in ("exercises", "solutions"):
        on_disk = sorted(p.stem for p in (REPO / folder).glob("*.ipynb"))
        assert on_disk == sorted(EXERCISE_SETS.values()), f"{folder}/ holds {on_disk}: run `make exercises`"
        part = _part(toc, folder.capitalize())
        assert part == [f"{folder}/index"] + [f"{folder}/{name}" for name in EXERCISE_SETS.values()], part


def test_toc_without_solutions_leaves_out_the_part_and_the_folder(tmp_path):
    """tools/book_toc.py: SOLUTIONS=1 is the repository's toc and config; SOLUTIONS=0 drops every solution page."""
    book_toc = _book_toc()
    assert book_toc.toc(True) == _toc() and book_toc.config(True) == _config()
    toc_path, config_path = book_toc.write(False, tmp_path)
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    with_solutions = _toc_files()
    assert [p for p in with_solutions if p.startswith("solutions/")], "the default toc lists no solution page"
    assert _toc_files(toc) == [p for p in with_solutions if not p.startswith("solutions/")]
    assert [p["caption"] for p in toc["parts"]] == ["Chapters", "Exercises", "Appendix"]
    assert config["exclude_patterns"] == _config()["exclude_patterns"] + ["solutions"]
    for name, folder in config["sphinx"]["local_extensions"].items():   # found relative to the config file
        assert (tmp_path / folder).resolve() == (REPO / _config()["sphinx"]["local_extensions"][name]).resolve()
    config["sphinx"]["local_extensions"] = _config()["sphinx"]["local_extensions"]
    assert {k: v for k, v in config.items() if k != "exclude_patterns"} == {
        k: v for k, v in _config().items() if k != "exclude_patterns"}


def _make_n(*args: str) -> subprocess.CompletedProcess:
    """`make -n book ARGS` in the repository: what `make book` would run, without running it."""
    make = shutil.which("make")
    assert make, "make is not installed"
    return subprocess.run([make, "-n", "book", *args], cwd=REPO, capture_output=True, text=True)


def test_make_book_solutions_switch_uses_the_generated_toc():
    """`make book SOLUTIONS=0` builds from tools/book_toc.py's files; the default builds from the repository's."""
    off = _make_n("SOLUTIONS=0")
    assert off.returncode == 0, off.stderr
    match = re.search(r"tools/book_toc\.py --solutions 0 --out (\S+)", off.stdout)
    assert match, f"make book SOLUTIONS=0 does not run tools/book_toc.py:\n{off.stdout}"
    out = match.group(1)
    build = [line for line in off.stdout.splitlines() if "jupyter-book build" in line]
    assert len(build) == 1 and f"--toc {out}/_toc.yml --config {out}/_config.yml" in build[0], build
    default = _make_n()
    build = [line for line in default.stdout.splitlines() if "jupyter-book build" in line]
    assert default.returncode == 0 and len(build) == 1 and "--toc" not in build[0], default.stdout
    assert "book_toc" not in default.stdout
    wrong = _make_n("SOLUTIONS=no")
    assert wrong.returncode != 0 and "SOLUTIONS must be 1 (the default) or 0" in wrong.stderr, wrong.stderr


@pytest.fixture(scope="module")
def book_without_solutions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book built as `make book SOLUTIONS=0` builds it (about as long as the default build)."""
    vendor_js()
    toc_path, config_path = _book_toc().write(False, tmp_path_factory.mktemp("toc"))
    return build_book(tmp_path_factory.mktemp("book-no-solutions"),
                      "--toc", str(toc_path), "--config", str(config_path)).html


def test_default_build_has_the_solutions_and_solutions_0_has_none(built_book: Path, book_without_solutions: Path):
    """The default book has every solution page in its navigation; SOLUTIONS=0 builds and links none."""
    nav = built_book / "intro.html"
    for name in EXERCISE_SETS.values():
        for book in (built_book, book_without_solutions):
            assert (book / "exercises" / f"{name}.html").is_file(), f"{book}: exercises/{name}.html missing"
        assert (built_book / "solutions" / f"{name}.html").is_file(), f"solutions/{name}.html not built"
        assert f'href="solutions/{name}.html"' in nav.read_text(encoding="utf-8"), f"{name}: not in the navigation"
        assert not (book_without_solutions / "solutions" / f"{name}.html").exists()
    assert not (book_without_solutions / "solutions").exists()
    linking = [p.relative_to(book_without_solutions).as_posix() for p in _pages(book_without_solutions)
               if re.search(r'href="[^"]*solutions/', p.read_text(encoding="utf-8"))]
    assert not linking, f"pages of the book without solutions link to solution pages: {linking}"


def test_exercise_pages_say_how_to_check_an_answer(built_book: Path):
    """Each set's page has its Colab button and its how-to text; the part's index links every set."""
    for name in EXERCISE_SETS.values():
        page = built_book / "exercises" / f"{name}.html"
        text = page.read_text(encoding="utf-8")
        for words in ("How to work.", "How you are graded.", "check cell"):
            assert words in text, f"exercises/{name}.html lacks {words!r} (from grading_src/{name}.md)"
        assert [h for h, t in _assets(page).anchors if t == "Launch on Colab"], f"{name}: no Colab button"
    index = _assets(built_book / "exercises" / "index.html")
    linked = {href.split("#")[0] for href, _ in index.anchors}
    assert {f"{name}.html" for name in EXERCISE_SETS.values()} <= linked, linked
    text = (built_book / "exercises" / "index.html").read_text(encoding="utf-8")
    assert "How to check an answer" in text and "How your instructor grades" in text


def test_exercises_index_lists_every_set_with_its_points():
    """exercises/index.md's table: one row per set, with the points its questions add up to."""
    rows = re.findall(r"^\| (\d+) \| \[[^\]]+\]\((ch\d\d_\w+)\.ipynb\) \| (\d+) \|$",
                      (REPO / "exercises" / "index.md").read_text(encoding="utf-8"), flags=re.M)
    assert [name for _, name, _ in rows] == list(EXERCISE_SETS.values()), rows
    for chapter, name, points in rows:
        questions = grading_spec.load(name.split("_")[0]).questions.values()
        assert int(chapter) == int(name[2:4]), (chapter, name)
        assert int(points) == sum(q.points for q in questions), f"{name}: the table says {points} points"


def test_every_chapter_ends_with_an_exercises_section(built_book: Path):
    """The last page of each chapter ends with an "Exercises" section that links the chapter's set page."""
    chapters = [c for p in _toc()["parts"] if p.get("caption") == "Chapters" for c in p["chapters"]]
    checked = []
    for chapter in chapters:
        folder = chapter["file"].split("/")[1]                          # "01_language_models"
        name = EXERCISE_SETS.get(f"ch{folder[:2]}")
        if folder in WITHOUT_EXERCISE_SET:
            assert name is None, f"chapter {folder} has a set ({name}) now: remove it from WITHOUT_EXERCISE_SET"
            continue
        assert name, f"chapter {folder} has no exercise set in grading_src/ (nor is it in WITHOUT_EXERCISE_SET)"
        last = (chapter.get("sections") or [chapter])[-1]["file"]
        html = (built_book / f"{last}.html").read_text(encoding="utf-8")
        sections = list(re.finditer(r'<section id="exercises(?:-\d+)?">(.*?)</section>', html, flags=re.S))
        assert sections, f"{last}: no section titled Exercises"
        section = sections[-1]
        assert "<h2" not in html[section.end():], f"{last}: the Exercises section is not the page's last section"
        targets = {((built_book / last).parent / href.split("#")[0]).resolve()
                   for href in re.findall(r'href="([^"]+)"', section.group(1)) if "://" not in href}
        page = built_book / "exercises" / f"{name}.html"
        assert page.is_file() and page.resolve() in targets, (
            f"{last}: its Exercises section does not link exercises/{name}.html (links: {sorted(map(str, targets))})")
        checked.append(folder)
    assert len(checked) == len(EXERCISE_SETS), (checked, EXERCISE_SETS)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _OutputImages(HTMLParser):
    """The images of a page's notebook outputs: each one's alt text and its figure's caption."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, set[str]]] = []           # open elements: (tag, classes)
        self.images: list[dict] = []                          # {"src", "alt", "figure": index or None}
        self.captions: list[str] = []                         # the text of each <figure>'s <figcaption>
        self.figures: list[int] = []                          # indexes into captions of the open <figure>s

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure":
            self.figures.append(len(self.captions))
            self.captions.append("")
        if tag == "img" and any("cell_output" in classes for _, classes in self.stack):
            self.images.append({"src": attrs.get("src"), "alt": (attrs.get("alt") or "").strip(),
                                "figure": self.figures[-1] if self.figures else None})
        if tag not in VOID:
            self.stack.append((tag, set((attrs.get("class") or "").split())))

    def handle_endtag(self, tag):
        if tag in VOID or tag not in (t for t, _ in self.stack):   # <img ... />, stray end tags
            return
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == "figure" and self.figures:
                self.figures.pop()
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self.figures and any(t == "figcaption" for t, _ in self.stack):
            self.captions[self.figures[-1]] += data


def test_output_images_have_alt_text_and_a_caption(built_book: Path):
    """On the chapter and appendix pages (READABILITY_EXEMPT aside) every output image is a captioned figure."""
    pages = [p for p in _toc_files() if (REPO / f"{p}.ipynb").exists() and p.startswith(("chapters/", "appendix/"))
             and not p.startswith(READABILITY_EXEMPT)]
    assert any(p.startswith("appendix/") for p in pages) and any(p.startswith("chapters/07") for p in pages), pages
    seen = 0
    for page in pages:
        parser = _OutputImages()
        parser.feed((built_book / f"{page}.html").read_text(encoding="utf-8"))
        for img in parser.images:
            where = f"{page}.html: the output image {img['src']}"
            assert img["alt"], f"{where} has no alt text (cell metadata mystnb.image.alt; tests/test_notebooks.py)"
            assert img["figure"] is not None, f"{where} is not in a <figure> (cell metadata mystnb.figure)"
            caption = " ".join(parser.captions[img["figure"]].split()).rstrip("#").strip()
            assert caption, f"{where} has a <figure> without a <figcaption> text (mystnb.figure.caption)"
        seen += len(parser.images)
    assert seen >= 10, f"only {seen} output images on {len(pages)} pages: are the figures still rendered as <img>?"
