// Idle sign-out without losing work: while someone types or clicks, the server hears about
// it (at most once a minute); a minute before the idle limit the page offers to stay.
(function () {
  "use strict";
  const body = document.body;
  const idleMs = Number(body.dataset.idleSeconds || 0) * 1000;
  const url = body.dataset.keepaliveUrl;
  if (!idleMs || !url) return;
  const WARN_BEFORE_MS = 60 * 1000;
  let lastPing = Date.now();
  let warnTimer = null;
  let warning = null;

  function ping() {
    lastPing = Date.now();
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) window.location.reload();
      })
      .catch(function () {});
  }

  function hideWarning() {
    if (warning) { warning.remove(); warning = null; }
  }

  function showWarning() {
    if (warning) return;
    warning = document.createElement("div");
    warning.className = "session-warning";
    warning.id = "session-warning";
    warning.setAttribute("role", "alertdialog");
    const text = document.createElement("p");
    text.textContent = "You will be signed out in a minute for inactivity. Unsaved changes on this page would be lost.";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "primary";
    button.textContent = "Stay signed in";
    button.addEventListener("click", function () { ping().then(restart); });
    warning.append(text, button);
    body.appendChild(warning);
    button.focus();
  }

  function restart() {
    hideWarning();
    clearTimeout(warnTimer);
    warnTimer = setTimeout(showWarning, Math.max(idleMs - WARN_BEFORE_MS, 0));
  }

  function activity() {
    if (Date.now() - lastPing > 60 * 1000) ping();
    restart();
  }

  ["keydown", "click", "input"].forEach(function (name) {
    document.addEventListener(name, activity, { passive: true });
  });
  restart();
})();
