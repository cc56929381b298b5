"use strict";
// Small behaviours shared by every page (no inline scripts: the CSP forbids them).
(function () {
  // The mobile menu.
  const toggle = document.querySelector(".menu-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      const open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!open));
      document.getElementById("nav-links").classList.toggle("open", !open);
    });
  }
  // <select data-autosubmit>: submit its form on change (the button stays for no-JS).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });
  // Forms answered with a problem (400, 403, 409, 422, 429) are re-rendered with their
  // errors: let htmx swap those answers in like any other.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if ([400, 402, 403, 404, 409, 422, 429].indexOf(status) >= 0) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // Move focus to what an htmx swap brought in when it asks for it (data-focus).
  document.body.addEventListener("htmx:afterSettle", function (event) {
    const target = event.detail.target && event.detail.target.querySelector("[data-focus]");
    if (target) target.focus();
  });
})();
