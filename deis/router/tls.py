"""Whether a certificate and its key are fit for the router: Django-free, shared by the controller
(which refuses an unfit upload with 400) and the router (which never gives HAProxy an unfit one).

The rules mirror what the router's TLS refuses with Debian 12's OpenSSL 3.0 at its default security
level (2: 112 bits), as found with `nginx -t` when nginx was the router (HAProxy 2.6 takes some of
these at `set ssl cert` and fails the handshake later, so they are refused here first):
  - an RSA key under 2048 bits ("ee key too small"), a chain certificate with one ("ca key too small");
  - a certificate signed with MD5 or SHA-1 by another ("ca md too weak");
  - a key that is not the certificate's ("key values mismatch").
OpenSSL takes P-224, secp256k1, brainpool, DSA and Ed25519 keys, which TLS clients do not accept for a
server certificate (TLS 1.3 signs with P-256/P-384/P-521 or RSA): those are refused too, as are host
names the router or clients could not use (a common name or DNS SAN must be a host name or `*.` plus one
label) and, at upload, a certificate that has expired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384  # OpenSSL's own limit
EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
WEAK_DIGESTS = {"md5", "sha1"}
MIN_CHAIN_EC_BITS = 224  # a CA's key: what OpenSSL level 2 asks of it
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class CertificateProblem(ValueError):
    """Why a certificate or key is unfit; `field` is "certificate" or "key" (the API's field)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CertificateInfo:
    common_name: str  # the subject's common name, lower case ('' without one)
    san: tuple[str, ...]  # DNS subject alternative names, lower case
    fingerprint: str  # SHA-256 of the DER certificate, "AB:CD:..."
    starts: datetime
    expires: datetime
    issuer: str
    subject: str
    key_type: str  # "RSA 2048", "EC P-256"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(([self.common_name] if self.common_name else []) + list(self.san)))

    def covers(self, host: str) -> bool:
        return any(name_matches(name, host) for name in self.names)


def host_name_ok(name: str) -> bool:
    """A host name (`www.example.com`) or a wildcard name (`*.example.com`: `*` stands for one label)."""
    if not isinstance(name, str) or not name or len(name) > 253 or name != name.lower():
        return False
    labels = name.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if len(labels) < 2:  # `*.com`: no client takes it
            return False
    return all(_LABEL.match(label) for label in labels)


def name_matches(name: str, host: str) -> bool:
    """Whether a certificate name covers `host`: equal, or `*.rest` for a host of one more label."""
    name, host = name.lower(), host.lower()
    if name == host:
        return True
    return name.startswith("*.") and not host.startswith("*.") and "." in host \
        and host.split(".", 1)[1] == name[2:]


def _key_problem(key, what: str, leaf: bool) -> str | None:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return (f"{what} an RSA key of {key.key_size} bits; the router (OpenSSL 3 at its "
                    f"default security level) needs at least {MIN_RSA_BITS}.")
        if key.key_size > MAX_RSA_BITS:
            return f"{what} an RSA key of {key.key_size} bits; at most {MAX_RSA_BITS} are supported."
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if leaf and key.curve.name not in EC_CURVES:
            return (f"{what} an EC key on the curve {key.curve.name}; use P-256, P-384 or P-521 "
                    "(TLS clients accept no other).")
        if not leaf and key.curve.key_size < MIN_CHAIN_EC_BITS:
            return f"{what} an EC key of {key.curve.key_size} bits; the router needs at least {MIN_CHAIN_EC_BITS}."
        return None
    if not leaf and isinstance(key, dsa.DSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return None
    if not leaf and type(key).__name__.startswith(("Ed25519", "Ed448")):
        return None
    kind = type(key).__name__.replace("PublicKey", "").lstrip("_") or "this"
    return (f"{what} a {kind} key; use an RSA key of {MIN_RSA_BITS} bits or more, or an EC key on "
            "P-256, P-384 or P-521.")


def _digest_problem(cert: x509.Certificate, what: str, self_signed_ok: bool) -> str | None:
    try:
        digest = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return f"{what} is signed with an algorithm the router does not support."
    if digest is not None and digest.name in WEAK_DIGESTS and not (self_signed_ok and cert.issuer == cert.subject):
        return (f"{what} is signed with {digest.name.upper()}, which the router (OpenSSL 3) refuses; "
                "get one signed with SHA-256 or better.")
    return None


def _names(cert: x509.Certificate) -> tuple[str, tuple[str, ...]]:
    cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    for cn in cns:
        if not host_name_ok(cn.lower()):
            raise CertificateProblem("certificate", f"The certificate's common name {cn!r} is not a host name "
                                                    "(like www.example.com) or a wildcard name (like *.example.com).")
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        sans = [str(n) for n in ext.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        sans = []
    except ValueError as exc:  # a malformed extension
        raise CertificateProblem("certificate", f"The certificate's subject alternative names could not be read: {exc}")
    for san in sans:
        if not host_name_ok(san.lower()):
            raise CertificateProblem("certificate", f"The certificate's subject alternative name {san!r} is not a host "
                                                    "name (like www.example.com) or a wildcard name (like *.example.com).")
    return (cns[0].lower() if cns else ""), tuple(dict.fromkeys(s.lower() for s in sans))


def check_pair(certificate: str, key: str, *, now: datetime | None = None, allow_expired: bool = False) -> CertificateInfo:
    """The certificate's facts, or CertificateProblem saying what to fix. `certificate` is PEM (the
    server's certificate, then optionally its chain); `key` is its unencrypted PEM private key."""
    if not isinstance(certificate, str) or "-----BEGIN CERTIFICATE-----" not in certificate:
        raise CertificateProblem("certificate", "Give the certificate in PEM form (-----BEGIN CERTIFICATE-----).")
    if "PRIVATE KEY-----" in certificate:
        raise CertificateProblem("certificate", "The certificate holds a private key: give the key apart, as key.")
    if not isinstance(key, str) or "PRIVATE KEY-----" not in key:
        raise CertificateProblem("key", "Give the private key in PEM form (-----BEGIN ... PRIVATE KEY-----).")
    try:
        chain = x509.load_pem_x509_certificates(certificate.encode())
    except ValueError as exc:
        raise CertificateProblem("certificate", f"The certificate could not be read: {exc}")
    leaf = chain[0]
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateProblem("key", f"The key could not be read (it must not be encrypted): {exc}")
    try:
        public = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateProblem("certificate", f"The certificate's public key could not be read: {exc}")
    problem = _key_problem(private.public_key(), "The key is", leaf=True)
    if problem:
        raise CertificateProblem("key", problem)
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if public.public_bytes(*raw) != private.public_key().public_bytes(*raw):
        raise CertificateProblem("key", "The key does not match the certificate.")
    problem = _digest_problem(leaf, "The certificate", self_signed_ok=False)
    if problem:
        raise CertificateProblem("certificate", problem)
    for i, ca in enumerate(chain[1:], start=2):
        what = f"Certificate {i} of the chain ({ca.subject.rfc4514_string() or 'no subject'})"
        try:
            problem = _key_problem(ca.public_key(), f"{what} has", leaf=False) \
                or _digest_problem(ca, what, self_signed_ok=True)
        except (ValueError, UnsupportedAlgorithm) as exc:
            problem = f"{what} could not be read: {exc}"
        if problem:
            raise CertificateProblem("certificate", problem)
    common_name, san = _names(leaf)
    if not common_name and not san:
        raise CertificateProblem("certificate", "The certificate names no host (no common name and no DNS "
                                                "subject alternative name).")
    expires = leaf.not_valid_after_utc.astimezone(timezone.utc)
    if not allow_expired and expires <= (now or datetime.now(timezone.utc)):
        raise CertificateProblem("certificate", f"The certificate expired on {expires:%Y-%m-%d %H:%M} UTC.")
    pub = private.public_key()
    key_type = f"RSA {pub.key_size}" if isinstance(pub, rsa.RSAPublicKey) else f"EC {EC_CURVES[pub.curve.name]}"
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex().upper()
    return CertificateInfo(
        common_name=common_name, san=san, fingerprint=":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)),
        starts=leaf.not_valid_before_utc.astimezone(timezone.utc), expires=expires,
        issuer=leaf.issuer.rfc4514_string(), subject=leaf.subject.rfc4514_string(), key_type=key_type)


@lru_cache(maxsize=1024)
def problem(certificate: str, key: str) -> str | None:
    """Why the router must not serve this pair ('' never; None when it may). Expiry is not a
    reason: the router serves an expired certificate, and dropping it would not make the host work."""
    try:
        check_pair(certificate, key, allow_expired=True)
    except CertificateProblem as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever a crafted PEM provokes, it is not served
        return f"The certificate could not be checked: {exc}"
    return None
