"use strict";
// Instructor pages: ask before a destructive form runs (<form data-confirm="...">),
// for plain and htmx forms alike (this listener runs first, in the capture phase).
(function () {
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
