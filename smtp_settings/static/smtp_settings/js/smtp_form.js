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
