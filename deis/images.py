"""Which images an app's build may name: its own, or an image a registry serves.

A reference is resolved by the engine on this host, where every tenant's images live side by side,
so a name is refused when it would run something the caller was never given: another app's built
image (`deis-apps/<other>`), the platform's own images (the stack and run images), an image by its
bare id, or a registry on a loopback or link-local address (the engine would connect to this
host's own services, or a cloud's metadata service, on the caller's behalf). Django-free: the
controller validates builds with it, and the builder names images by the same rule."""

from __future__ import annotations

import ipaddress
import re

APP_IMAGES = "deis-apps"  # built images live in deis-apps/<app>
PLATFORM_REPOSITORIES = ("deis/stack", "deis/run")
_BARE_ID = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")


def image_repository(app: str) -> str:
    """Where an app's built images live; `deis destroy` removes the images of this repository."""
    return f"{APP_IMAGES}/{app}"


def split(reference: str) -> tuple[str, str]:
    """(registry host or "", repository) of a reference, without its tag or digest."""
    name = reference.split("@", 1)[0]
    first, _, rest = name.partition("/")
    registry = ""
    if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, name = first, rest
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return registry, name


def _host(registry: str) -> str:
    if registry.startswith("["):
        return registry[1:registry.index("]")] if "]" in registry else registry[1:]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def registry_problem(registry: str) -> str | None:
    host = _host(registry).lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return f"Registry {registry} is this host: images must come from a registry, not from this machine."
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast:
        return f"Registry {registry} is a loopback or link-local address: name a registry by its public address."
    return None


def image_problem(reference: str, app: str) -> str | None:
    """Why `app` may not run `reference`, or None."""
    if _BARE_ID.match(reference):
        return "Name an image by repository and tag, not by its id."
    registry, repository = split(reference)
    if registry:
        problem = registry_problem(registry)
        if problem:
            return problem
    owner, _, rest = repository.partition("/")
    if owner == APP_IMAGES and repository != image_repository(app):
        return f"{reference} is not an image of {app}: an app runs only its own builds or images from a registry."
    if not registry and repository in PLATFORM_REPOSITORIES:
        return f"{reference} is one of the platform's own images; it cannot be deployed."
    return None
