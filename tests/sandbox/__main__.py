"""``python -m tests.sandbox``: run the Entra, Exchange and Graph stand-ins until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from .world import SENDER, Sandbox


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog=(
            "make sandbox passes SANDBOX_ENTRA_PORT, SANDBOX_SMTP_PORT and SANDBOX_GRAPH_PORT "
            "as the three ports, e.g. make sandbox SANDBOX_ENTRA_PORT=9443 "
            "SANDBOX_SMTP_PORT=9587 SANDBOX_GRAPH_PORT=9444; start the console with make "
            "run-with-sandbox and the same SANDBOX_ENTRA_PORT and SANDBOX_GRAPH_PORT."
        ),
    )
    parser.add_argument(
        "--entra-port",
        type=int,
        default=8443,
        metavar="PORT",
        help="HTTPS port of the Entra ID stand-in (token endpoint, OIDC discovery) on "
        "127.0.0.1; make sandbox: SANDBOX_ENTRA_PORT (default %(default)s)",
    )
    parser.add_argument(
        "--smtp-port",
        type=int,
        default=8587,
        metavar="PORT",
        help="SMTP port (STARTTLS, XOAUTH2) of the Exchange Online stand-in on 127.0.0.1; "
        "make sandbox: SANDBOX_SMTP_PORT (default %(default)s)",
    )
    parser.add_argument(
        "--graph-port",
        type=int,
        default=8444,
        metavar="PORT",
        help="HTTPS port of the Microsoft Graph stand-in (sendMail) on 127.0.0.1; "
        "make sandbox: SANDBOX_GRAPH_PORT (default %(default)s)",
    )
    parser.add_argument(
        "--graph-throttle",
        type=int,
        default=0,
        metavar="N",
        help="Graph answers the first N sendMail requests with 429 and Retry-After (later: "
        "POST /sandbox/graph/throttle?requests=N&retry_after=S)",
    )
    parser.add_argument(
        "--graph-retry-after",
        type=int,
        default=3,
        metavar="SECONDS",
        help="the Retry-After of those 429 answers (default %(default)s)",
    )
    parser.add_argument(
        "--graph-out-of-scope",
        action="append",
        default=[],
        metavar="MAILBOX",
        help="the app may not send as MAILBOX through Graph: 403 ErrorAccessDenied, as RBAC "
        "for Applications answers (repeatable; later: POST /sandbox/graph/out-of-scope"
        "?mailbox=MAILBOX, and /sandbox/graph/in-scope to undo)",
    )
    parser.add_argument(
        "--folder",
        type=Path,
        default=Path("var/sandbox"),
        help="where the CA bundle and the delivered messages go (default %(default)s)",
    )
    options = parser.parse_args()
    options.folder.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(
        options.entra_port, options.smtp_port, options.folder.resolve(), options.graph_port
    ).start()
    sandbox.graph.throttle(options.graph_throttle, options.graph_retry_after)
    for mailbox in options.graph_out_of_scope:
        sandbox.graph.scope(mailbox, inside=False)
    values = sandbox.form_values()
    print(
        "Sandbox running: Entra ID stand-in on",
        sandbox.entra.base_url,
        f"Exchange stand-in on 127.0.0.1:{sandbox.exchange.port} and Microsoft Graph "
        f"stand-in on https://{sandbox.graph.host}",
        flush=True,
    )
    print("\nIn another terminal, start the console so that it trusts the sandbox:")
    entra_port = int(sandbox.authority_host.rsplit(":", 1)[1])
    graph_port = int(sandbox.graph.host.rsplit(":", 1)[1])
    ports = (
        f" SANDBOX_ENTRA_PORT={entra_port} SANDBOX_GRAPH_PORT={graph_port}"
        if (entra_port, graph_port) != (8443, 8444)
        else ""
    )
    print(f"  make run-with-sandbox{ports}")
    print("(add PORT=... to serve the console on another port than 8000)")
    print(
        f"(make run with SMTP_OAUTH_AUTHORITY_HOSTS={sandbox.authority_host}, "
        f"SMTP_GRAPH_HOSTS={sandbox.graph.host} and "
        f"SSL_CERT_FILE / REQUESTS_CA_BUNDLE={sandbox.ca_bundle})",
        flush=True,
    )
    print("\nThen enter in Administration > Manage SMTP:")
    labels = {
        "smtp_server": "SMTP Server",
        "sender_email": "Sender Email",
        "port": "Port",
        "client_id": "Client ID",
        "client_secret": "Client Secret",
        "secret_expiration_date": "Secret Expiration Date",
        "token_endpoint": "Token Endpoint",
        "scopes": "Scopes",
    }
    for name, label in labels.items():
        print(f"  {label:22} {values[name]}")
    print(f"  {'Authentication Type':22} OAuth 2.0, Use SSL/TLS on, Use sender email on")
    print("\nOr walk Set up Microsoft 365 with:")
    print(
        f"  {'Tenant ID':22} {sandbox.tenant.tenant_id} (or the domain {sandbox.tenant.domains[0]})"
    )
    print(f"  {'Client ID':22} {values['client_id']}")
    secret_id = sandbox.app.secret_ids.get(values["client_secret"], "")
    print(f"  {'Secret value':22} {values['client_secret']}")
    print(f"  {'Secret ID':22} {secret_id} (paste it as the secret to see that mistake named)")
    print(f"  {'Cloud':22} Sign-in host allowed by the operator: {sandbox.authority_host}")
    print(
        "\nTo upload a certificate's public part to the sandbox's app (Entra's Upload "
        "certificate), from the folder Manage SMTP's .cer was downloaded to:\n"
        f"  curl --cacert {sandbox.ca_bundle} --data-binary "
        '"@$(ls -t sei-administration-*.cer | head -n 1)" '
        f"{sandbox.entra.base_url}/sandbox/certificates/{values['client_id']}"
    )
    _print_graph(sandbox, options)
    print("\nDelivered test messages are printed here and saved under", options.folder / "mail")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seen = 0
    while not stop.wait(0.5):
        for envelope, content in sandbox.exchange.delivered[seen:]:
            seen += 1
            path = options.folder / "mail" / f"{seen:04d}.eml"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(content)
            print(
                f"Delivered: from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)} -> {path}",
                flush=True,
            )
    sandbox.stop()


def _print_graph(sandbox: Sandbox, options: argparse.Namespace) -> None:
    """How to send through the Graph stand-in, and its switches."""
    graph = sandbox.graph
    print(
        f"\nOr send through Microsoft Graph (the app holds Mail.Send too): Send through "
        f"Microsoft Graph (OAuth 2.0), Graph Host {graph.host}, and the same Sender Email, "
        "Client ID, Client Secret, Secret Expiration Date and Token Endpoint (no SMTP Server, "
        f"Port or Scopes). make run-with-sandbox allows it with SMTP_GRAPH_HOSTS={graph.host}."
    )
    # Quoted: a shell would take the ? and & of an address as its own.
    curl = f"curl --cacert {sandbox.ca_bundle} -X POST"
    url = f"{graph.base_url}/sandbox/graph"
    print("\nSwitches of the Graph stand-in, to watch Validate and the outbox diagnose them:")
    print(f'  {curl} "{url}/throttle?requests=3&retry_after=30"   # 429, Retry-After: 30, 3 times')
    print(f'  {curl} "{url}/out-of-scope?mailbox={SENDER}"   # 403 ErrorAccessDenied')
    print(f'  {curl} "{url}/in-scope?mailbox={SENDER}"   # and back')
    print(
        f'  {curl} "{url}/permission?mail_send=off"'
        "   # Mail.Send withdrawn in Entra ID (SMTP.SendAsApp stays)"
    )
    print(f'  {curl} "{url}/permission?mail_send=off&smtp_send_as=off"   # neither permission')
    print(f'  {curl} "{url}/reset"')
    if options.graph_throttle or options.graph_out_of_scope:
        throttled = f"{options.graph_throttle} answers of 429" if options.graph_throttle else ""
        outside = ", ".join(options.graph_out_of_scope)
        print(
            "Switched on now:",
            "; ".join(filter(None, [throttled, outside and f"{outside} out of scope"])),
        )


if __name__ == "__main__":
    main()
