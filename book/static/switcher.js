/* Framework switcher: show the PyTorch cells, the TensorFlow cells, or both, on every page.
 * Notebook cells tagged `pytorch` / `tensorflow` get the class tag_pytorch / tag_tensorflow from
 * MyST-NB; switcher.css hides the other framework's cells from <html data-framework="...">.
 * The choice is kept in localStorage, so it holds across pages and reloads (default: PyTorch).
 * This file runs in <head>, so the attribute is set before the page is drawn (no flash).
 */
(function () {
  "use strict";
  var KEY = "llmbook-framework";
  var DEFAULT = "pytorch";
  var CHOICES = [
    { value: "pytorch", label: "PyTorch" },
    { value: "tensorflow", label: "TensorFlow" },
    { value: "both", label: "Both" }
  ];
  var NARROW = "(max-width: 575.98px)";
  var root = document.documentElement;

  function isChoice(value) {
    return CHOICES.some(function (c) { return c.value === value; });
  }

  function load() {
    var value = null;
    try { value = window.localStorage.getItem(KEY); } catch (err) { /* storage blocked */ }
    return isChoice(value) ? value : DEFAULT;
  }

  function save(value) {
    try { window.localStorage.setItem(KEY, value); } catch (err) { /* storage blocked */ }
  }

  function apply(value) {
    root.setAttribute("data-framework", value);
    var buttons = document.querySelectorAll(".fw-switcher__button");
    for (var i = 0; i < buttons.length; i++) {
      var pressed = buttons[i].getAttribute("data-framework-choice") === value;
      buttons[i].setAttribute("aria-pressed", pressed ? "true" : "false");
    }
  }

  function choose(value) {
    save(value);
    apply(value);
  }

  // Wide screens: in the theme's sticky article header, beside the sidebar toggle.
  // Narrow screens (the header is full of icons) or another theme: at the top of the article.
  function place(group) {
    var header = document.querySelector(".bd-header-article .header-article-items__start");
    var narrow = window.matchMedia && window.matchMedia(NARROW).matches;
    if (header && !narrow) {
      var item = header.querySelector(".fw-switcher__item");
      if (!item) {
        item = document.createElement("div");
        item.className = "header-article-item fw-switcher__item";
        header.appendChild(item);
      }
      item.appendChild(group);
    } else {
      var article = document.querySelector("article.bd-article") || document.querySelector("article")
        || document.querySelector("main") || document.body;
      article.insertBefore(group, article.firstChild);
    }
  }

  function build() {
    if (document.querySelector(".fw-switcher")) { return; }
    var group = document.createElement("div");
    group.className = "fw-switcher";
    group.setAttribute("role", "group");
    group.setAttribute("aria-labelledby", "fw-switcher-label");

    var label = document.createElement("span");
    label.className = "fw-switcher__label";
    label.id = "fw-switcher-label";
    label.textContent = "Framework";
    group.appendChild(label);

    CHOICES.forEach(function (choice) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "fw-switcher__button";
      button.textContent = choice.label;
      button.setAttribute("data-framework-choice", choice.value);
      button.setAttribute("aria-pressed", "false");
      button.title = choice.value === "both"
        ? "Show the PyTorch and the TensorFlow code"
        : "Show the " + choice.label + " code, hide the other framework's";
      button.addEventListener("click", function () { choose(choice.value); });
      group.appendChild(button);
    });

    place(group);
    if (window.matchMedia) {
      var narrow = window.matchMedia(NARROW);
      var replace = function () { place(group); };
      if (narrow.addEventListener) { narrow.addEventListener("change", replace); }
      else if (narrow.addListener) { narrow.addListener(replace); }
    }
    apply(load());
  }

  apply(load());
  // Another tab changed the choice: follow it.
  window.addEventListener("storage", function (event) {
    if (event.key === KEY) { apply(load()); }
  });
  // Back/forward cache may restore a page drawn with an older choice.
  window.addEventListener("pageshow", function () { apply(load()); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", build);
  } else {
    build();
  }
})();
