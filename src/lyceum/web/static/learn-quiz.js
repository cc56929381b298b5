"use strict";
// The quiz timer: the server's deadline counted down; at zero the answers are submitted
// (the server refuses answers after its deadline, and submits what was saved).
(function () {
  const timer = document.getElementById("timer");
  const form = document.getElementById("attempt-form");
  if (!timer || !form) return;
  const left = document.getElementById("timer-left");
  const end = Date.now() + Number(timer.dataset.secondsLeft) * 1000;
  let sent = false;
  form.addEventListener("submit", function () { sent = true; });
  function tick() {
    const seconds = Math.max(0, Math.round((end - Date.now()) / 1000));
    const minutes = Math.floor(seconds / 60);
    left.textContent = minutes + ":" + String(seconds % 60).padStart(2, "0");
    if (seconds <= 60) timer.classList.add("urgent");
    if (seconds <= 1 && !sent) {
      sent = true;
      left.textContent = timer.dataset.expired;
      form.requestSubmit();
      return;
    }
    window.setTimeout(tick, 1000);
  }
  tick();
})();
