"""Certificate credentials: made here or read from a PFX/PEM with ``cryptography``, and the
token they get from the sandbox's Entra, which checks the signed assertion as Entra does."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from smtp_settings.mail import certificate, oauth

from .sandbox.world import CLIENT_ID, TENANT_ID

SCOPES = ["https://outlook.office365.com/.default"]


def token_with(sandbox: Any, pair: certificate.KeyPair) -> oauth.Token:
    return oauth.acquire_token(
        token_endpoint=sandbox.entra.token_endpoint(TENANT_ID),
        client_id=CLIENT_ID,
        client_secret=pair.msal_credential(),
        scopes=SCOPES,
        timeout=5,
        fresh=True,
    )


def test_a_made_certificate_is_what_entra_takes_and_holds_no_key() -> None:
    pair = certificate.make(common_name="SEI Administration mail")
    made = pair.certificate
    assert len(made.thumbprint) == 40 and made.thumbprint == made.thumbprint.upper()
    assert made.key_bits == 2048 and "PRIVATE" not in made.pem
    assert timedelta(days=360) < made.not_after - made.not_before < timedelta(days=370)
    assert x509.load_der_x509_certificate(made.der).subject.rfc4514_string() == made.subject
    assert (
        made.thumbprint
        == x509.load_pem_x509_certificate(made.pem.encode())
        .fingerprint(
            hashes.SHA1()  # noqa: S303
        )
        .hex()
        .upper()
    )
    with pytest.raises(certificate.CertificateRefused, match="1 to 36 months"):
        certificate.make(common_name="x", months=48)


def test_the_end_of_a_month_stays_in_its_month() -> None:
    jan31 = datetime(2027, 1, 31, 12, tzinfo=UTC)
    pair = certificate.make(common_name="x", months=1, now=jan31)
    assert pair.certificate.not_after.date().isoformat() == "2027-02-28"


def _own_ca(*, bits: int = 2048, days: int = 365) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso mail")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=2 * abs(days)))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(key: rsa.RSAPrivateKey, cert: x509.Certificate, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def test_a_pfx_with_its_password_is_read_and_a_wrong_password_is_said() -> None:
    key, cert = _own_ca()
    pfx = pkcs12.serialize_key_and_certificates(
        b"mail", key, cert, None, serialization.BestAvailableEncryption(b"pfx pass 7")
    )
    pair = certificate.read(pfx, password="pfx pass 7")
    assert pair.certificate.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
    with pytest.raises(certificate.CertificateRefused, match="password is wrong"):
        certificate.read(pfx, password="not it")


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("pem without key", "not its private key"),
        ("key of another certificate", "does not belong to this certificate"),
        ("expired", "expired on"),
        ("1024-bit key", "at least 2048 bits"),
        ("5 MB", "a certificate with its key is a few KB"),
        ("not a certificate", "not a PFX/PKCS#12 or PEM file"),
        ("encrypted key, no password", "enter its password"),
        ("encrypted key, wrong password", "password is wrong"),
    ],
)
def test_material_that_cannot_be_a_credential_is_refused_with_the_reason(
    case: str, said: str
) -> None:
    key, cert = _own_ca()
    password = ""
    if case == "pem without key":
        material = cert.public_bytes(serialization.Encoding.PEM)
    elif case == "key of another certificate":
        other, _ = _own_ca()
        material = _pem(other, cert)
    elif case == "expired":
        material = _pem(*_own_ca(days=-1))
    elif case == "1024-bit key":
        material = _pem(*_own_ca(bits=1024))
    elif case == "5 MB":
        material = _pem(key, cert) + b"\n" * (5 * 1024 * 1024)
    elif case == "not a certificate":
        material = b"\x00\x01 this is a holiday photo"
    else:
        material = _pem(key, cert, password=b"key pass")
        password = "" if case.endswith("no password") else "wrong"
    with pytest.raises(certificate.CertificateRefused, match=said):
        certificate.read(material, password=password)


def test_a_certificate_gets_a_token_once_uploaded_and_names_the_missing_key_before(
    sandbox: Any,
) -> None:
    pair = certificate.make(common_name="SEI Administration mail")
    with pytest.raises(oauth.TokenError) as refused:
        token_with(sandbox, pair)
    assert refused.value.error_codes == [700027] and "key was not found" in str(refused.value)
    assert pair.certificate.thumbprint == sandbox.app.add_certificate(pair.certificate.pem)
    token = token_with(sandbox, pair)
    claims = jwt.decode(token.access_token, options={"verify_signature": False})
    assert claims["appid"] == CLIENT_ID and "SMTP.SendAsApp" in claims["roles"]
    # MSAL named the certificate by its SHA-256 thumbprint and signed with PS256.
    assertion = sandbox.entra.assertions[-1]
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "PS256"
    named = header["x5t#S256"].rstrip("=")  # MSAL pads it; Entra takes both
    assert named == certificate.assertion_thumbprint(pair.certificate.thumbprint_sha256)
    assert "PRIVATE KEY" not in json.dumps(
        jwt.decode(assertion, options={"verify_signature": False})
    )


def _assertion(pair: certificate.KeyPair, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": CLIENT_ID, "sub": CLIENT_ID, "nbf": now, "exp": now + 600, "jti": "x", **claims}
    headers = {"x5t": certificate.assertion_thumbprint(pair.certificate.thumbprint)}
    return jwt.encode(body, pair.private_key_pem, algorithm="RS256", headers=headers)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"iss": "someone-else", "sub": "someone-else"}, 700021),
        ({"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}, 700023),
        ({"nbf": int(time.time()) + 3600, "exp": int(time.time()) + 4000}, 700024),
        ({"signed by": "another key"}, 700027),
    ],
)
def test_the_sandbox_checks_an_assertion_as_entra_does(
    sandbox: Any, change: dict[str, Any], code: int
) -> None:
    import requests

    pair = certificate.make(common_name="x")
    sandbox.app.add_certificate(pair.certificate.pem)
    endpoint = sandbox.entra.token_endpoint(TENANT_ID)
    claims = {"aud": endpoint, **change}
    if "signed by" in claims:
        impostor = certificate.make(common_name="x")
        claims.pop("signed by")
        assertion = _assertion(pair, **claims)
        signing_input = assertion.rsplit(".", 1)[0]
        forged = jwt.encode(
            json.loads(base64.urlsafe_b64decode(signing_input.split(".")[1] + "==")),
            impostor.private_key_pem,
            algorithm="RS256",
            headers={"x5t": certificate.assertion_thumbprint(pair.certificate.thumbprint)},
        )
        assertion = forged
    else:
        assertion = _assertion(pair, **claims)
    answer = requests.post(
        endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "scope": SCOPES[0],
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        verify=str(sandbox.ca_bundle),
        timeout=5,
    )
    assert answer.status_code == 401 and answer.json()["error_codes"] == [code]


def test_make_sandbox_takes_an_upload_as_entra_does(sandbox: Any) -> None:
    import requests

    pair = certificate.make(common_name="x")
    url = f"{sandbox.entra.base_url}/sandbox/certificates/{CLIENT_ID}"
    answer = requests.post(url, data=pair.certificate.pem, verify=str(sandbox.ca_bundle), timeout=5)
    assert answer.json() == {"thumbprint": pair.certificate.thumbprint}
    assert token_with(sandbox, pair).access_token
    # The .cer (DER) as Manage SMTP and the assistant offer it, as Entra takes it.
    other = certificate.make(common_name="y")
    answer = requests.post(
        url, data=other.certificate.der, verify=str(sandbox.ca_bundle), timeout=5
    )
    assert answer.json() == {"thumbprint": other.certificate.thumbprint}
    refused = requests.post(url, data="not a certificate", verify=str(sandbox.ca_bundle), timeout=5)
    assert refused.status_code == 400
