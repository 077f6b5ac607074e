// Validate: start a run of the form's unsaved values, then follow its progress (run_poll.js)
// and swap in the run as the server renders it, step by step as the worker records them.
// The markup is the server's one template for a run.
(function () {
  "use strict";

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null && text !== "") node.textContent = text;
    return node;
  }

  function poll(url, target, onDone, seen) {
    window.seiFollowRun(url, function (run) {
      // The server renders the run (the same partial as the run page), escaped there.
      target.innerHTML = run.html;
      if (run.finished && onDone) onDone(run);
    }, seen);
  }

  // The run page: keep polling while the run is unfinished.
  const section = document.getElementById("validation");
  if (section && section.dataset.poll === "true") {
    // Manage SMTP keeps its heading and the body the Validate button fills.
    poll(section.dataset.statusUrl, document.getElementById("validation-body") || section, function () {
      refreshRecentRuns();
    });
  }

  // Manage SMTP: the Validate button.
  const form = document.getElementById("smtp-form");
  const button = document.getElementById("validate-button");
  if (!form || !button || !section) return;
  const body = document.getElementById("validation-body");
  const refused = document.getElementById("validate-refused");

  function clearErrors() {
    form.querySelectorAll(".field.invalid").forEach(function (row) { row.classList.remove("invalid"); });
    form.querySelectorAll(".field .error, .error.summary").forEach(function (node) { node.remove(); });
    form.querySelectorAll(".field .secret-status").forEach(function (node) { node.hidden = false; });
    refused.hidden = true;
  }

  function showErrors(errors) {
    Object.keys(errors).forEach(function (name) {
      const row = document.getElementById("row_" + name);
      const messages = errors[name].map(function (error) { return error.message; });
      if (!row) { refused.textContent = messages.join(" "); refused.hidden = false; return; }
      row.classList.add("invalid");
      // The field says one thing: "stored, leave blank" does not stand beside "enter it again".
      row.querySelectorAll(".secret-status").forEach(function (node) { node.hidden = true; });
      messages.forEach(function (message) {
        const p = el("p", "error", message);
        p.setAttribute("role", "alert");
        row.appendChild(p);
      });
    });
    const summary = el("p", "error summary", "Nothing was validated: correct the fields marked below.");
    summary.setAttribute("role", "alert");
    form.insertBefore(summary, form.querySelector("fieldset"));
  }

  // The recent-validations table, as the server renders it, once a run has ended.
  function refreshRecentRuns() {
    const runs = document.getElementById("runs");
    if (!runs || !runs.dataset.recentUrl) return;
    fetch(runs.dataset.recentUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) runs.innerHTML = html; })
      .catch(function () {});
  }

  button.addEventListener("click", function (event) {
    event.preventDefault();
    clearErrors();
    button.disabled = true;
    const data = new FormData(form);
    fetch(button.getAttribute("formaction"), {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": data.get("csrfmiddlewaretoken") },
    })
      .then(function (response) { return response.json().then(function (json) { return [response.status, json]; }); })
      .then(function (result) {
        const status = result[0], json = result[1];
        if (status === 202) {
          section.hidden = false;
          // The steps as queued, rendered by the server; then wait for the worker's first word.
          body.innerHTML = json.html;
          section.scrollIntoView({ behavior: "smooth", block: "start" });
          poll(json.status_url, body, function () {
            button.disabled = false;
            refreshRecentRuns();
          }, json.mark);
          return;
        }
        button.disabled = false;
        if (json.errors) showErrors(json.errors);
        else if (json.refused) {
          // No earlier verdict below a refusal: it would read as this click's result.
          section.hidden = true;
          refused.textContent = json.refused;
          refused.hidden = false;
        }
      })
      .catch(function () {
        button.disabled = false;
        refused.textContent = "The console did not answer; try again.";
        refused.hidden = false;
      });
  });
})();
