"use strict";
// The notification centre: a pushed notification refreshes the open list.
(function () {
  const box = document.getElementById("notifications");
  if (!box || !window.htmx) return;
  document.body.addEventListener("lyceum:notification", function (event) {
    if (!event.detail || !event.detail.id) return;  // our own change: already re-rendered
    window.htmx.ajax("GET", box.dataset.refresh, { target: "#notifications", swap: "innerHTML" });
  });
})();
