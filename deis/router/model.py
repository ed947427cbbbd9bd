"""What the router is told: plain data about apps, and the checks made before nginx sees it.

The checks refuse what would let one app's input change the meaning of the configuration (a host
name with `;` or `{`, a path outside the router's own directory) or what is plainly not usable (a
PEM that does not parse). Anything subtler - a key that does not belong to its certificate, an
upstream name that does not resolve - is left to `nginx -t`, which the router runs on every new
configuration before it goes live.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import NameOID

APP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_NAME = re.compile(rf"^(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}$")
UPSTREAM_NAME = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")


class InvalidRoute(ValueError):
    """A route the router refuses before writing any configuration for it."""


@dataclass(frozen=True)
class Certificate:
    """A certificate served by SNI for the hosts of its route that it covers."""

    common_name: str
    cert: str  # PEM, the certificate (and optionally its chain after it)
    key: str  # PEM, the private key

    def names(self) -> list[str]:
        """The host names this certificate is for: its common name and, when readable, its SANs."""
        names = [self.common_name.lower()] if self.common_name else []
        try:
            parsed = x509.load_pem_x509_certificate(self.cert.encode())
            sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names += [n.lower() for n in sans.value.get_values_for_type(x509.DNSName)]
        except (ValueError, x509.ExtensionNotFound):
            pass
        return list(dict.fromkeys(names))

    def covers(self, host: str) -> bool:
        host = host.lower()
        for name in self.names():
            if name == host:
                return True
            if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:] \
                    and not host.startswith("*."):
                return True
        return False


@dataclass(frozen=True)
class Route:
    """One app as the router sees it.

    hosts: `<app>.<platform domain>` and the app's custom domains (a leading `*.` is allowed);
    upstreams: (address, port) of the app's healthy web containers - none means 503;
    certificates: served by SNI to the hosts they cover;
    backups: (address, port) used only when no upstream answers (a rollout's old processes while
    its new ones prove they stay up).
    """

    app: str
    hosts: list[str]
    upstreams: list[tuple[str, int]] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    backups: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Route:
        return cls(app=data["app"], hosts=list(data["hosts"]),
                   upstreams=[(str(h), int(p)) for h, p in data.get("upstreams", [])],
                   certificates=[Certificate(**c) for c in data.get("certificates", [])],
                   backups=[(str(h), int(p)) for h, p in data.get("backups", [])])


def validate(route: Route) -> Route:
    """A normalised copy of `route` (lower-case hosts, no duplicates), or InvalidRoute."""
    if not isinstance(route.app, str) or not APP_NAME.match(route.app):
        raise InvalidRoute(f"invalid app name {route.app!r}")
    hosts = []
    for host in route.hosts:
        if not isinstance(host, str):
            raise InvalidRoute(f"invalid host name {host!r}")
        h = host.strip().lower().rstrip(".")
        if len(h) > 253 or not HOST_NAME.match(h):
            raise InvalidRoute(f"invalid host name {host!r}")
        if h not in hosts:
            hosts.append(h)
    if not hosts:
        raise InvalidRoute("no host names")
    upstreams = _upstreams(route.upstreams)
    backups = [b for b in _upstreams(route.backups) if b not in upstreams] if upstreams else []
    for cert in route.certificates:
        if not isinstance(cert.common_name, str) or (cert.common_name and not HOST_NAME.match(cert.common_name.lower())):
            raise InvalidRoute(f"invalid certificate common name {cert.common_name!r}")
        try:
            x509.load_pem_x509_certificate(cert.cert.encode())
        except (ValueError, TypeError, AttributeError) as exc:
            raise InvalidRoute(f"certificate {cert.common_name!r}: unreadable PEM certificate ({exc})") from None
        try:
            load_pem_private_key(cert.key.encode(), password=None)
        except (ValueError, TypeError, AttributeError) as exc:
            raise InvalidRoute(f"certificate {cert.common_name!r}: unreadable PEM private key ({exc})") from None
        # Whether the key belongs to the certificate is for `nginx -t` to say.
    return Route(app=route.app, hosts=hosts, upstreams=upstreams, certificates=list(route.certificates),
                 backups=backups)


def _upstreams(items) -> list[tuple[str, int]]:
    """Normalised (address, port) pairs without duplicates, or InvalidRoute."""
    upstreams = []
    for item in items:
        try:
            addr, port = item
            port = int(port)
        except (TypeError, ValueError):
            raise InvalidRoute(f"invalid upstream {item!r}") from None
        if not 0 < port < 65536:
            raise InvalidRoute(f"invalid upstream port in {item!r}")
        addr = str(addr).strip()
        try:
            addr = str(ipaddress.ip_address(addr.strip("[]")))
        except ValueError:
            if len(addr) > 253 or not UPSTREAM_NAME.match(addr.lower()):
                raise InvalidRoute(f"invalid upstream address in {item!r}") from None
            addr = addr.lower()
        if (addr, port) not in upstreams:
            upstreams.append((addr, port))
    return upstreams


def common_name_of(cert_pem: str) -> str:
    """The subject common name of a PEM certificate ('' when it has none)."""
    parsed = x509.load_pem_x509_certificate(cert_pem.encode())
    attrs = parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""
