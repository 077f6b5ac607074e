"""Certificate credentials for Entra ID: made here, or read from an organisation's PFX or PEM.

Pure values in and out (PEM text), made and read with ``cryptography`` only. The private key
leaves this module only as PEM for the encrypted column and for MSAL's certificate
credential, never for a page. Entra compares certificates by their SHA-1 thumbprint in
upper-case hex (Certificates & secrets shows it that way); MSAL names the certificate in its
signed assertion by the SHA-256 one (``x5t#S256``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from smtp_settings.mail import microsoft

# Weaker keys than this Entra accepts, but nobody should make or bring one today.
SMALLEST_KEY_BITS = 2048
# A PFX or PEM of a certificate and its key is a few kilobytes; anything far larger is not one.
LARGEST_FILE_BYTES = 64 * 1024
DEFAULT_MONTHS = 12
# Entra lets a certificate credential be uploaded with any end date, but its own portal
# proposes at most two years for secrets; certificates made here stay within three.
LONGEST_MONTHS = 36


class CertificateRefused(ValueError):
    """Material that cannot be a certificate credential; the message says why, for the field."""


@dataclass(frozen=True)
class Certificate:
    """The public part, as the pages show it and Entra lists it."""

    pem: str
    subject: str
    not_before: datetime
    not_after: datetime
    key_bits: int

    @property
    def _x509(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem.encode("ascii"))

    @property
    def thumbprint(self) -> str:
        """SHA-1, upper-case hex: exactly what Entra's Certificates & secrets shows."""
        return self._x509.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303  (Entra's name)

    @property
    def thumbprint_sha256(self) -> str:
        return self._x509.fingerprint(hashes.SHA256()).hex().upper()

    @property
    def der(self) -> bytes:
        """The .cer file Entra's Upload certificate takes."""
        return self._x509.public_bytes(serialization.Encoding.DER)

    def expired(self, *, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.not_after


@dataclass(frozen=True)
class KeyPair:
    certificate: Certificate
    # For the encrypted column and MSAL only; never in a repr (error pages, logs).
    private_key_pem: str = field(repr=False)

    def msal_credential(self) -> dict[str, str]:
        """MSAL's certificate credential: it signs the assertion (PS256) and names the
        certificate by its SHA-256 thumbprint."""
        return {"private_key": self.private_key_pem, "public_certificate": self.certificate.pem}


def make(*, common_name: str, months: int = DEFAULT_MONTHS, now: datetime | None = None) -> KeyPair:
    """A new RSA key and a self-signed certificate for it, valid from now for ``months``."""
    if not 1 <= months <= LONGEST_MONTHS:
        raise CertificateRefused(f"Choose a validity of 1 to {LONGEST_MONTHS} months.")
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    key = rsa.generate_private_key(public_exponent=65537, key_size=SMALLEST_KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "SEI")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A minute back: a clock a little behind Entra's must not find it "not yet valid".
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(microsoft.months_later(now, months))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _pair(certificate, key)


def read(material: bytes, *, password: str = "", now: datetime | None = None) -> KeyPair:
    """A certificate with its private key from a PFX/PKCS#12 file (with its password) or a
    PEM file holding both. Raises CertificateRefused with the reason."""
    if len(material) > LARGEST_FILE_BYTES:
        raise CertificateRefused(
            f"This file is {len(material) // 1024} KB: a certificate with its key is a few KB. "
            "Choose the .pfx or .pem that holds one certificate and its private key."
        )
    if b"-----BEGIN" in material:
        certificate, key = _from_pem(material, password)
    else:
        certificate, key = _from_pfx(material, password)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateRefused("The key is not an RSA key: Entra ID takes RSA certificates.")
    if key.key_size < SMALLEST_KEY_BITS:
        raise CertificateRefused(
            f"The key has {key.key_size} bits: use a certificate with an RSA key of at least "
            f"{SMALLEST_KEY_BITS} bits."
        )
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():
        raise CertificateRefused("The private key does not belong to this certificate.")
    pair = _pair(certificate, key)
    if pair.certificate.expired(now=now):
        raise CertificateRefused(
            f"This certificate expired on {pair.certificate.not_after:%Y-%m-%d}: Entra ID "
            "refuses it. Bring a current one, or create one here."
        )
    return pair


def thumbprint_of(pem: str) -> str:
    """A certificate's SHA-1 thumbprint, upper-case hex ("" for what is no certificate)."""
    try:
        loaded = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return ""
    return loaded.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303  (Entra's name)


def der_of(pem: str) -> bytes:
    """A certificate's PEM as the .cer (DER) file Entra's Upload certificate takes."""
    return x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(
        serialization.Encoding.DER
    )


def assertion_thumbprint(thumbprint_hex: str) -> str:
    """A thumbprint as a JWT header carries it (``x5t``, ``x5t#S256``): base64url of the bytes."""
    return base64.urlsafe_b64encode(bytes.fromhex(thumbprint_hex)).rstrip(b"=").decode("ascii")


def _from_pem(material: bytes, password: str) -> tuple[x509.Certificate, object]:
    try:
        certificate = x509.load_pem_x509_certificate(material)
    except ValueError:
        raise CertificateRefused("This PEM file holds no certificate.") from None
    if b"PRIVATE KEY-----" not in material:
        raise CertificateRefused(
            "This PEM file holds the certificate but not its private key: the console signs "
            "with the key. Add the key to the file (or use the .pfx)."
        )
    try:
        key = serialization.load_pem_private_key(material, password=password.encode() or None)
    except TypeError:
        raise CertificateRefused(
            "The private key is encrypted: enter its password."
            if not password
            else "The private key is not encrypted: leave the password empty."
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateRefused(
            "The private key could not be read: the password is wrong or the key is damaged."
        ) from None
    return certificate, key


def _from_pfx(material: bytes, password: str) -> tuple[x509.Certificate, object]:
    try:
        key, certificate, _ = pkcs12.load_key_and_certificates(material, password.encode() or None)
    except ValueError:
        raise CertificateRefused(
            "This is not a PFX/PKCS#12 or PEM file with a certificate, or its password is wrong."
        ) from None
    if certificate is None:
        raise CertificateRefused("This PFX file holds no certificate.")
    if key is None:
        raise CertificateRefused("This PFX file holds no private key: export it with its key.")
    return certificate, key


def _pair(certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> KeyPair:
    return KeyPair(
        certificate=Certificate(
            pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            subject=certificate.subject.rfc4514_string(),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            key_bits=key.key_size,
        ),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
    )
