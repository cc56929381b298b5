"use strict";
// One Socket.IO connection per signed-in page (the API's /socket.io): the bell refreshes
// when a notification is pushed to this user's personal room, and page scripts (the chat)
// share the same connection through `window.lyceumLive`. The access token is asked of
// /live/token on every (re)connection, so a reconnect never reuses an expired one: a
// socket ticket, which only the Socket.IO connection accepts (not the REST API).
(function () {
  const me = document.currentScript;
  const waiting = [];
  const live = {
    socket: null,
    // `ready(fn)`: fn(socket) once the client is loaded (at once if it already is).
    ready: function (fn) { if (live.socket) fn(live.socket); else waiting.push(fn); },
    // Reconnect with a fresh token (after a `token-expired` answer).
    renew: function () {
      if (!live.socket) return;
      live.socket.disconnect();
      live.socket.connect();
    },
  };
  window.lyceumLive = live;

  function token(callback) {
    fetch("/live/token", {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-CSRF-Token": document.body.dataset.csrf || "" },
    })
      .then(function (r) { return r.ok ? r.json() : { token: "" }; })
      .then(function (body) { callback({ token: body.token || "" }); })
      .catch(function () { callback({ token: "" }); });
  }

  function start() {
    if (typeof window.io !== "function") return;
    const socket = window.io({ path: "/socket.io", auth: token });
    live.socket = socket;
    socket.on("notification", function (payload) {
      document.body.dispatchEvent(new CustomEvent("lyceum:notification", { detail: payload }));
    });
    socket.on("connect", function () {
      // Anything pushed while disconnected is in the REST list: refresh the badge.
      if (live.connectedBefore) document.body.dispatchEvent(new CustomEvent("lyceum:notification"));
      live.connectedBefore = true;
    });
    waiting.splice(0).forEach(function (fn) { fn(socket); });
  }

  if (typeof window.io === "function") {
    start();
  } else {
    const script = document.createElement("script");
    script.src = me.dataset.socketio;
    script.addEventListener("load", start);
    document.head.appendChild(script);
  }
})();
