/* Make the vendored ipywidgets HTML manager work offline beside MathJax 3.
 * Loaded (by MyST-NB's nb_ipywidgets_js, on pages with saved widget state) after require.js and
 * before embed-amd.js. Two fixes:
 * 1. embed-amd.js finds its Font Awesome fonts next to where require.js thinks the bundle lives;
 *    by default that is the page's folder (fonts 404). Point "@jupyter-widgets/..." at the
 *    folder the bundle really sits in: <this script's folder>/html-manager/.
 * 2. ipywidgets 8 typesets widget labels with MathJax.Hub.Queue, a MathJax 2 API; under MathJax 3
 *    that throws and the widget is not drawn. Provide a small, hidden MathJax.Hub that forwards to
 *    MathJax 3's typesetPromise (chained on MathJax.startup.promise, as MathJax 3 recommends).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var here = script ? script.src.replace(/[^/]*$/, "") : "_static/";
  if (window.requirejs && window.requirejs.config) {
    // Longest prefix wins: the bundle's modules (@jupyter-widgets/base, .../controls and
    // .../html-manager/dist/libembed-amd) all resolve into _static/html-manager/.
    window.requirejs.config({
      paths: {
        "@jupyter-widgets": here + "html-manager",
        "@jupyter-widgets/html-manager/dist": here + "html-manager"
      }
    });
  }

  function typeset(elements) {
    var mj = window.MathJax;
    if (!mj || !mj.startup || !mj.startup.promise || !mj.typesetPromise) {
      // MathJax 3 has not started yet: its own first pass will typeset these elements.
      return;
    }
    mj.startup.promise = mj.startup.promise
      .then(function () { return mj.typesetPromise(elements); })
      .catch(function (err) { console.warn("widgets-shim: MathJax typeset failed", err); });
  }

  var hub = {
    Queue: function () {
      var elements = [];
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];   // ["Typeset", MathJax.Hub, element]
        if (Array.isArray(job) && job[0] === "Typeset" && job[2] instanceof Element) {
          elements.push(job[2]);
        }
      }
      if (elements.length) { typeset(elements); }
    }
  };

  function addHub(mj) {
    // Non-enumerable, so MathJax 3 does not copy it out of a configuration object.
    if (mj && typeof mj === "object" && !("Hub" in mj)) {
      Object.defineProperty(mj, "Hub", { value: hub, enumerable: false, configurable: true });
    }
    return mj;
  }

  // window.MathJax is first a configuration object, then replaced by MathJax itself when
  // tex-chtml.js runs (which may be after this script): give whichever object it holds a Hub.
  var current = addHub(window.MathJax);
  try {
    Object.defineProperty(window, "MathJax", {
      configurable: true,
      enumerable: true,
      get: function () { return current; },
      set: function (value) { current = addHub(value); }
    });
  } catch (err) {
    console.warn("widgets-shim: cannot watch window.MathJax", err);
  }
})();
