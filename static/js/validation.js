// Validate: start a run of the form's unsaved values, then poll its progress and draw each
// step as the worker records it. Everything shown comes from the server's JSON and is set
// as text, never as HTML: server answers are not trusted markup.
(function () {
  "use strict";
  const POLL_MS = 300;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null && text !== "") node.textContent = text;
    return node;
  }

  function renderRun(run) {
    const wrapper = el("div", "run");
    wrapper.dataset.status = run.status;
    const verdict = el("p", "verdict verdict-" + run.status, run.status_label);
    verdict.id = "run-verdict";
    verdict.setAttribute("role", "status");
    wrapper.appendChild(verdict);
    if (run.summary) {
      const summary = el("p", "summary", run.summary);
      summary.id = "run-summary";
      wrapper.appendChild(summary);
    }
    const list = el("ol", "steps");
    list.id = "run-steps";
    run.steps.forEach(function (step) {
      const item = el("li", "step step-" + step.status);
      item.dataset.key = step.key;
      const head = el("div", "step-head");
      head.appendChild(el("span", "badge", step.status_label));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(el("strong", "step-name", step.name));
      if (step.duration_ms !== null) head.appendChild(el("span", "muted", " " + step.duration_ms + " ms"));
      item.appendChild(head);
      if (step.detail) item.appendChild(el("p", "step-detail", step.detail));
      if (step.server_answer) item.appendChild(el("pre", "answer", step.server_answer));
      if (step.facts && step.facts.length) {
        const facts = el("dl", "facts");
        step.facts.forEach(function (fact) {
          facts.appendChild(el("dt", "", fact[0]));
          facts.appendChild(el("dd", "", fact[1]));
        });
        item.appendChild(facts);
      }
      if (step.cause) {
        const cause = el("p", "cause");
        cause.appendChild(el("strong", "", "Likely cause:"));
        cause.appendChild(document.createTextNode(" " + step.cause));
        item.appendChild(cause);
      }
      if (step.fix) {
        const fix = el("p", "fix");
        fix.appendChild(el("strong", "", "Fix:"));
        fix.appendChild(document.createTextNode(" " + step.fix));
        item.appendChild(fix);
      }
      if (step.commands && step.commands.length) item.appendChild(el("pre", "commands", step.commands.join("\n")));
      list.appendChild(item);
    });
    wrapper.appendChild(list);
    return wrapper;
  }

  function poll(url, target, onDone) {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (run) {
        target.replaceChildren(renderRun(run));
        if (run.finished) { if (onDone) onDone(run); return; }
        setTimeout(function () { poll(url, target, onDone); }, POLL_MS);
      })
      .catch(function () {
        setTimeout(function () { poll(url, target, onDone); }, POLL_MS * 5);
      });
  }

  // The run page: keep polling while the run is unfinished.
  const section = document.getElementById("validation");
  if (section && section.dataset.poll === "true") {
    poll(section.dataset.statusUrl, section, null);
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
    refused.hidden = true;
  }

  function showErrors(errors) {
    Object.keys(errors).forEach(function (name) {
      const row = document.getElementById("row_" + name);
      const messages = errors[name].map(function (error) { return error.message; });
      if (!row) { refused.textContent = messages.join(" "); refused.hidden = false; return; }
      row.classList.add("invalid");
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
          body.replaceChildren(el("p", "muted", "Starting the validation…"));
          section.scrollIntoView({ behavior: "smooth", block: "start" });
          poll(json.status_url, body, function () { button.disabled = false; });
          return;
        }
        button.disabled = false;
        if (json.errors) showErrors(json.errors);
        else if (json.refused) { refused.textContent = json.refused; refused.hidden = false; }
      })
      .catch(function () {
        button.disabled = false;
        refused.textContent = "The console did not answer; try again.";
        refused.hidden = false;
      });
  });
})();
