// Following a Validate run, for every page that shows one (Manage SMTP, the run page, the
// setup assistant's checks): each request names the progress it has seen and the server
// answers when there is more (a long poll), so a step shows within milliseconds of the
// worker writing it. ``onRun`` gets every answer, the last one with ``finished`` set.
(function () {
  "use strict";
  const RETRY_MS = 1500; // after a failed request: the console restarting, a network blip
  const AGAIN_MS = 1000; // nothing new: the server could not wait, or waited its fill

  function followRun(url, onRun, seen) {
    const ask = seen === undefined ? url : url + "?seen=" + encodeURIComponent(seen);
    fetch(ask, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (run) {
        onRun(run);
        if (run.finished) return;
        if (run.mark === seen) {
          setTimeout(function () { followRun(url, onRun, run.mark); }, AGAIN_MS);
        } else {
          followRun(url, onRun, run.mark);
        }
      })
      .catch(function () {
        setTimeout(function () { followRun(url, onRun, seen); }, RETRY_MS);
      });
  }

  window.seiFollowRun = followRun;
})();
