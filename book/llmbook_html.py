"""Sphinx extension (loaded by _config.yml) with the book's HTML fixes."""
from __future__ import annotations

from typing import Any


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


def setup(app: Any) -> dict:
    """Register the fixes."""
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    app.connect("html-page-context", search_snippets_from_the_article)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
