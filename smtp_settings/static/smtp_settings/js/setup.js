// Set up Microsoft 365: copy buttons, and a reload when a running check ends (the page
// renders everything; without JavaScript it refreshes itself while a check runs).
(function () {
  "use strict";
  const RETRY_MS = 3500;

  function copyText(text, button) {
    const done = function () {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
      return;
    }
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }

  document.querySelectorAll("button.copy[data-copy-target]").forEach(function (button) {
    const target = document.getElementById(button.dataset.copyTarget);
    if (!target) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(target.getAttribute("href") || target.textContent, button);
    });
  });

  // A long poll, as on Manage SMTP: the server answers when the worker has written more.
  function poll(url, mark) {
    const ask = mark === undefined ? url : url + "?seen=" + encodeURIComponent(mark);
    fetch(ask, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (run) {
        if (run.finished) { window.location.reload(); return; }
        // Nothing new (the server could not wait, or waited its fill): ask again shortly.
        if (run.mark === mark) { setTimeout(function () { poll(url, run.mark); }, 1000); }
        else { poll(url, run.mark); }
      })
      .catch(function () { setTimeout(function () { poll(url, mark); }, RETRY_MS); });
  }

  const seen = {};
  document.querySelectorAll("[data-poll-url]").forEach(function (node) {
    const url = node.dataset.pollUrl;
    if (seen[url]) return;
    seen[url] = true;
    poll(url);
  });
})();
