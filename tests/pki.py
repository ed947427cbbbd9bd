"""Certificates and SSH keys made on the spot for tests (nothing checked in)."""

from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID


def private_key(kind: str = "ec", size: int = 2048, curve: ec.EllipticCurve | None = None):
    """A fresh private key: "ec" (P-256 unless `curve`), "rsa" (`size` bits) or "ed25519"."""
    if kind == "rsa":
        return rsa.generate_private_key(65537, size) if size >= 1024 else _small_rsa_key(size)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(curve or ec.SECP256R1())


def _small_rsa_key(bits: int):
    """An RSA key below the 1024 bits `cryptography` will generate (the 512-bit key of a test)."""
    import secrets

    def prime(n):
        while True:
            c = secrets.randbits(n) | (1 << (n - 1)) | (1 << (n - 2)) | 1
            if all(pow(secrets.randbelow(c - 3) + 2, c - 1, c) == 1 for _ in range(32)) and c % 65537 != 1:
                return c

    while True:
        p, q = prime(bits // 2), prime(bits - bits // 2)
        if p != q and (p * q).bit_length() == bits:
            break
    d = pow(65537, -1, (p - 1) * (q - 1))
    return rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
                                 rsa.RSAPublicNumbers(65537, p * q)).private_key(unsafe_skip_rsa_key_validation=True)


def key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def self_signed(common_name: str | None, days: int = 30, sans: tuple[str, ...] = (), key=None,
                starts_days_ago: int = 1) -> tuple[str, str, datetime]:
    """(certificate PEM, key PEM, expiry) of a fresh self-signed certificate (a P-256 key unless
    `key`; days < 0: expired that many days ago)."""
    key = key or private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    now = datetime.now(timezone.utc).replace(microsecond=0)
    expires = now + timedelta(days=days)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(min(now - timedelta(days=starts_days_ago), expires - timedelta(days=1)))
               .not_valid_after(expires))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(key, algorithm)
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key), expires


def ca_signed(common_name: str, ca_key=None, sans: tuple[str, ...] = (), days: int = 30) -> tuple[str, str, str]:
    """(leaf PEM + CA PEM, leaf key PEM, CA PEM): a P-256 leaf signed by a fresh CA (`ca_key`, RSA
    2048 unless given), its chain after it."""
    ca_key = ca_key or private_key("rsa", 2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = private_key()
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    leaf = builder.sign(ca_key, hashes.SHA256())
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    return leaf.public_bytes(serialization.Encoding.PEM).decode() + ca_pem, key_pem(leaf_key), ca_pem


def other_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def ssh_public_key(kind: str = "ed25519", comment: str = "test@host") -> str:
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, 2048)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{line.decode()} {comment}"
