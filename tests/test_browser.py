"""The built book in headless Chromium with the network cut: math, figures, widgets and the switcher."""
from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path

import pytest

from conftest import READABILITY_EXEMPT, SETUP_HINT

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CH1 = "chapters/01_language_models"
SWITCHER_PAGE = f"{CH1}/02_nnlm.html"
OTHER_PAGE = f"{CH1}/01_ngram.html"
TIMEOUT_MS = 20_000


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the built book without logging every request."""

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def server(built_book: Path):
    """The built book served on localhost; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (never `playwright install`)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the Python package playwright is not installed: {SETUP_HINT}.", pytrace=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: {SETUP_HINT} (it installs the Debian package "
                    "chromium; without root, ask an administrator to run `apt-get install -y chromium`).",
                    pytrace=False)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as err:   # a broken install: say so instead of a Playwright traceback
            pytest.fail(f"could not start {CHROMIUM}: {err}\nFix: {SETUP_HINT}.", pytrace=False)
        yield chromium
        chromium.close()


class Traffic:
    """Records what must not happen: requests leaving localhost, failed requests, HTTP errors, JS and console errors."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.problems: list[str] = []

    def route(self, route) -> None:
        """Let requests to the book's server through; block and record everything else."""
        url = route.request.url
        if url.startswith(self.base):
            route.continue_()
        else:
            self.problems.append(f"blocked request to {url}")
            route.abort()

    def attach(self, page) -> None:
        """Listen to one page's failures."""
        page.on("requestfailed", lambda req: self.problems.append(f"failed request {req.url}: {req.failure}"))
        page.on("response", lambda res: res.status >= 400 and not res.url.endswith("/favicon.ico")
                and self.problems.append(f"HTTP {res.status} for {res.url}"))   # the book has no favicon
        page.on("pageerror", lambda err: self.problems.append(f"JavaScript error: {err}"))
        page.on("console", self.console)

    def console(self, message) -> None:
        """Record a console error (a script's console.error, a resource that failed), except the favicon's 404."""
        if message.type == "error" and not (message.location or {}).get("url", "").endswith("/favicon.ico"):
            self.problems.append(f"console error: {message.text}")

    def assert_clean(self) -> None:
        """No request left the machine or failed, and no script threw."""
        assert not self.problems, "the page was not self-contained or threw:\n" + "\n".join(self.problems)


class Tab:
    """One browser page on the served book, with its Traffic."""

    def __init__(self, page, traffic: Traffic, base: str) -> None:
        self.page, self.traffic, self.base = page, traffic, base

    def open(self, path: str) -> None:
        """Load a page of the book and wait for MathJax's first typesetting pass (if the page has math)."""
        page = self.page
        page.goto(self.base + path, wait_until="load")
        if page.locator(".math").count():
            try:
                page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                       timeout=10_000)
            except Exception:
                pytest.fail(f"{path}: MathJax did not start within 10 s; is _static/mathjax/tex-chtml.js "
                            f"served and mathjax_path in _config.yml local? Problems: {self.traffic.problems}",
                            pytrace=False)
            page.evaluate("() => MathJax.startup.promise")


@pytest.fixture
def tab(browser, server):
    """A page in a fresh browser context (empty localStorage) with the network cut off."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    traffic = Traffic(server)
    context.route("**/*", traffic.route)
    page = context.new_page()
    traffic.attach(page)
    yield Tab(page, traffic, server)
    context.close()


def _chapter1_pages(built_book: Path) -> list[str]:
    """Chapter 1's pages as built, index first."""
    pages = sorted(p.relative_to(built_book).as_posix() for p in (built_book / CH1).glob("*.html"))
    assert f"{CH1}/index.html" in pages, f"{CH1}/index.html was not built; pages: {pages}"
    return [f"{CH1}/index.html"] + [p for p in pages if not p.endswith("/index.html")]


RAW_TEX_JS = """() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .cell_input, .widget-readout')
      .forEach(e => e.remove());
  return copy.textContent;
}"""

IMAGES_JS = """() => [...(document.querySelector('article.bd-article') || document).querySelectorAll('img')]
  .map(img => ({src: img.getAttribute('src'), ok: img.complete && img.naturalWidth > 0}))"""


def test_chapter1_math_and_figures_render_offline(tab, built_book):
    """Every chapter 1 page typesets its math with the local MathJax, shows no raw TeX, and loads every figure."""
    page, traffic = tab.page, tab.traffic
    math_pages, images_seen = 0, 0
    for path in _chapter1_pages(built_book):
        tab.open(path)
        n_math = page.locator(".math").count()
        if n_math:
            math_pages += 1
            untypeset = page.evaluate("() => [...document.querySelectorAll('.math')]"
                                      ".filter(e => !e.querySelector('mjx-container')).length")
            assert untypeset == 0, f"{path}: {untypeset} of {n_math} math elements were not typeset by MathJax"
            assert page.locator("mjx-merror").count() == 0, (
                f"{path}: MathJax reported TeX errors: {page.locator('mjx-merror').all_inner_texts()}")
        text = page.evaluate(RAW_TEX_JS)
        for raw in ("$$", "\\(", "\\[", "\\begin{", "\\frac"):
            assert raw not in text, f"{path}: raw TeX {raw!r} is visible in the text (MathJax did not run?)"
        images = page.evaluate(IMAGES_JS)
        broken = [img["src"] for img in images if not img["ok"]]
        assert not broken, f"{path}: images that did not load: {broken}"
        images_seen += len(images)
    assert math_pages >= 1, "no chapter 1 page has math (expected the chain rule, perplexity ...)"
    assert images_seen >= 1, "no chapter 1 page has a figure (expected matplotlib plots)"
    traffic.assert_clean()


def _explorer_page(built_book: Path) -> str:
    """The chapter 1 page that saves a SelectionSlider and a Stack (the temperature explorer)."""
    for path in _chapter1_pages(built_book):
        html = (built_book / path).read_text(encoding="utf-8")
        if "SelectionSliderModel" in html and "StackModel" in html:
            return path
    pytest.fail(f"no chapter 1 page saves a SelectionSlider with a Stack (the temperature explorer): "
                f"re-execute the chapter with `make notebooks` so the widget state is stored", pytrace=False)


VISIBLE_FRAMES_JS = """(output) => [...output.querySelectorAll('.widget-html-content')]
  .filter(e => e.getClientRects().length > 0).map(e => e.innerText.trim()).join(' | ')"""


def test_temperature_explorer_renders_and_moves_without_a_kernel(tab, built_book):
    """The saved widget view is drawn, and moving its slider by keyboard shows another precomputed frame."""
    page, traffic = tab.page, tab.traffic
    path = _explorer_page(built_book)
    tab.open(path)
    handle = page.locator(".cell_output .widget-slider .noUi-handle").first
    try:
        handle.wait_for(state="visible")
    except Exception:
        pytest.fail(f"{path}: no widget slider became visible: the widget manager did not draw the saved "
                    f"state (problems: {traffic.problems})", pytrace=False)
    output = handle.locator("xpath=ancestor::div[contains(@class, 'cell_output')]").first
    before = output.evaluate(VISIBLE_FRAMES_JS)
    assert before, f"{path}: the explorer shows no widgets.HTML frame next to its slider"
    at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
    handle.focus()
    page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
    try:
        page.wait_for_function(f"([output, before]) => ({VISIBLE_FRAMES_JS})(output) !== before",
                               arg=[output.element_handle(), before], timeout=5_000)
    except Exception:
        pytest.fail(f"{path}: moving the slider did not change the visible frame (still {before[:80]!r}...): "
                    "is the slider jslinked to the Stack's selected_index?", pytrace=False)
    after = output.evaluate(VISIBLE_FRAMES_JS)
    assert after and after != before
    traffic.assert_clean()


ALIGNMENT_PAGE = "chapters/05_attention/03_attention_translation.html"


def test_alignment_explorer_switches_sentences_without_a_kernel(tab, built_book):
    """Chapter 5's explorer: the saved drop-down is drawn and choosing another sentence shows its heatmap."""
    page, traffic = tab.page, tab.traffic
    if not (built_book / ALIGNMENT_PAGE).exists():
        pytest.fail(f"{ALIGNMENT_PAGE} was not built: is chapter 5 in _toc.yml?", pytrace=False)
    tab.open(ALIGNMENT_PAGE)
    select = page.locator(".cell_output .widget-dropdown select").first
    try:
        select.wait_for(state="visible")
    except Exception:
        pytest.fail(f"{ALIGNMENT_PAGE}: no drop-down became visible: the widget manager did not draw the saved "
                    f"state (problems: {traffic.problems})", pytrace=False)
    output = select.locator("xpath=ancestor::div[contains(@class, 'cell_output')]").first
    before = output.evaluate(VISIBLE_FRAMES_JS)
    assert "reference:" in before, f"{ALIGNMENT_PAGE}: the explorer shows no heatmap frame next to its drop-down"
    assert output.locator("td[title]").count() > 0, "the heatmap cells carry no hover titles with their weights"
    select.select_option(index=1)
    try:
        page.wait_for_function(f"([output, before]) => ({VISIBLE_FRAMES_JS})(output) !== before",
                               arg=[output.element_handle(), before], timeout=5_000)
    except Exception:
        pytest.fail(f"{ALIGNMENT_PAGE}: choosing another sentence did not change the heatmap: is the drop-down "
                    "jslinked to the Stack's selected_index?", pytrace=False)
    traffic.assert_clean()


def _shown(page, selector: str) -> list[bool]:
    """For each element matching selector: is it displayed?"""
    return page.evaluate("(sel) => [...document.querySelectorAll(sel)].map(e => e.getClientRects().length > 0)",
                         selector)


def _assert_framework(page, choice: str, where: str) -> None:
    """The switcher shows `choice` pressed and the cells shown/hidden accordingly."""
    group = page.get_by_role("group", name="Framework")
    assert group.count() == 1, f"{where}: expected one 'Framework' control, found {group.count()}"
    pressed = group.locator("button[aria-pressed='true']").all_inner_texts()
    assert pressed == [choice], f"{where}: pressed {pressed}, expected [{choice!r}]"
    torch_cells = _shown(page, ".tag_pytorch, .tag-pytorch")        # code cells, prose containers
    tf_cells = _shown(page, ".tag_tensorflow, .tag-tensorflow")
    want_torch, want_tf = choice in ("PyTorch", "Both"), choice in ("TensorFlow", "Both")
    assert all(v == want_torch for v in torch_cells), f"{where}: PyTorch cells shown {torch_cells} under {choice}"
    assert all(v == want_tf for v in tf_cells), f"{where}: TensorFlow cells shown {tf_cells} under {choice}"


def test_framework_switcher(tab, built_book):
    """One accessible control; PyTorch by default; hides the other framework; kept across pages and reloads."""
    page, traffic = tab.page, tab.traffic
    tab.open(SWITCHER_PAGE)
    assert page.locator(".cell.tag_pytorch").count() and page.locator(".cell.tag_tensorflow").count(), (
        f"{SWITCHER_PAGE} needs cells tagged pytorch and tensorflow to test the switcher")
    assert page.locator(".fw-switcher").count() == 1
    _assert_framework(page, "PyTorch", "default")

    group = page.get_by_role("group", name="Framework")
    group.get_by_role("button", name="TensorFlow").click()
    _assert_framework(page, "TensorFlow", "after clicking TensorFlow")

    group.get_by_role("button", name="Both").focus()            # keyboard: Enter and Tab + Space
    page.keyboard.press("Enter")
    _assert_framework(page, "Both", "after Enter on Both")
    group.get_by_role("button", name="PyTorch").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    _assert_framework(page, "TensorFlow", "after Tab, Space from PyTorch")

    tab.open(OTHER_PAGE)
    _assert_framework(page, "TensorFlow", f"{OTHER_PAGE} after choosing TensorFlow")
    page.go_back(wait_until="load")
    _assert_framework(page, "TensorFlow", f"back on {SWITCHER_PAGE}")
    page.reload(wait_until="load")
    _assert_framework(page, "TensorFlow", f"{SWITCHER_PAGE} after a reload")
    tab.open("intro.html")
    assert page.get_by_role("group", name="Framework").count() == 1, "intro.html lacks the Framework control"

    page.set_viewport_size({"width": 400, "height": 800})   # a phone: the control moves out of the header
    group = page.get_by_role("group", name="Framework")
    group.get_by_role("button", name="PyTorch").wait_for(state="visible", timeout=5_000)
    assert group.count() == 1, f"{group.count()} Framework controls on a narrow screen"
    traffic.assert_clean()


CH6_EXPLORER = "chapters/06_transformer/03_translation.html"


def test_attention_explorer_dropdowns_switch_frames_without_a_kernel(tab, built_book):
    """Chapter 6's attention explorer: its saved dropdowns are drawn, and picking another head shows that head."""
    page, traffic = tab.page, tab.traffic
    if not (built_book / CH6_EXPLORER).exists():
        pytest.fail(f"{CH6_EXPLORER} was not built: is chapters/06_transformer/03_translation in _toc.yml?",
                    pytrace=False)
    tab.open(CH6_EXPLORER)
    selects = page.locator(".cell_output .widget-dropdown select")
    try:
        selects.first.wait_for(state="visible")
    except Exception:
        pytest.fail(f"{CH6_EXPLORER}: no dropdown became visible: the widget manager did not draw the saved "
                    f"state (problems: {traffic.problems})", pytrace=False)
    head = selects.nth(3)                                     # sentence, attention, layer, head
    output = head.locator("xpath=ancestor::div[contains(@class, 'cell_output')]").first
    before = output.evaluate(VISIBLE_FRAMES_JS)
    assert "head 1" in before, f"{CH6_EXPLORER}: the first frame should be head 1, shows {before[:120]!r}"
    head.select_option(index=1)
    try:
        page.wait_for_function(f"([output, before]) => ({VISIBLE_FRAMES_JS})(output) !== before",
                               arg=[output.element_handle(), before], timeout=5_000)
    except Exception:
        pytest.fail(f"{CH6_EXPLORER}: choosing head 2 did not change the visible frame: are the dropdowns "
                    "jslinked to the stacks' selected_index?", pytrace=False)
    assert "head 2" in output.evaluate(VISIBLE_FRAMES_JS)
    traffic.assert_clean()


WIDE = {"width": 1280, "height": 800}      # a common laptop window: the book's widgets must fit it
# The ipywidgets controls a saved view can show (ipywidgets 8 class names); frames (widgets.HTML) are not
# controls: a wide table in a frame may scroll.
CONTROLS = (".widget-slider, .widget-dropdown, .widget-hprogress, .widget-vprogress, .widget-button, "
            ".widget-toggle-buttons, .widget-checkbox, .widget-text, .widget-textarea, .widget-select, "
            ".widget-radio, .widget-play")
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
WIDGETS_DRAWN_JS = f"""() => [...document.querySelectorAll('{WIDGET_VIEW}')]
  .every(s => s.parentElement.querySelector('.lm-Widget'))"""
CONTROLS_FIT_JS = """(selector) => {
  const article = document.querySelector('article.bd-article');
  const column = article.getBoundingClientRect();
  const problems = [], drawn = [];
  let checked = 0;
  for (const e of document.querySelectorAll('.cell_output :is(' + selector + ')')) {
    if (e.closest('.lm-mod-hidden')) continue;      // a frame its widget hides (a Stack's other children)
    checked++;
    const label = (e.querySelector('.widget-label') || {}).textContent || '';
    const name = e.className.split(' ').filter(c => c.startsWith('widget-')).join('.') + ` "${label.trim()}"`;
    e.scrollIntoView({block: 'center', behavior: 'instant'});
    const r = e.getBoundingClientRect();
    if (!e.getClientRects().length || r.width < 1 || r.height < 1) {
      problems.push(`${name} is not displayed`);
      continue;
    }
    const d = {left: r.left, right: r.right, top: r.top + scrollY, bottom: r.bottom + scrollY};
    for (const [other, o] of drawn) {             // a row of controls squeezed together
      const w = Math.min(d.right, o.right) - Math.max(d.left, o.left);
      const h = Math.min(d.bottom, o.bottom) - Math.max(d.top, o.top);
      if (w > 1 && h > 1) problems.push(`${name} overlaps ${other} by ${Math.round(w)} px`);
    }
    drawn.push([name, d]);
    if (r.left < column.left - 1 || r.right > column.right + 1) {
      problems.push(`${name} spans x = ${Math.round(r.left)}..${Math.round(r.right)}, outside the text ` +
                    `column ${Math.round(column.left)}..${Math.round(column.right)}`);
    }
    if (e.scrollWidth > e.clientWidth + 1) {
      problems.push(`${name} is cut: its content is ${e.scrollWidth} px wide in ${e.clientWidth} px`);
    }
    for (let a = e.parentElement; a && a !== article; a = a.parentElement) {
      const box = a.getBoundingClientRect();
      if (getComputedStyle(a).overflowX !== 'visible' && (r.left < box.left - 1 || r.right > box.right + 1)) {
        problems.push(`${name} is clipped by its container <${a.tagName.toLowerCase()} class="${a.className}">`);
        break;
      }
    }
    const x = Math.min(r.left + r.width / 2, window.innerWidth - 1), y = r.top + r.height / 2;
    const top = document.elementFromPoint(x, y);
    if (!top || !e.contains(top)) {
      problems.push(`${name} is covered at its centre by <${top ? top.tagName.toLowerCase() + ' class="' +
                    top.className + '"' : 'nothing'}>`);
    }
  }
  return {checked, problems};
}"""


def _widget_pages(built_book: Path) -> list[str]:
    """The chapter and appendix pages with saved widget views, READABILITY_EXEMPT's pages aside."""
    pages = sorted(p.relative_to(built_book).as_posix() for folder in ("chapters", "appendix")
                   for p in (built_book / folder).rglob("*.html"))
    return [p for p in pages if not p.startswith(READABILITY_EXEMPT)
            and "application/vnd.jupyter.widget-view+json" in (built_book / p).read_text(encoding="utf-8")]


def test_widget_controls_fit_a_1280_pixel_window(tab, built_book):
    """At 1280 x 800, with both frameworks shown, every widget control is drawn inside the text column,
    not cut, clipped or covered (every chapter and the appendix; READABILITY_EXEMPT's pages aside)."""
    page, traffic = tab.page, tab.traffic
    pages = _widget_pages(built_book)
    assert any(p.startswith("chapters/07") for p in pages) and len(pages) >= 4, (
        f"expected widget explorers on chapters 1-3 and 7, found them on {pages}")
    page.set_viewport_size(WIDE)
    tab.open(pages[0])
    page.get_by_role("group", name="Framework").get_by_role("button", name="Both").click()
    checked, problems = 0, []
    for path in pages:
        tab.open(path)
        try:
            page.wait_for_function(WIDGETS_DRAWN_JS, timeout=10_000)
        except Exception:
            pytest.fail(f"{path}: the saved widget views were not drawn within 10 s "
                        f"(problems: {traffic.problems})", pytrace=False)
        found = page.evaluate(CONTROLS_FIT_JS, CONTROLS)
        assert found["checked"], f"{path} saves widget views but shows no widget control"
        checked += found["checked"]
        problems += [f"{path}: {p}" for p in found["problems"]]
    assert not problems, (f"{len(problems)} of {checked} widget controls do not fit a "
                          f"{WIDE['width']} px window:\n" + "\n".join(problems))
    traffic.assert_clean()


def test_fresh_visit_logs_no_console_error(tab):
    """A first visit (empty localStorage) logs no console error; the theme starts in its "auto" mode.

    Without `html_context.default_mode` in _config.yml, pydata-sphinx-theme's head script stored an empty
    mode and its JS logged "Got invalid theme mode: . Resetting to auto." on every first visit.
    """
    page, traffic = tab.page, tab.traffic
    tab.open("intro.html")
    page.wait_for_function("() => localStorage.getItem('mode') !== null")   # the theme's JS has run
    assert page.evaluate("() => localStorage.getItem('mode')") == "auto"
    assert page.evaluate("() => document.documentElement.dataset.theme") in ("light", "dark")
    traffic.assert_clean()
    page.evaluate("() => console.error('probe')")                         # the listener is not blind
    assert traffic.problems == ["console error: probe"], traffic.problems


SEARCH_QUERY = "perplexity"
SNIPPETS_JS = """() => [...document.querySelectorAll('#search-results li')].map(li => {
  const p = li.querySelector('p.context');
  return p ? p.textContent : null;
})"""
PAGE_TEXT_JS = """async (path) => {
  const html = await (await fetch(path)).text();
  const doc = new DOMParser().parseFromString(html, 'text/html');
  doc.querySelectorAll('.headerlink').forEach(e => e.remove());
  return {snippet: Search.htmlToText(html), title: doc.querySelector('article h1').textContent,
          main: doc.querySelector('[role="main"]').textContent};
}"""


def test_search_snippets_quote_the_article_not_the_buttons(tab):
    """Search result snippets start in the page's text, not with the Colab/.ipynb/.pdf buttons' labels."""
    page, traffic = tab.page, tab.traffic
    tab.open(f"search.html?q={SEARCH_QUERY}")
    try:
        page.wait_for_function(f"() => {{ const s = ({SNIPPETS_JS})(); return s.length > 0 && s.every(t => t); }}",
                               timeout=10_000)
    except Exception:
        pytest.fail(f"search.html?q={SEARCH_QUERY}: no results with snippets within 10 s: "
                    f"{page.evaluate(SNIPPETS_JS)} (problems: {traffic.problems})", pytrace=False)
    snippets = [" ".join(text.split()) for text in page.evaluate(SNIPPETS_JS)]
    for text in snippets:
        start = text.lstrip(". ")
        assert not re.match(r"(pdf|Colab|\.ipynb|\.md)\b", start), f"snippet starts with a button label: {text[:80]!r}"
        assert ".pdf" not in text and "Colab .ipynb" not in text, f"snippet quotes the buttons: {text[:160]!r}"
    for path in ("intro.html", OTHER_PAGE):                               # pages whose top a snippet quotes
        got = page.evaluate(PAGE_TEXT_JS, path)
        assert ".pdf" in got["main"], f"{path}: no .pdf button in [role=main] any more; revisit this test"
        assert " ".join(got["snippet"].split()).startswith(" ".join(got["title"].split())), (
            f"{path}: the search text starts {got['snippet'].strip()[:80]!r}, not with the title {got['title']!r}")
    traffic.assert_clean()
