// Manage SMTP: show only the fields the chosen transport and authentication type use, and build the
// Token Endpoint from a Directory (tenant) ID. The server applies the same rules; this only
// spares the administrator fields that do not matter. The tenant field carries Microsoft's
// rules as data (data-tenant-pattern, data-token-endpoint: smtp_settings/mail/microsoft.py).
(function () {
  "use strict";
  const form = document.getElementById("smtp-form");
  if (!form) return;

  const authType = form.querySelector("#id_auth_type");
  function showFieldsFor(type) {
    form.querySelectorAll("[data-auth]").forEach(function (row) {
      const applies = row.dataset.auth === type;
      row.hidden = !applies;
      row.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !applies;
      });
    });
  }
  if (authType) {
    authType.addEventListener("change", function () { showFieldsFor(authType.value); });
    showFieldsFor(authType.value);
  }

  // Microsoft Graph: the SMTP-only fields go (and are not sent: the server keeps them as
  // stored), and Graph signs in with OAuth 2.0 only.
  function showFieldsForTransport(transport) {
    form.querySelectorAll("[data-transport]").forEach(function (row) {
      const applies = row.dataset.transport === transport;
      row.hidden = !applies;
      row.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !applies;
      });
    });
    if (authType) {
      Array.prototype.forEach.call(authType.options, function (option) {
        option.disabled = transport === "graph" && option.value !== "oauth2";
      });
      if (transport === "graph" && authType.value !== "oauth2") {
        authType.value = "oauth2";
        showFieldsFor("oauth2");
      }
    }
  }
  const transports = form.querySelectorAll("input[name=transport]");
  function chosenTransport() {
    const checked = form.querySelector("input[name=transport]:checked");
    return checked ? checked.value : "smtp";
  }
  transports.forEach(function (input) {
    input.addEventListener("change", function () { showFieldsForTransport(chosenTransport()); });
  });
  if (transports.length) showFieldsForTransport(chosenTransport());

  const alert = form.querySelector("#id_secret_expiration_alert");
  const dateRow = form.querySelector("#row_secret_expiration_date");
  function markDateRequired() {
    if (alert && dateRow) dateRow.classList.toggle("required", alert.checked);
  }
  if (alert) { alert.addEventListener("change", markDateRequired); markDateRequired(); }

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
