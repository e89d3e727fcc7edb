"""Sphinx extension (loaded by _config.yml): the book's HTML fixes, and the Colab links of chapter pages."""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
# A chapter page rendered from its executed twin: chapters/<folder>/<NN_name>(.ipynb).
CHAPTER_PAGE = re.compile(r"chapters/([^/]+)/([0-9][0-9]_[^/]+)")


def drop_duplicate_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Remove repeated <script> entries from a page.

    Sphinx 7.4 lists an inline script that an extension adds after the builder starts twice
    (once with filename None, once with ""); sphinx-thebe's `const THEBE_JS_URL = ...` then
    throws "Identifier 'THEBE_JS_URL' has already been declared" on every page.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set = set()
    kept = []
    for script in scripts:
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept   # the builder restores its own list after each page


def search_snippets_from_the_article(app: Any, pagename: str, templatename: str, context: dict,
                                     doctree: Any) -> None:
    """Load search-snippets.js (book/static/) on the search page, after Sphinx's searchtools.js.

    It makes result snippets quote the page's article, not the buttons and contents around it (see
    the script). Deferred, so it runs after searchtools.js, which search.html loads after the page's
    scripts, and before the search starts (on DOMContentLoaded).
    """
    if pagename == "search":
        app.add_js_file("search-snippets.js", loading_method="defer")


def colab_targets(pagename: str) -> dict[str, str] | None:
    """{"pytorch": path, "tensorflow": path, "both": path} (repository paths) for a chapter page, else None.

    The single-framework notebooks are made by tools/colab_variants.py; "both" is the page's own twin.
    """
    match = CHAPTER_PAGE.fullmatch(pagename)
    if not match:
        return None
    folder, name = match.groups()
    return {"pytorch": f"colab/pytorch/{folder}/{name}.ipynb",
            "tensorflow": f"colab/tensorflow/{folder}/{name}.ipynb",
            "both": f"{pagename}.ipynb"}


def colab_links(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Put "Open in Colab: PyTorch · TensorFlow · both" under the title of each chapter notebook page.

    The URLs are formed as the theme's Colab launch button forms its own (`launch_buttons.colab_url`,
    `repository.url` and `.branch` of _config.yml): PyTorch and TensorFlow open the single-framework
    notebooks under colab/, "both" the page's twin. A chapter page whose notebooks are missing is a
    warning (an error under -W): run `make colab`.
    """
    targets = colab_targets(pagename)
    if targets is None or "body" not in context or not str(app.env.doc2path(pagename)).endswith(".ipynb"):
        return
    theme = app.config.html_theme_options or {}
    colab = (theme.get("launch_buttons") or {}).get("colab_url", "").strip("/")
    repo = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?/?", theme.get("repository_url", ""))
    if not colab or not repo:
        return
    missing = [path for path in targets.values() if not (Path(app.srcdir) / path).is_file()]
    if missing:
        LOGGER.warning(f"{pagename}: no {', '.join(missing)} for its Colab links: run `make colab` "
                       "(tools/colab_variants.py)", location=pagename)
        return
    branch = theme.get("repository_branch") or "main"
    prefix = (theme.get("path_to_docs") or "").strip("/")
    prefix = prefix + "/" if prefix else ""
    labels = {"pytorch": "PyTorch", "tensorflow": "TensorFlow", "both": "both"}
    tips = {"pytorch": "the PyTorch cells only", "tensorflow": "the TensorFlow cells only",
            "both": "PyTorch and TensorFlow, as on this page"}
    links = " · ".join(
        f'<a class="reference external" data-framework-link="{key}" '
        f'href="{html.escape(f"{colab}/github/{repo.group(1)}/blob/{branch}/{prefix}{path}")}" '
        f'title="Open this notebook in Colab: {tips[key]}">{labels[key]}</a>'
        for key, path in targets.items())
    block = f'<p class="llmbook-colab"><span class="llmbook-colab__label">Open in Colab:</span> {links}</p>'
    body = context["body"]
    end = body.find("</h1>")
    at = end + len("</h1>") if end >= 0 else 0
    context["body"] = body[:at] + block + body[at:]


def setup(app: Any) -> dict:
    """Register the fixes."""
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    app.connect("html-page-context", search_snippets_from_the_article)
    app.connect("html-page-context", colab_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
