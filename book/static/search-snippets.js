/* Search result snippets from the page's article only (loaded on search.html by book/llmbook_html.py).
 * Sphinx's searchtools (7.3 and later) takes the snippet of a page-level result from the text of the
 * page's [role="main"] element. pydata-sphinx-theme gives that role to <main class="bd-main">, which
 * also holds the article header (the Colab launch button and the .ipynb/.md and .pdf download buttons),
 * the page's "Contents" and the previous/next links: a snippet of a match near the top of a page
 * began "Colab .ipynb .pdf ...". Keep only the <article> inside [role="main"], then let Sphinx's own
 * htmlToText do the rest (section anchors, header links, scripts). The chapter pages' Colab links
 * (book/llmbook_html.py) are left out too.
 */
(function () {
  "use strict";
  if (typeof Search === "undefined" || typeof Search.htmlToText !== "function") {
    return;   // not the search page of a Sphinx with this API
  }
  var htmlToText = Search.htmlToText;
  Search.htmlToText = function (htmlString, anchor) {
    var doc = new DOMParser().parseFromString(htmlString, "text/html");
    var main = doc.querySelector('[role="main"]');
    var article = main && main.querySelector("article");
    if (!article) {
      return htmlToText(htmlString, anchor);
    }
    main.replaceChildren(article);
    // Nor the "Open in Colab: PyTorch · TensorFlow · both" line under a chapter page's title.
    article.querySelectorAll(".llmbook-colab").forEach(function (el) { el.remove(); });
    return htmlToText(doc.documentElement.outerHTML, anchor);
  };
})();
