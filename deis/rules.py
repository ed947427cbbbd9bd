"""Rules every component shares about names, limits and request bodies, parsed in one place.

Django-free on purpose: the controller (API validation, settings), the scheduler (Docker's form of
a memory limit) and the builder import it. Each check answers with the problem as a sentence a
person can act on, or None when the value is fine; callers decide how to report it (the API as a
400, the scheduler as a SchedulerError).
"""

from __future__ import annotations

import ipaddress
import os
import re

# --- names ------------------------------------------------------------------------------------

# An app is served at `<app>.<platform domain>` and names containers `<app>.<release>.<type>.<n>`
# and the network `<namespace>-<app>`: one DNS label.
APP_NAME = re.compile(r"^[a-z][a-z0-9-]*\Z")  # \Z: "$" would let a trailing newline in
APP_NAME_MAX = 63
PROCESS_TYPE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*\Z")
PROCESS_TYPE_MAX = 63
HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
HOST_NAME_MAX = 253  # RFC 1035, without the trailing dot
# Environment variable names: what a shell can export (no '=' or NUL, which execve cannot carry).
CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
CONFIG_KEY_MAX = 256
# Linux refuses one environment string ("KEY=value") longer than MAX_ARG_STRLEN (128 KiB) with E2BIG.
CONFIG_VALUE_MAX_BYTES = 64 * 1024


def app_name_problem(value) -> str | None:
    if not isinstance(value, str) or not value:
        return "App name must be a non-empty string."
    if len(value) > APP_NAME_MAX:
        return f"App name must be at most {APP_NAME_MAX} characters."
    if not APP_NAME.match(value) or value.endswith("-") or "--" in value:
        return (f"'{value}' is not a valid app name: use lower-case letters, digits and single dashes, "
                "starting with a letter.")
    return None


def process_type_problem(value) -> str | None:
    if not isinstance(value, str) or len(value) > PROCESS_TYPE_MAX or not PROCESS_TYPE.match(value):
        return (f"'{value}' is not a valid process type: use lower-case letters and digits, "
                "with dashes or underscores inside.")
    return None


def host_name_problem(value: str, wildcard: bool = True) -> str | None:
    """A host name the router can serve: lower-case labels of 1-63 letters, digits and inner dashes,
    at least two of them, at most 253 characters, no trailing dot; with `wildcard`, a first label
    of `*` (a whole label only)."""
    if not isinstance(value, str) or not value:
        return "A host name is required."
    if len(value) > HOST_NAME_MAX:
        return f"A host name is at most {HOST_NAME_MAX} characters."
    labels = value.split(".")
    if wildcard and labels[0] == "*":
        labels = labels[1:]
    if len(labels) < 2 or not all(HOST_LABEL.match(label) for label in labels):
        return (f"'{value}' is not a valid host name: use labels of 1 to 63 lower-case letters, digits and "
                "dashes (not at either end), separated by dots" + (", optionally starting with '*.'." if wildcard else "."))
    if labels[-1].isdigit():
        return f"'{value}' is an IP address, not a host name."
    return None


# --- networks (an app's allow-list) ----------------------------------------------------------

NETWORKS_MAX = 100  # addresses an app's allow-list may hold (the router matches each request against them)
NETWORK_TEXT_MAX = 64  # the longest IPv6 network written out in full is 49 characters
NETWORK_FORMAT = "an IPv4 or IPv6 address or network, like 203.0.113.7, 10.0.0.0/8 or 2001:db8::/32"


def network_problem(value) -> str | None:
    """Whether `value` is an address or a network (CIDR) the router can allow. Host bits may be set
    (10.1.2.3/8 stands for 10.0.0.0/8); IPv6 zones (fe80::1%eth0) mean nothing to another host."""
    if not isinstance(value, str) or not value.strip():
        return f"An address must be a non-empty string: {NETWORK_FORMAT}."
    text = value.strip()
    shown = f"'{text}'" if len(text) <= NETWORK_TEXT_MAX and text.isascii() and text.isprintable() else "This"
    if len(text) > NETWORK_TEXT_MAX or "%" in text:
        return f"{shown} is not {NETWORK_FORMAT}."
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"{shown} is not {NETWORK_FORMAT}."
    return None


def normal_network(value: str) -> str:
    """A network in the one form the router and the API keep: 10.1.2.3/8 -> 10.0.0.0/8, 203.0.113.7 ->
    203.0.113.7/32, 2001:DB8::/32 -> 2001:db8::/32. ValueError (network_problem's sentence) otherwise."""
    problem = network_problem(value)
    if problem:
        raise ValueError(problem)
    return str(ipaddress.ip_network(value.strip(), strict=False))


# --- image references (github.com/distribution/reference) ------------------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?\Z")
IMAGE_NAME_MAX = 255
IMAGE_REFERENCE_MAX = 512


def image_reference_problem(value) -> str | None:
    """Whether Docker would take `value` as an image reference (`[registry/]name[:tag][@digest]`)."""
    if not isinstance(value, str) or not value:
        return "An image reference is required."
    match = IMAGE_REFERENCE.match(value) if len(value) <= IMAGE_REFERENCE_MAX else None
    if match is None:
        return (f"'{value[:IMAGE_REFERENCE_MAX]}' is not a valid image reference: use [registry/]name[:tag][@digest], "
                "with a lower-case name (letters, digits and . _ - separators), like registry.local/web:1.0.")
    name = match.group("name")
    if len(name) > IMAGE_NAME_MAX:
        return f"The image name is longer than {IMAGE_NAME_MAX} characters."
    return None  # which images an app may run is deis/images.py's question


# --- limits -----------------------------------------------------------------------------------

# The API's form of a memory limit (the v1 contract): a number and a unit.
MEMORY = re.compile(r"^([0-9]{1,20})(MB|KB|GB|[BKMG])\Z", re.IGNORECASE)
MEMORY_UNITS = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
MEMORY_FORMAT = "a number with a unit, like 512M or 1G (B, K, M, G, KB, MB, GB)"
# Docker refuses a memory limit under 6 MiB ("Minimum memory limit allowed is 6MB").
DOCKER_MIN_MEMORY = 6 << 20
# CPU shares: Docker takes 2 to 262144 (0 is its default); the v1 contract allows up to 1024.
CPU_SHARES_MIN, CPU_SHARES_MAX = 2, 1024


def memory_bytes(value) -> int | None:
    """Bytes of a memory limit in the API's form ("512M", "1GB", "64kb"); None when not that form."""
    if not isinstance(value, str):
        return None
    match = MEMORY.match(value.strip())
    if not match:
        return None
    number, unit = match.groups()
    return int(number) * MEMORY_UNITS[unit[0].upper()]


def docker_memory(value) -> str | None:
    """Docker's form of a memory limit: "512M"/"512MB" -> "512m", "1G" -> "1g"; None when unset;
    ValueError when it is not a memory limit."""
    if value in (None, ""):
        return None
    match = MEMORY.match(str(value).strip())
    if not match:
        raise ValueError(f"Memory limit '{value}' is not valid: use {MEMORY_FORMAT}.")
    number, unit = match.groups()
    return f"{number}{unit[0].lower()}"


def format_memory(size: int) -> str:
    """A size in bytes in the API's form, rounded down to a unit ("6M", "15G", "15872M")."""
    for unit in ("G", "M"):
        if size >= MEMORY_UNITS[unit] and size % MEMORY_UNITS[unit] == 0:
            return f"{size // MEMORY_UNITS[unit]}{unit}"
    if size >= MEMORY_UNITS["M"]:
        return f"{size // MEMORY_UNITS['M']}M"
    if size >= MEMORY_UNITS["K"] and size % MEMORY_UNITS["K"] == 0:
        return f"{size // MEMORY_UNITS['K']}K"
    return f"{size}B"


def size_setting(raw) -> int | None:
    """A size from the environment: bytes ("17179869184") or the API's form ("16G"); None when unset
    or unreadable."""
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else memory_bytes(raw)


def host_memory() -> int:
    """This host's physical memory in bytes (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def memory_problem(value, maximum: int) -> str | None:
    """Whether `value` is a memory limit Docker takes, no larger than `maximum` bytes."""
    size = memory_bytes(value)
    accepted = f"use {MEMORY_FORMAT}, from {format_memory(DOCKER_MIN_MEMORY)} to {format_memory(maximum)}."
    if size is None:
        return f"Memory limit '{str(value)[:40]}' is not valid: {accepted}"
    if size < DOCKER_MIN_MEMORY:
        return f"Memory limit '{value}' is below Docker's minimum of {format_memory(DOCKER_MIN_MEMORY)}: {accepted}"
    if size > maximum:
        return f"Memory limit '{value}' is more than this platform allows ({format_memory(maximum)}): {accepted}"
    return None


def cpu_shares(value) -> int | None:
    """CPU shares as a whole number (an int, or a string of ASCII digits); None when not one."""
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,7}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def cpu_problem(value) -> str | None:
    shares = cpu_shares(value)
    if shares is None or not (shares == 0 or CPU_SHARES_MIN <= shares <= CPU_SHARES_MAX):
        return (f"CPU shares '{value}' are not valid: use a whole number from {CPU_SHARES_MIN} to "
                f"{CPU_SHARES_MAX} (0 for the default).")
    return None


def whole_number(value, maximum: int) -> int | None:
    """A count: an int, or a string of ASCII digits, from 0 to `maximum`; None otherwise (floats,
    booleans, negative numbers, '1e3', digits of other scripts)."""
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,18}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        return None
    return value


# --- request bodies ---------------------------------------------------------------------------

MAX_JSON_DEPTH = 32


def text_problem(value: str) -> str | None:
    """Text the platform can store and pass on: no NUL (Docker env and PostgreSQL refuse it) and
    valid Unicode (a lone surrogate, like \\ud800, has no UTF-8 form)."""
    if "\x00" in value:
        return "Text may not contain NUL characters (\\u0000)."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Text must be valid Unicode: lone surrogates (\\ud800 to \\udfff) are not allowed."
    return None


def json_problem(value, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Whether parsed JSON is nested at most `max_depth` objects/arrays deep and every key and
    string passes text_problem. Iterative: any depth is looked at without recursion."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, (dict, list)):
            if depth + 1 > max_depth:
                return f"The JSON is nested more than {max_depth} levels deep."
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth + 1))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return None
