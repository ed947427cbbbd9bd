"""What the router is told: plain data about apps, and the checks made before HAProxy sees it.

The checks refuse what would let one app's input change the meaning of the configuration (a host
name with `;` or `{`, a path outside the router's own directory). A certificate is never a reason to
refuse a route: one that `tls.problem` finds unfit (unreadable, a key not its own or too weak, a
name that is not a host name) is left out of it, so the app's hosts and upstreams still go live.
Anything subtler - a certificate HAProxy refuses although it passed these checks - is found when
HAProxy is given it, and left out then.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

# cryptography (and tls, which needs it) is imported where a certificate is looked at: about
# 15 MB of every process that imports the router's model, most of which never sees one.

APP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_NAME = re.compile(rf"^(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}$")
UPSTREAM_NAME = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")


class RouterError(RuntimeError):
    """The router cannot do what it was asked (HAProxy missing, port taken, config refused...)."""


class InvalidRoute(ValueError):
    """A route the router refuses before writing any configuration for it."""


@dataclass(frozen=True)
class Certificate:
    """A certificate served by SNI for the hosts of its route that it covers."""

    common_name: str
    cert: str  # PEM, the certificate (and optionally its chain after it)
    key: str  # PEM, the private key
    # The only hosts it is served for (those it is attached to), when given; None: any host of
    # the route it covers.
    hosts: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.hosts is not None:
            object.__setattr__(self, "hosts", tuple(h.lower() if isinstance(h, str) else h for h in self.hosts))

    def names(self) -> list[str]:
        """The host names this certificate is for: its common name and, when readable, its SANs."""
        names = [self.common_name.lower()] if self.common_name else []
        try:
            from cryptography import x509

            parsed = x509.load_pem_x509_certificate(self.cert.encode())
            sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names += [n.lower() for n in sans.value.get_values_for_type(x509.DNSName)]
        except (ValueError, x509.ExtensionNotFound):
            pass
        return list(dict.fromkeys(names))

    def covers(self, host: str) -> bool:
        from . import tls

        host = host.lower()
        if self.hosts is not None and host not in self.hosts:
            return False
        return any(tls.name_matches(name, host) for name in self.names())

    def problem(self) -> str | None:
        """Why this certificate must not be served (see `tls.problem`), or None."""
        from . import tls

        if not isinstance(self.common_name, str) or (self.common_name
                                                     and not tls.host_name_ok(self.common_name.lower())):
            return f"invalid certificate common name {self.common_name!r}"
        if not isinstance(self.cert, str) or not isinstance(self.key, str):
            return "the certificate and its key must be PEM text"
        if self.hosts is not None and not all(isinstance(h, str) for h in self.hosts):
            return "invalid host names"
        return tls.problem(self.cert, self.key)


@dataclass(frozen=True)
class Route:
    """One app as the router sees it.

    hosts: `<app>.<platform domain>` and the app's custom domains (a leading `*.` is allowed);
    upstreams: (address, port) of the app's healthy web containers - none means 503;
    certificates: served by SNI to the hosts they cover;
    backups: (address, port) used only when no upstream answers (a rollout's old processes while
    its new ones prove they stay up);
    maintenance: every request answers 503 with the maintenance page;
    allow: networks (CIDR) whose clients may use the app; empty: everybody.
    """

    app: str
    hosts: list[str]
    upstreams: list[tuple[str, int]] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    backups: list[tuple[str, int]] = field(default_factory=list)
    maintenance: bool = False
    allow: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Route:
        return cls(app=data["app"], hosts=list(data["hosts"]),
                   upstreams=[(str(h), int(p)) for h, p in data.get("upstreams", [])],
                   certificates=[Certificate(**c) for c in data.get("certificates", [])],
                   backups=[(str(h), int(p)) for h, p in data.get("backups", [])],
                   maintenance=bool(data.get("maintenance", False)), allow=list(data.get("allow", [])))


def certificate_problems(route: Route) -> list[str]:
    """What `validate` leaves out of the route's certificates, and why (for the router's warnings)."""
    out = []
    for cert in route.certificates:
        why = cert.problem() if isinstance(cert, Certificate) else "not a certificate"
        if why:
            name = getattr(cert, "common_name", "?")
            out.append(f"{route.app}: certificate {name!r} is not served: {why}")
    return out


def validate(route: Route) -> Route:
    """A normalised copy of `route` (lower-case hosts, no duplicates, only certificates fit to
    serve), or InvalidRoute."""
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
    certificates = [c for c in route.certificates if isinstance(c, Certificate) and c.problem() is None]
    allow = []
    for net in route.allow or []:
        try:
            normal = str(ipaddress.ip_network(str(net).strip(), strict=False))
        except ValueError:
            raise InvalidRoute(f"invalid address or network {net!r}") from None
        if normal not in allow:
            allow.append(normal)
    return Route(app=route.app, hosts=hosts, upstreams=upstreams, certificates=certificates,
                 backups=backups, maintenance=bool(route.maintenance), allow=allow)


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
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    parsed = x509.load_pem_x509_certificate(cert_pem.encode())
    attrs = parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""
