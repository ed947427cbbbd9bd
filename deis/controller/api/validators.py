"""Input rules of the v1 API, each raising a ValidationError with a sentence a person can act on."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from django.conf import settings
from rest_framework.exceptions import ValidationError

from deis.lazy import lazy_module
from deis import rules
from deis.builder import gitsafe
from deis.scheduler import health

tls = lazy_module("deis.router.tls")  # cryptography: only for certificates

# The shared rules (names, memory format) live in deis/rules.py; these names stay for importers.
APP_NAME = rules.APP_NAME
PROCESS_TYPE = rules.PROCESS_TYPE
CONFIG_KEY = rules.CONFIG_KEY
MEMORY = rules.MEMORY
TAG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*\Z")
TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]+\Z")
HOST_LABEL = rules.HOST_LABEL
KEY_ID = re.compile(r"^[A-Za-z0-9_.@+-]+$")
USERNAME = re.compile(r"^[\w.@+-]+$")
MAX_CONFIG_VALUE = rules.CONFIG_VALUE_MAX_BYTES


def app_name(value) -> str:
    """Used as a field validator: raises plain messages, which DRF files under the field."""
    problem = rules.app_name_problem(value)
    if problem:
        raise ValidationError(problem)
    if value in settings.RESERVED_NAMES:
        raise ValidationError(f"'{value}' is reserved by the platform; choose another name.")
    # The app is served at <app>.<platform domain>, which must be a host name the router can serve.
    if len(value) + 1 + len(settings.PLATFORM_DOMAIN) > rules.HOST_NAME_MAX:
        raise ValidationError(f"App name must be at most {rules.HOST_NAME_MAX - 1 - len(settings.PLATFORM_DOMAIN)} "
                              f"characters here: {value}.{settings.PLATFORM_DOMAIN} is longer than a host name may be.")
    return value


def process_type(value, field: str | None = "type") -> str:
    """`field` names where the error is filed; None for a plain message (inside a field validator)."""
    message = rules.process_type_problem(value)
    if message:
        raise ValidationError({field: [message]} if field else message)
    return value


def json_map(value, field: str) -> dict:
    """Accept a map, or a JSON string holding one (the v1 client double-encodes)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            raise ValidationError({field: [f"The JSON is nested more than {settings.MAX_JSON_DEPTH} levels deep."]})
        except ValueError:
            raise ValidationError({field: ["Must be a JSON object."]})
        problem = rules.json_problem(value, settings.MAX_JSON_DEPTH)
        if problem:
            raise ValidationError({field: [problem]})
    if not isinstance(value, dict):
        raise ValidationError({field: ["Must be a JSON object."]})
    if len(value) > settings.MAX_CONFIG_VALUES:
        raise ValidationError({field: [f"At most {settings.MAX_CONFIG_VALUES} entries at once."]})
    return value


def config_values(values: dict) -> dict:
    clean = {}
    for key, value in values.items():
        if not CONFIG_KEY.match(key) or len(key) > rules.CONFIG_KEY_MAX:
            raise ValidationError({"values": [
                f"'{key[:rules.CONFIG_KEY_MAX]}' is not a valid config key: use letters, digits and underscores, "
                f"not starting with a digit, at most {rules.CONFIG_KEY_MAX} characters."]})
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
        problem = rules.text_problem(value)
        if problem:
            raise ValidationError({"values": [f"The value of {key}: {problem}"]})
        if len(value.encode()) > MAX_CONFIG_VALUE:
            raise ValidationError({"values": [f"The value of {key} is longer than {MAX_CONFIG_VALUE} bytes."]})
        problem = health.config_problem(key, value)
        if key == "BUILDPACK_URL" and value:
            problem = problem or gitsafe.buildpack_url_error(value)
        if problem:
            raise ValidationError({"values": [f"BUILDPACK_URL: {problem}" if key == "BUILDPACK_URL" else problem]})
        clean[key] = value
    return clean


def memory_limits(values: dict) -> dict:
    clean = {}
    for ptype, value in values.items():
        process_type(ptype, "memory")
        if value is not None:
            problem = rules.memory_problem(value, settings.MAX_MEMORY)
            if problem:
                raise ValidationError({"memory": [f"{ptype}: {problem}"]})
            value = value.strip().upper()
        clean[ptype] = value
    return clean


def cpu_shares(values: dict) -> dict:
    clean = {}
    for ptype, value in values.items():
        process_type(ptype, "cpu")
        if value is not None:
            problem = rules.cpu_problem(value)
            if problem:
                raise ValidationError({"cpu": [f"{ptype}: {problem}"]})
            value = rules.cpu_shares(value)
        clean[ptype] = value
    return clean


def config_totals(current, changes: dict) -> None:
    """The config `changes` would make, merged into `current` (a Config or None), must stay within
    MAX_CONFIG_VALUES entries a map and MAX_CONFIG_BYTES of environment (each `KEY=value` and its
    NUL, as execve counts them): Linux refuses to start a process with too large an environment."""
    for field, changed in changes.items():
        merged = dict(getattr(current, field, None) or {})
        for key, value in changed.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        if len(merged) > settings.MAX_CONFIG_VALUES:
            raise ValidationError({field: [f"An app may have at most {settings.MAX_CONFIG_VALUES} entries in "
                                           f"{field}; this change would make {len(merged)}."]})
        if field == "values":
            size = sum(len(key.encode()) + len(str(value).encode()) + 2 for key, value in merged.items())
            if size > settings.MAX_CONFIG_BYTES:
                raise ValidationError({field: [f"The config would take {size} bytes of environment; the limit is "
                                               f"{settings.MAX_CONFIG_BYTES} bytes (keys, values and one '=' "
                                               "and one NUL each)."]})


def image_reference(value) -> str:
    """Used as a field validator: an image reference Docker can pull or run."""
    problem = rules.image_reference_problem(value)
    if problem:
        raise ValidationError(problem)
    return value


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
    # Host names are case-insensitive and may be written fully qualified: stored lower-case,
    # without the one trailing dot; everything else must already be a host name the router serves.
    value = value.strip().lower()
    value = value[:-1] if value.endswith(".") else value
    problem = rules.host_name_problem(value, wildcard=True)
    if problem:
        raise ValidationError(problem)
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
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValidationError({"public": [f"This is not a valid OpenSSH public key: {exc}"]})
    digest = hashlib.md5(blob).hexdigest()
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, 32, 2))
    return line, fingerprint


def certificate_pair(certificate, key, common_name=None) -> tuple[tls.CertificateInfo, str]:
    """Check a PEM certificate (then optionally its chain) and its key as the router will (see
    deis/router/tls.py: the key is the certificate's, RSA of 2048 bits or more or EC on P-256,
    P-384 or P-521, no MD5/SHA-1 signature, host names only, not expired) and return its facts and
    its name: `common_name` when given (it must be a host name the certificate covers), else the
    subject's common name, else its first DNS name."""
    try:
        info = tls.check_pair(certificate, key)
    except tls.CertificateProblem as exc:
        raise ValidationError({exc.field: [str(exc)]})
    if common_name:
        name = common_name.strip().lower().rstrip(".") if isinstance(common_name, str) else ""
        if not tls.host_name_ok(name):
            raise ValidationError({"common_name": [f"{common_name!r} is not a host name (like www.example.com) "
                                                   "or a wildcard name (like *.example.com)."]})
        if not (info.covers(name) or name in info.names):
            raise ValidationError({"common_name": [f"The certificate is not for {name} (it is for "
                                                   f"{', '.join(info.names)})."]})
        return info, name
    return info, info.names[0]
