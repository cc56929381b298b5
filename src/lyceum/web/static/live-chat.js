"use strict";
// A course's chat room over the page's Socket.IO connection (see live-bell.js): join the
// room on every (re)connection, live messages, presence, typing, sending, and moderation
// (delete, mute) for the course's instructors and admins. Every user-provided string goes
// into the page with textContent, never as HTML.
(function () {
  const root = document.getElementById("chat");
  if (!root) return;
  const roomId = root.dataset.room;
  const courseId = root.dataset.course;
  const me = root.dataset.me;
  const moderator = root.dataset.moderator === "true";
  const t = root.dataset;
  const log = document.getElementById("chat-messages");
  const online = document.getElementById("chat-online");
  const typingLine = document.getElementById("chat-typing");
  const statusLine = document.getElementById("chat-status");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-text");
  const send = document.getElementById("chat-send");
  const template = document.getElementById("chat-message-template");
  const typists = new Map();  // user id -> {name, timer}
  let socket = null;
  let joined = false;
  let typingSent = false;
  let typingTimer = null;
  const afterJoin = [];  // what waits for the room to be joined again (a renewed token)

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, key) { return values[key] || ""; });
  }
  function setStatus(text) { statusLine.textContent = text; }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function render(message) {
    if (document.getElementById("m-" + message.id)) return;
    const item = template.content.firstElementChild.cloneNode(true);
    item.id = "m-" + message.id;
    item.dataset.id = message.id;
    item.dataset.sender = message.sender.id;
    item.querySelector(".sender").textContent = message.sender.full_name;
    const time = item.querySelector("time");
    time.dateTime = message.created_at;
    time.textContent = new Date(message.created_at).toLocaleString(document.documentElement.lang);
    item.querySelector(".text").textContent = message.text;
    const mine = message.sender.id === me;
    if (!moderator && !mine) item.querySelector("[data-delete]").remove();
    if (!moderator || mine) item.querySelector("[data-mute]").remove();
    log.appendChild(item);
    const empty = document.getElementById("chat-empty");
    if (empty) empty.remove();
    scrollDown();
  }

  function showOnline(people) {
    online.replaceChildren();
    people.forEach(function (person) {
      const li = document.createElement("li");
      li.dataset.user = person.id;
      li.textContent = person.full_name;
      online.appendChild(li);
    });
  }

  function showTyping() {
    const names = Array.from(typists.values()).map(function (x) { return x.name; });
    typingLine.textContent = names.length === 0 ? "" :
      names.length === 1 ? fill(t.tTypingOne, { name: names[0] }) : t.tTypingMany;
  }

  // An event with an ack; a `token-expired` answer reconnects with a fresh token, then
  // the event is sent once more.
  function request(event, payload, retried) {
    return new Promise(function (resolve) {
      socket.timeout(10000).emit(event, payload, function (err, answer) {
        if (err) { resolve({ ok: false, error: { type: "timeout", detail: "No answer." } }); return; }
        if (!answer.ok && answer.error.type === "token-expired" && !retried) {
          afterJoin.push(function () { request(event, payload, true).then(resolve); });
          window.lyceumLive.renew();
          return;
        }
        resolve(answer);
      });
    });
  }

  function join() {
    joined = false;
    send.disabled = true;
    socket.timeout(10000).emit("join_room", { course_id: courseId }, function (err, answer) {
      if (err || !answer.ok) { setStatus(t.tRefused); return; }
      joined = true;
      send.disabled = false;
      showOnline(answer.online);
      setStatus(t.tConnected);
      afterJoin.splice(0).forEach(function (fn) { fn(); });
    });
  }

  function typing(state) {
    if (!joined || typingSent === state) return;
    typingSent = state;
    socket.emit("typing", { room_id: roomId, typing: state });
  }

  function wire(s) {
    socket = s;
    s.on("connect", join);
    s.on("disconnect", function () { joined = false; send.disabled = true; setStatus(t.tOffline); });
    s.on("connect_error", function () { if (!s.active) setStatus(t.tRefused); });
    s.on("message", function (message) {
      if (message.room_id !== roomId) return;
      const who = typists.get(message.sender.id);
      if (who) { clearTimeout(who.timer); typists.delete(message.sender.id); showTyping(); }
      render(message);
    });
    s.on("presence", function (event) { if (event.room_id === roomId) showOnline(event.online); });
    s.on("typing", function (event) {
      if (event.room_id !== roomId || event.user.id === me) return;
      const held = typists.get(event.user.id);
      if (held) clearTimeout(held.timer);
      if (event.typing) {
        const timer = setTimeout(function () { typists.delete(event.user.id); showTyping(); }, 6000);
        typists.set(event.user.id, { name: event.user.full_name, timer: timer });
      } else {
        typists.delete(event.user.id);
      }
      showTyping();
    });
    s.on("message_deleted", function (event) {
      if (event.room_id !== roomId) return;
      const item = document.getElementById("m-" + event.message_id);
      if (item) { item.remove(); setStatus(t.tDeleted); }
    });
    s.on("user_muted", function (event) {
      if (event.room_id !== roomId) return;
      if (event.user_id === me) setStatus(t.tYouMuted);
    });
    s.on("removed_from_room", function (event) {
      if (event.room_id === roomId) { joined = false; send.disabled = true; setStatus(event.detail); }
    });
    s.on("signed_out", function (event) { setStatus(event.detail); send.disabled = true; });
    if (s.connected) join();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || !joined) return;
    const clientId = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/[^\x21-\x7e]/g, "");
    send.disabled = true;
    request("message", { room_id: roomId, client_id: clientId, text: text }).then(function (answer) {
      send.disabled = !joined;
      if (answer.ok) {
        input.value = "";
        typing(false);
        render(answer.message);
      } else {
        setStatus(fill(t.tFailed, { reason: answer.error.detail }));
      }
      input.focus();
    });
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", function () {
    typing(input.value.trim() !== "");
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typing(false); }, 4000);
  });

  log.addEventListener("click", function (event) {
    const button = event.target.closest("button");
    if (!button) return;
    const item = button.closest(".chat-message");
    if (button.hasAttribute("data-delete")) {
      if (!window.confirm(t.tConfirmDelete)) return;
      request("delete_message", { message_id: item.dataset.id }).then(function (answer) {
        if (answer.ok) item.remove();
        else setStatus(answer.error.detail);
      });
    } else if (button.hasAttribute("data-mute")) {
      const name = item.querySelector(".sender").textContent;
      request("mute_user", { room_id: roomId, user_id: item.dataset.sender, minutes: 10 }).then(function (answer) {
        setStatus(answer.ok ? fill(t.tMuted, { name: name }) : answer.error.detail);
      });
    }
  });

  scrollDown();
  if (window.lyceumLive) window.lyceumLive.ready(wire);
  else setStatus(t.tRefused);
})();
