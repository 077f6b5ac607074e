// Manage SMTP: show only the fields the chosen transport and authentication type use, and build the
// Token Endpoint from a Directory (tenant) ID. The server applies the same rules; this only
// spares the administrator fields that do not matter. The tenant field carries Microsoft's
// rules as data (data-tenant-pattern, data-token-endpoint: smtp_settings/mail/microsoft.py).
(function () {
  "use strict";
  const form = document.getElementById("smtp-form");
  if (!form) return;

  const authType = form.querySelector("#id_auth_type");
  const transports = form.querySelectorAll("input[name=transport]");
  function chosenTransport() {
    const checked = form.querySelector("input[name=transport]:checked");
    return checked ? checked.value : "smtp";
  }

  // Microsoft Graph signs in with OAuth 2.0 only: the other types are not offered at all.
  function offerAuthTypesFor(transport) {
    if (!authType) return;
    Array.prototype.forEach.call(authType.options, function (option) {
      const offered = transport !== "graph" || option.value === "oauth2";
      option.hidden = !offered;
      option.disabled = !offered;
    });
    if (transport === "graph" && authType.value !== "oauth2") authType.value = "oauth2";
  }

  // A row shows when its data-auth (if any) is the authentication type and its
  // data-transport (if any) is the transport; hidden inputs are disabled, so not sent (the
  // server keeps their stored values).
  function showFields() {
    const transport = transports.length ? chosenTransport() : "smtp";
    offerAuthTypesFor(transport);
    const type = authType ? authType.value : "";
    form.querySelectorAll("[data-auth], [data-transport]").forEach(function (row) {
      const applies =
        (!row.dataset.auth || row.dataset.auth === type) &&
        (!row.dataset.transport || row.dataset.transport === transport);
      row.hidden = !applies;
      row.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !applies;
      });
    });
  }
  if (authType) authType.addEventListener("change", showFields);
  transports.forEach(function (input) { input.addEventListener("change", showFields); });
  showFields();

  const alert = form.querySelector("#id_secret_expiration_alert");
  const dateRow = form.querySelector("#row_secret_expiration_date");
  function markDateRequired() {
    if (alert && dateRow) dateRow.classList.toggle("required", alert.checked);
  }
  if (alert) { alert.addEventListener("change", markDateRequired); markDateRequired(); }

  // A stored secret never follows the settings elsewhere: changing a field it was entered
  // for (server, port, TLS, token endpoint, client ID, scopes, username) clears it at Save.
  // Said before Save, while the administrator can still undo the change or type it again.
  const bindingsData = document.getElementById("secret-bindings");
  const willClear = form.querySelector("#secret-will-clear");
  const labels = { smtp_server: "SMTP Server", port: "Port", use_ssl_tls: "Use SSL/TLS",
    token_endpoint: "Token Endpoint", client_id: "Client ID", scopes: "Scopes",
    username: "Username" };
  function typed(name) {
    const input = form.querySelector("#id_" + name);
    if (!input || input.disabled) return undefined; // not sent: the stored value stays
    if (input.type === "checkbox") return input.checked;
    if (name === "port") return Number(input.value);
    const value = input.value.trim();
    return name === "smtp_server" || name === "client_id" ? value.toLowerCase().replace(/\.$/, "") : value;
  }
  function stored(name, value) {
    if (typeof value !== "string") return value;
    return name === "smtp_server" || name === "client_id" ? value.toLowerCase().replace(/\.$/, "") : value;
  }
  // "A", "A and B", "A, B and C".
  function listed(names) {
    return names.length < 2 ? names.join("") : names.slice(0, -1).join(", ") + " and " + names[names.length - 1];
  }
  function sayWhatSaveClears() {
    const said = [];
    const bindings = JSON.parse(bindingsData.textContent);
    Object.keys(bindings).forEach(function (field) {
      const entered = form.querySelector("#id_" + field);
      const shown = entered && !entered.disabled; // hidden: the chosen type does not use it
      if (shown && entered.value) return; // a new one replaces it
      // In the form's order: the stored bindings' key order depends on the database
      // (PostgreSQL's jsonb sorts keys by length).
      const bound = Object.keys(bindings[field].bound);
      const inOrder = Object.keys(labels).filter(function (name) { return bound.includes(name); })
        .concat(bound.filter(function (name) { return !(name in labels); }));
      const changed = inOrder.filter(function (name) {
        const now = typed(name);
        return now !== undefined && now !== stored(name, bindings[field].bound[name]);
      });
      if (changed.length) {
        said.push("Save clears the stored " + bindings[field].label + ": it was entered for " +
          "other values of " + listed(changed.map(function (name) { return labels[name] || name; })) +
          ", and the console never sends it anywhere else. " + (shown
          ? "Undo the change, or enter it again (Entra ID shows a client secret's Value only " +
            "when it is created)."
          : "The authentication type chosen does not use it; choosing that type again later " +
            "means entering it again."));
      }
    });
    willClear.textContent = said.join(" ");
    willClear.hidden = said.length === 0;
  }
  if (bindingsData && willClear) {
    form.addEventListener("input", sayWhatSaveClears);
    form.addEventListener("change", sayWhatSaveClears);
    sayWhatSaveClears();
  }

  const tenant = form.querySelector("#id_tenant_id");
  const endpoint = form.querySelector("#id_token_endpoint");
  if (tenant && endpoint && tenant.dataset.tenantPattern && tenant.dataset.tokenEndpoint) {
    const tenantShape = new RegExp(tenant.dataset.tenantPattern);
    tenant.addEventListener("input", function () {
      const value = tenant.value.trim();
      if (tenantShape.test(value)) {
        endpoint.value = tenant.dataset.tokenEndpoint.replace("{tenant}", value);
      }
    });
  }
})();
