"""HTTP calls to the controller, turning every failure into a DeisError a person can act on."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import click
import requests

from deis import API_VERSION, __version__

from .errors import DeisError
from .settings import Settings

NOT_LOGGED_IN = "You are not logged in. Use `deis login URL` (or `deis register URL` for a new account) first."
TIMEOUT = (10, 600)  # connect, read: deploys may take minutes


def normalize_url(url: str) -> str:
    """Add http:// when no scheme is given (as the v1 client does) and drop a trailing slash."""
    try:
        if not urlsplit(url).scheme:
            url = "http://" + url
        valid = bool(urlsplit(url).hostname)
    except ValueError:
        valid = False
    if not valid:
        raise DeisError(f"'{url}' is not a valid controller URL (like http://127.0.0.1:8000).")
    return url.rstrip("/")


def controller_host(controller: str) -> str:
    return urlsplit(controller).hostname or "localhost"


def connection_reason(exc: Exception) -> str:
    """The useful end of a requests connection error, e.g. 'Connection refused'."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip()
    return text


def field_errors(field: str | None, messages) -> list[str]:
    """{'values': ['bad key']} -> ['values: bad key']; nested maps name the outer field once."""
    if isinstance(messages, dict):
        lines = []
        for key, inner in messages.items():
            if field is None:
                name = key
            elif key in (field, "detail"):
                name = field
            else:
                name = f"{field}.{key}"
            lines += field_errors(name, inner)
        return lines
    if isinstance(messages, list):
        return [line for message in messages for line in field_errors(field, message)]
    plain = field in (None, "detail", "non_field_errors")
    return [str(messages) if plain else f"{field}: {messages}"]


def error_reason(response: requests.Response) -> str:
    """The server's reason: `detail`, or field errors as 'field: message' lines."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        short = text if text and len(text) < 300 and "<" not in text else ""
        return f"{response.status_code} {response.reason}" + (f": {short}" if short else "")
    if isinstance(body, dict):
        lines = field_errors(None, body)
        if lines:
            return "\n".join(lines)
    if isinstance(body, (str, list)) and body:
        return body if isinstance(body, str) else "\n".join(map(str, body))
    return f"{response.status_code} {response.reason}"


class Client:
    """A session with the controller in the settings (or one given, for login and register)."""

    def __init__(self, controller: str, token: str | None = None, ssl_verify: bool = True):
        self.controller = controller
        self.token = token
        self.session = requests.Session()
        self.session.verify = ssl_verify
        self.session.headers.update({"User-Agent": f"deis-cli/{__version__}", "X-Deis-Version": "1"})
        if token:
            self.session.headers["Authorization"] = f"token {token}"
        self.warned = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "Client":
        if not settings.logged_in:
            raise DeisError(NOT_LOGGED_IN)
        return cls(settings["controller"], settings["token"], settings.get("ssl_verify") is not False)

    def request(self, method: str, path: str, ok: tuple = (200, 201, 204), **kwargs) -> requests.Response:
        try:
            url = path if path.startswith("http") else urljoin(self.controller + "/", path.lstrip("/"))
            response = self.session.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise DeisError(f"cannot verify the TLS certificate of {self.controller}: {connection_reason(exc)}. "
                            "If you trust it, log in with --ssl-verify=false.")
        except requests.exceptions.Timeout:
            raise DeisError(f"the controller at {self.controller} did not answer in time.")
        except requests.exceptions.ConnectionError as exc:
            raise DeisError(f"cannot reach the controller at {self.controller}: {connection_reason(exc)}")
        except (requests.exceptions.RequestException, ValueError) as exc:
            raise DeisError(f"cannot talk to the controller at {self.controller}: {exc}")
        self.check_api_version(response)
        if response.status_code in ok:
            return response
        reason = error_reason(response)
        if response.status_code == 401 and self.token:
            reason += f"\nLog in again with `deis login {self.controller}`."
        raise DeisError(reason)

    def check_api_version(self, response: requests.Response) -> None:
        server = response.headers.get("DEIS_API_VERSION")
        if server and server != API_VERSION and not self.warned:
            self.warned = True
            click.echo(f" !    WARNING: client and server API versions do not match "
                       f"(client {API_VERSION}, server {server}). Please consider upgrading.", err=True)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: dict | None = None, **kwargs) -> requests.Response:
        return self.request("POST", path, json=body if body is not None else {}, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def results(self, path: str) -> list[dict]:
        """Every item of a paginated list, following `next`."""
        items, url = [], path
        while url:
            page = self.get(url).json()
            items.extend(page.get("results", []))
            url = page.get("next")
        return items
