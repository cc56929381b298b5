"use strict";
// The tutor beside the lesson: the question is POSTed with fetch, the answer streams
// back as Server-Sent Events and is appended as text (never as HTML); citations become
// links to the lesson section or the file page they came from.
(function () {
  const form = document.getElementById("tutor-form");
  if (!form || !window.fetch || !window.TextDecoder) return;
  const log = document.getElementById("tutor-log");
  const status = document.getElementById("tutor-status");
  const box = document.getElementById("tutor-question");
  const button = form.querySelector("button[type=submit]");
  const csrf = document.body.dataset.csrf;

  function say(text) { status.textContent = text; }

  function bubble(role, text) {
    const item = document.createElement("li");
    item.className = "tutor-msg tutor-" + role;
    const who = document.createElement("p");
    who.className = "tutor-who";
    who.textContent = role === "user" ? form.dataset.you : form.dataset.tutor;
    const body = document.createElement("div");
    body.className = "tutor-text";
    body.textContent = text;
    item.append(who, body);
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return { item: item, body: body, cites: null };
  }

  function cite(answer, data) {
    if (!answer.cites) {
      answer.cites = document.createElement("ol");
      answer.cites.className = "tutor-cites";
      answer.cites.setAttribute("aria-label", form.dataset.sources);
      answer.item.append(answer.cites);
    }
    const href = String(data.href || "");
    if (!href.startsWith("/learn/")) return; // only this site's pages
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = href;
    let label = "[" + data.number + "] " + data.title;
    if (data.heading) label += " › " + String(data.heading).split(" › ").pop();
    if (data.page) label += " · " + form.dataset.page + " " + data.page;
    link.textContent = label;
    item.append(link);
    answer.cites.append(item);
  }

  function post(url, body, accept) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": accept },
      body: body,
    });
  }

  async function conversationId() {
    if (form.dataset.conversation) return form.dataset.conversation;
    const body = new URLSearchParams({ course_id: form.dataset.course, lesson_id: form.dataset.lesson });
    const answer = await post("/learn/tutor/conversations", body, "application/json");
    const data = await answer.json();
    if (!answer.ok) throw new Error(data.error || form.dataset.failed);
    form.dataset.conversation = data.id;
    log.dataset.conversation = data.id;
    return data.id;
  }

  function handle(name, data, answer) {
    if (name === "delta") {
      answer.body.textContent += data.text;
    } else if (name === "citation") {
      cite(answer, data);
    } else if (name === "problem" || name === "error") {
      answer.item.classList.add("failed");
      say(data.detail || form.dataset.failed);
      return "failed";
    } else if (name === "done") {
      if (data.status !== "failed") say(form.dataset.done);
      return "done";
    }
    return null;
  }

  async function ask(question) {
    const id = await conversationId();
    bubble("user", question);
    const answer = bubble("assistant", "");
    answer.item.setAttribute("aria-busy", "true");
    say(form.dataset.thinking);
    const response = await post(
      "/learn/tutor/conversations/" + encodeURIComponent(id) + "/messages",
      new URLSearchParams({ content: question }),
      "text/event-stream"
    );
    if (!response.body) throw new Error(form.dataset.failed);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let outcome = null;
    for (;;) {
      const part = await reader.read();
      if (part.done) break;
      buffer += decoder.decode(part.value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        let data = "";
        raw.split("\n").forEach(function (line) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        });
        if (!data) continue;
        outcome = handle(name, JSON.parse(data), answer) || outcome;
        log.scrollTop = log.scrollHeight;
      }
    }
    answer.item.removeAttribute("aria-busy");
    if (!outcome) say(form.dataset.failed);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const question = box.value.trim();
    if (!question) return;
    button.disabled = true;
    ask(question)
      .then(function () { box.value = ""; })
      .catch(function (error) { say(error.message || form.dataset.failed); })
      .finally(function () { button.disabled = false; box.focus(); });
  });
})();
