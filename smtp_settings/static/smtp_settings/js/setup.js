// Set up Microsoft 365: copy buttons, and a reload when a running check ends (followed with
// run_poll.js; without JavaScript the page refreshes itself while a check runs).
(function () {
  "use strict";
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

  const seen = {};
  document.querySelectorAll("[data-poll-url]").forEach(function (node) {
    const url = node.dataset.pollUrl;
    if (seen[url]) return;
    seen[url] = true;
    // The page renders everything: when the check ends, it is shown anew.
    window.seiFollowRun(url, function (run) { if (run.finished) window.location.reload(); });
  });
})();
