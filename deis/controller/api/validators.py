"""Input rules of the v1 API, each raising a ValidationError with a sentence a person can act on."""

import base64
import hashlib
import json
import re
from datetime import timezone

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from rest_framework.exceptions import ValidationError

from deis.scheduler import health

APP_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
PROCESS_TYPE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MEMORY = re.compile(r"^[0-9]+(MB|KB|GB|[BKMG])$", re.IGNORECASE)
TAG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]+$")
HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
KEY_ID = re.compile(r"^[A-Za-z0-9_.@+-]+$")
USERNAME = re.compile(r"^[\w.@+-]+$")
MAX_CONFIG_VALUE = 64 * 1024


def app_name(value) -> str:
    """Used as a field validator: raises plain messages, which DRF files under the field."""
    if not isinstance(value, str) or not value:
        raise ValidationError("App name must be a non-empty string.")
    if len(value) > 63:
        raise ValidationError("App name must be at most 63 characters.")
    if not APP_NAME.match(value) or value.endswith("-") or "--" in value:
        raise ValidationError(
            f"'{value}' is not a valid app name: use lower-case letters, digits and single dashes, "
            "starting with a letter.")
    if value in settings.RESERVED_NAMES:
        raise ValidationError(f"'{value}' is reserved by the platform; choose another name.")
    return value


def process_type(value, field: str | None = "type") -> str:
    """`field` names where the error is filed; None for a plain message (inside a field validator)."""
    if not isinstance(value, str) or len(value) > 63 or not PROCESS_TYPE.match(value):
        message = (f"'{value}' is not a valid process type: use lower-case letters and digits, "
                   "with dashes or underscores inside.")
        raise ValidationError({field: [message]} if field else message)
    return value


def json_map(value, field: str) -> dict:
    """Accept a map, or a JSON string holding one (the v1 client double-encodes)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError({field: ["Must be a JSON object."]})
    if not isinstance(value, dict):
        raise ValidationError({field: ["Must be a JSON object."]})
    return value


def config_values(values: dict) -> dict:
    clean = {}
    for key, value in values.items():
        if not CONFIG_KEY.match(key) or len(key) > 256:
            raise ValidationError({"values": [
                f"'{key}' is not a valid config key: use letters, digits and underscores, "
                "not starting with a digit."]})
        if value is None:
            clean[key] = None
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise ValidationError({"values": [f"The value of {key} must be a string."]})
        if "\x00" in value:
            raise ValidationError({"values": [f"The value of {key} may not contain NUL characters."]})
        if len(value) > MAX_CONFIG_VALUE:
            raise ValidationError({"values": [f"The value of {key} is longer than {MAX_CONFIG_VALUE} bytes."]})
        problem = health.config_problem(key, value)
        if problem:
            raise ValidationError({"values": [problem]})
        clean[key] = value
    return clean


def memory_limits(values: dict) -> dict:
    clean = {}
    for ptype, value in values.items():
        process_type(ptype, "memory")
        if value is not None:
            if not isinstance(value, str) or not MEMORY.match(value):
                raise ValidationError({"memory": [
                    f"Memory limit '{value}' for {ptype} is not valid: use a number with a unit, "
                    "like 512M or 1G (B, K, M, G, KB, MB, GB)."]})
            value = value.upper()
        clean[ptype] = value
    return clean


def cpu_shares(values: dict) -> dict:
    clean = {}
    for ptype, value in values.items():
        process_type(ptype, "cpu")
        if value is not None:
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024:
                raise ValidationError({"cpu": [
                    f"CPU shares '{value}' for {ptype} are not valid: use a whole number from 0 to 1024."]})
        clean[ptype] = value
    return clean


def tags(values: dict) -> dict:
    clean = {}
    for key, value in values.items():
        if not TAG_KEY.match(key) or len(key) > 63:
            raise ValidationError({"tags": [f"'{key}' is not a valid tag name: use letters, digits, '.', '_' and '-'."]})
        if value is not None:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not TAG_VALUE.match(value) or len(value) > 63:
                raise ValidationError({"tags": [
                    f"'{value}' is not a valid value for tag {key}: use letters, digits, '.', '_' and '-'."]})
        clean[key] = value
    return clean


def domain_name(value) -> str:
    """Used as a field validator: raises plain messages."""
    if not isinstance(value, str) or not value:
        raise ValidationError("A domain is required.")
    value = value.strip().lower().rstrip(".")
    if len(value) > 253:
        raise ValidationError("A domain name is at most 253 characters.")
    labels = value.split(".")
    first = labels[0]
    if first == "*":
        labels = labels[1:]
    if len(labels) < 2 or not all(HOST_LABEL.match(label) for label in labels):
        raise ValidationError(f"'{value}' is not a valid host name.")
    if labels[-1].isdigit():
        raise ValidationError(f"'{value}' is an IP address, not a host name.")
    platform = settings.PLATFORM_DOMAIN.lower()
    if value == platform or value.endswith("." + platform):
        raise ValidationError(
            f"'{value}' is under the platform domain {platform}, which the platform assigns itself.")
    return value


def ssh_public_key(value) -> tuple[str, str]:
    """Return the normalised key line and its MD5 fingerprint (the form the builder reports)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"public": ["An SSH public key is required."]})
    line = value.strip()
    if "\n" in line:
        raise ValidationError({"public": ["Give one SSH public key, on one line."]})
    parts = line.split()
    if len(parts) < 2:
        raise ValidationError({"public": ["This is not an OpenSSH public key (expected 'ssh-ed25519 AAAA... comment')."]})
    try:
        serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValidationError({"public": [f"This is not a valid OpenSSH public key: {exc}"]})
    digest = hashlib.md5(blob).hexdigest()
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, 32, 2))
    return line, fingerprint


def certificate_pair(certificate, key) -> tuple[x509.Certificate, str]:
    """Parse a PEM certificate and key, check they belong together, and return the certificate
    and its common name (subject CN, else its first DNS name)."""
    if not isinstance(certificate, str) or "BEGIN CERTIFICATE" not in certificate:
        raise ValidationError({"certificate": ["Give the certificate in PEM form (-----BEGIN CERTIFICATE-----)."]})
    if not isinstance(key, str) or "PRIVATE KEY" not in key:
        raise ValidationError({"key": ["Give the private key in PEM form (-----BEGIN ... PRIVATE KEY-----)."]})
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except ValueError as exc:
        raise ValidationError({"certificate": [f"The certificate could not be read: {exc}"]})
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValidationError({"key": [f"The key could not be read (it must not be encrypted): {exc}"]})
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*raw) != private.public_key().public_bytes(*raw):
        raise ValidationError({"key": ["The key does not match the certificate."]})
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    if not common_name:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            dns = san.value.get_values_for_type(x509.DNSName)
            common_name = dns[0] if dns else ""
        except x509.ExtensionNotFound:
            pass
    return cert, common_name.lower()


def certificate_expiry(cert: x509.Certificate):
    return cert.not_valid_after_utc.astimezone(timezone.utc)
