"""``python -m tests.sandbox``: run the Entra and Exchange stand-ins until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from .world import Sandbox


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog=(
            "make sandbox passes SANDBOX_ENTRA_PORT and SANDBOX_SMTP_PORT as the two ports, "
            "e.g. make sandbox SANDBOX_ENTRA_PORT=9443 SANDBOX_SMTP_PORT=9587; start the "
            "console with make run-with-sandbox and the same SANDBOX_ENTRA_PORT."
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
    values = sandbox.form_values()
    print(
        "Sandbox running: Entra ID stand-in on",
        sandbox.entra.base_url,
        f"and Exchange stand-in on 127.0.0.1:{sandbox.exchange.port}",
        flush=True,
    )
    print("\nIn another terminal, start the console so that it trusts the sandbox:")
    print("  make run-with-sandbox")
    print(
        f"(make run with SMTP_OAUTH_AUTHORITY_HOSTS={sandbox.authority_host} and "
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
    print(
        f"\nMicrosoft Graph's sendMail answers at {sandbox.graph.base_url} (for SMTP_GRAPH_HOSTS: "
        f"{sandbox.graph.host}); the app holds SMTP.SendAsApp only: grant it Graph's "
        "Mail.Send in tests/sandbox/world.py to send through Graph."
    )
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


if __name__ == "__main__":
    main()
