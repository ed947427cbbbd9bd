"""The builder's side of the controller's builder hooks (`/v1/hooks/*`, `X-Deis-Builder-Auth`).

Plain HTTP so the builder and the controller can run on different hosts; every failure becomes a
`HookError` whose message is the controller's own `detail`, ready to show to the person pushing.
"""

from __future__ import annotations

import os
from pathlib import Path

import requests

from deis.builder import BuildError

# How long a push waits for its release to be rolled out (health-checked) before it gives up.
BUILD_HOOK_TIMEOUT = float(os.environ.get("DEIS_BUILD_HOOK_TIMEOUT", "900"))


class HookError(BuildError):
    """The controller refused a hook or could not be reached; `status` is the HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def _detail(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text.strip()[:500] or answer.reason
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return " ".join(map(str, detail)) if isinstance(detail, list) else str(detail)
    return str(body)[:500]


class Hooks:
    """A client of the builder hooks of one controller."""

    def __init__(self, url: str, builder_key: str):
        self.url, self.key = url.rstrip("/"), builder_key
        self.session = requests.Session()
        self.session.headers["X-Deis-Builder-Auth"] = builder_key

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Hooks:
        """DEIS_CONTROLLER_URL (default: this host, port DEIS_CONTROLLER_PORT or 8000) and
        DEIS_BUILDER_KEY, else the key the controller generated in its data directory."""
        port = os.environ.get("DEIS_CONTROLLER_PORT", "8000")
        url = os.environ.get("DEIS_CONTROLLER_URL") or f"http://127.0.0.1:{port}"
        key = os.environ.get("DEIS_BUILDER_KEY", "").strip()
        if not key and data_dir is not None:
            try:
                key = (Path(data_dir) / "builder_key").read_text().strip()
            except OSError as exc:
                raise HookError(f"No builder key: set DEIS_BUILDER_KEY or DEIS_DATA_DIR ({exc}).") from exc
        if not key:
            raise HookError("No builder key: set DEIS_BUILDER_KEY or DEIS_DATA_DIR.")
        return cls(url, key)

    def _call(self, method: str, path: str, json: dict | None = None, timeout: float = 30) -> dict:
        try:
            answer = self.session.request(method, f"{self.url}/v1/hooks/{path}", json=json,
                                          timeout=(10, timeout))
        except requests.RequestException as exc:
            raise HookError(f"The controller at {self.url} could not be reached: {exc}") from exc
        if answer.status_code >= 400:
            raise HookError(_detail(answer), answer.status_code)
        return answer.json() if answer.content else {}

    def key_owner(self, fingerprint: str) -> dict | None:
        """{username, fingerprint, id} of the key with this MD5 fingerprint, None if nobody has it."""
        try:
            return self._call("GET", f"key/{fingerprint}")
        except HookError as exc:
            if exc.status == 404:
                return None
            raise

    def config(self, user: str, app: str) -> dict:
        """The app's config; also the access check (403 no access, 404 unknown user or app)."""
        return self._call("POST", "config", {"receive_user": user, "receive_repo": app})

    def push(self, user: str, app: str, sha: str, fingerprint: str, ssh_connection: str = "",
             ssh_original_command: str = "") -> dict:
        return self._call("POST", "push", {
            "receive_user": user, "receive_repo": app, "sha": sha, "fingerprint": fingerprint,
            "ssh_connection": ssh_connection[:255], "ssh_original_command": ssh_original_command[:255]})

    def build(self, user: str, app: str, sha: str, image: str, procfile: dict, dockerfile: str,
              log: str = "") -> dict:
        """Make the release and queue its rollout; {"release": {"version": N}, "rollout": generation,
        "domains": [...]} (`rollout` 0 or missing: the controller deployed it within the answer)."""
        return self._call("POST", "build", {
            "receive_user": user, "receive_repo": app, "sha": sha, "image": image,
            "procfile": procfile, "dockerfile": dockerfile, "log": log}, timeout=BUILD_HOOK_TIMEOUT)

    def rollout(self, user: str, app: str, version: int) -> dict:
        """{"rollout": {...steps, phase}, "release": {"version", "state", "failure"}}."""
        return self._call("POST", "rollout", {"receive_user": user, "receive_repo": app, "version": version})

    def build_failed(self, user: str, app: str, sha: str, log: str) -> dict:
        """Record a failed build and its log (`deis builds:info`); no release is made."""
        return self._call("POST", "build", {"receive_user": user, "receive_repo": app, "sha": sha,
                                            "failed": True, "log": log})
