"""What the builder lets reach git: URLs, refs and object names that can never be read as an option.

Django-free and standard library only, so the controller's config validation can use
`buildpack_url_error` (BUILDPACK_URL) and refuse a bad value when it is set, before any push.

Rules:
- a git URL is http://, https:// or git:// with a host, no whitespace or control characters,
  nothing starting with `-`; an optional `#<ref>` names a branch, tag or commit;
- a ref follows `git check-ref-format --allow-onelevel` and never starts with `-`, or is a hex
  object name (4-64 digits);
- wherever git takes a revision or a path after that, the builder still passes `--` or
  `--end-of-options` (or a resolved hex object name).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

GIT_SCHEMES = ("http", "https", "git")
HEX = re.compile(r"^[0-9a-f]{4,64}$")
OBJECT_ID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")  # what git sends a hook: sha1 or sha256
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_HOST = re.compile(r"^[A-Za-z0-9_.\[\]:-]+$")
MAX_URL = 2048
MAX_REF = 255
BUILTIN_BUILDPACKS = ("python", "nodejs", "static", "null")


def ref_error(ref: str) -> str | None:
    """Why `ref` cannot be a buildpack's branch, tag or commit, or None."""
    if not ref:
        return "the ref after # is empty"
    if len(ref) > MAX_REF:
        return "the ref is too long"
    if ref.startswith("-"):
        return f"the ref {ref!r} starts with '-'"
    if HEX.match(ref):
        return None
    if _REF_FORBIDDEN.search(ref):
        return f"the ref {ref!r} has a character git does not allow in a ref (space, control, ~^:?*[\\)"
    if ref == "@" or "@{" in ref or ".." in ref or "//" in ref:
        return f"the ref {ref!r} is not a valid git ref ('@', '@{{', '..' or '//')"
    if ref.startswith("/") or ref.endswith(("/", ".")):
        return f"the ref {ref!r} is not a valid git ref (starts with '/' or ends with '/' or '.')"
    for part in ref.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return f"the ref {ref!r} is not a valid git ref (a part starts with '.' or ends with '.lock')"
    return None


def git_url_error(url: str) -> str | None:
    """Why `url` (without its #ref) cannot be cloned by the builder, or None."""
    if not url:
        return "the URL is empty"
    if len(url) > MAX_URL:
        return "the URL is too long"
    if _CONTROL_OR_SPACE.search(url):
        return "the URL has whitespace or control characters"
    if url.startswith("-"):
        return "the URL starts with '-'"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return f"the URL cannot be parsed ({exc})"
    if parts.scheme.lower() not in GIT_SCHEMES or not url.lower().startswith(parts.scheme.lower() + "://"):
        return f"only {', '.join(s + '://' for s in GIT_SCHEMES)} URLs are taken"
    host = parts.hostname or ""
    if not host or host.startswith("-") or not _HOST.match(host):
        return "the URL has no valid host"
    return None


def split_ref(value: str) -> tuple[str, str]:
    """`url#ref` -> (url, ref); ref is '' when there is no '#'."""
    location, _, ref = value.partition("#")
    return location, ref


def git_location_error(value: str) -> str | None:
    """Why a `url[#ref]` of a git buildpack cannot be used, or None."""
    url, ref = split_ref(value)
    reason = git_url_error(url)
    if reason is None and "#" in value:
        reason = ref_error(ref)
    return reason


def local_location_error(value: str) -> str | None:
    """Why `/path[#ref]` or `file:///path[#ref]` cannot name a local buildpack (syntax only: the
    builder also checks the folder is one it takes local buildpacks from), or None."""
    location, ref = split_ref(value.removeprefix("file://"))
    if not location.startswith("/"):
        return "a local buildpack is an absolute path"
    if _CONTROL_OR_SPACE.search(location) or len(location) > 4096:
        return "the path has whitespace or control characters"
    if "#" in value:
        return ref_error(ref)
    return None


def buildpack_url_error(value: str) -> str | None:
    """Why `value` cannot be a BUILDPACK_URL (or a line of .buildpacks), or None: a built-in
    buildpack (python, heroku/python, ...), a local path (/... or file:///...) or a git URL
    (http(s):// or git://, optionally #ref). For the controller's config validation too."""
    value = str(value).strip()
    if value in BUILTIN_BUILDPACKS or value.removeprefix("heroku/") in BUILTIN_BUILDPACKS:
        return None
    if value.startswith(("/", "file://")):
        return local_location_error(value)
    return git_location_error(value)


def object_id_error(value: str) -> str | None:
    """Why `value` is not a full hex object name (as git gives a pre-receive hook), or None."""
    return None if OBJECT_ID.match(value or "") else f"{value[:80]!r} is not an object name"
