"""Follow every container of the platform and keep its lines in the LogStore (as logspout did for
Deis v1): lines survive the container, its restarts and its removal. Crashes become platform lines.

Positions (the newest timestamp kept per container) are saved, so a restarted collector neither
repeats nor loses lines of containers that lived on meanwhile.

Every line is stored with its container's creation time: the store drops those of containers older
than the app's destruction (LogStore.remove), so a destroyed app's late output never re-creates its
log for a new app of the same name.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from deis.scheduler.docker import docker_timestamp

from .store import LogStore, format_line, platform_line
from .streams import LogStreams

log = logging.getLogger("deis.logger")
EVENT_WINDOW = 5.0  # seconds each events request covers


def _created(attrs: dict) -> float:
    """When the engine created a container, from its inspection (epoch seconds; 0.0 if unknown:
    taken as old)."""
    try:
        return _since(str(attrs.get("Created") or "").rstrip("Z"))
    except (ValueError, AttributeError):
        return 0.0


def _since(key: str) -> float:
    """A sort key back to the epoch seconds Docker's `since` takes."""
    from datetime import UTC, datetime

    whole, _, frac = key.partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp() + float("0." + (frac or "0"))


class _Lines:
    """One followed container's output cut into lines (a line may arrive in pieces)."""

    def __init__(self, collector: "Collector", container_id: str, app: str, tag: str):
        self.collector, self.container_id, self.app, self.tag = collector, container_id, app, tag
        self.pending = b""

    def add(self, data: bytes) -> None:
        self.pending += data
        *complete, self.pending = self.pending.split(b"\n")
        if complete:
            self.collector._keep(self.container_id, self.app, self.tag, complete)

    def end(self, error: Exception | None) -> None:
        try:
            if self.pending:
                self.collector._keep(self.container_id, self.app, self.tag, [self.pending])
            if error is not None and getattr(error, "status", 0) != 404:
                log.warning("following %s ended: %s", self.container_id[:12], error)
        finally:
            self.collector._unfollow(self.container_id)


class Collector:
    def __init__(self, store: LogStore, namespace: str = "deis", client=None, positions: Path | None = None):
        self.store = store
        self.namespace = namespace
        self._client = client
        self.positions_path = positions or store.root / f".positions-{namespace}.json"
        self.positions: dict[str, str] = self._load_positions()
        self.following: set[str] = set()
        self.stopping: set[str] = set()   # containers the platform itself is stopping
        self.oom: set[str] = set()
        self.born: dict[str, float] = {}  # container id -> its creation time (see _created)
        self.guard = threading.Lock()
        self.stop_event = threading.Event()
        self._streams: LogStreams | None = None

    @property
    def client(self):
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=60)
        return self._client

    def label(self, key: str) -> str:
        return f"{self.namespace}.{key}"

    # -- positions --------------------------------------------------------------------------------

    def _load_positions(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.positions_path.read_text()))
        except (OSError, ValueError):
            return {}

    def save_positions(self) -> None:
        with self.guard:
            data = json.dumps(self.positions)
        self.positions_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.positions_path.with_suffix(".tmp")
        tmp.write_text(data)
        os.replace(tmp, self.positions_path)

    # -- following ------------------------------------------------------------------------------

    def _source(self, labels: dict) -> tuple[str, str] | None:
        """(app, type.num) of a process; None for what is not followed: one-offs, whose output the
        controller logs itself (they may be gone before a follower could attach)."""
        app = labels.get(self.label("app"))
        if not app or labels.get(self.label("oneoff")) == "1":
            return None
        return app, f"{labels.get(self.label('type'), '?')}.{labels.get(self.label('num'), '?')}"

    @property
    def streams(self) -> LogStreams:
        """The log streams, all on one thread (streams.py), over the engine's unix socket."""
        if self._streams is None:
            adapter = self.client.api.get_adapter(self.client.api.base_url)
            path = getattr(adapter, "socket_path", None)
            if not path:
                raise RuntimeError(f"the logger follows an engine on a unix socket, not {self.client.api.base_url}")
            self._streams = LogStreams(path, self.client.api.api_version)
            threading.Thread(target=self._streams.run, daemon=True, name="streams").start()
        return self._streams

    def follow(self, container_id: str) -> None:
        """Follow one container's output, unless it is followed already."""
        import docker.errors

        with self.guard:
            if container_id in self.following:
                return
            self.following.add(container_id)
        try:
            # Only the labels, the creation time and the TTY flag are kept of the inspection.
            attrs = self.client.api.inspect_container(container_id)
            config = attrs.get("Config") or {}
            source, tty, born = self._source(config.get("Labels") or {}), bool(config.get("Tty")), _created(attrs)
            del attrs, config
            if source is None:  # a one-off: the controller keeps its output itself
                self._unfollow(container_id)
                return
            with self.guard:
                self.born[container_id] = born
            since = self.positions.get(container_id)
            lines = _Lines(self, container_id, *source)
            self.streams.follow(container_id, lines.add, lines.end, since=_since(since) if since else None, tty=tty)
        except docker.errors.NotFound:
            self._unfollow(container_id)
        except Exception as exc:  # noqa: BLE001 - one container's trouble must not stop the others
            log.warning("following %s failed: %s", container_id[:12], exc)
            self._unfollow(container_id)

    def _unfollow(self, container_id: str) -> None:
        with self.guard:
            self.following.discard(container_id)

    def _keep(self, container_id: str, app: str, tag: str, raw_lines: list[bytes]) -> None:
        last = self.positions.get(container_id, "")
        lines = []
        for raw in raw_lines:
            text = raw.decode("utf-8", "replace").rstrip("\r")
            stamp, _, message = text.partition(" ")
            try:
                key, iso = docker_timestamp(stamp)
            except ValueError:
                continue
            if key <= last:  # `since` has whole-second precision in places: skip what was kept
                continue
            last = key
            lines.append(format_line(app, tag, message, iso))
        if lines:
            self.store.append(app, lines, born=self._born(container_id))
            with self.guard:
                self.positions[container_id] = last

    def _born(self, container_id: str) -> float:
        with self.guard:
            born = self.born.get(container_id)
        if born is None:
            import docker.errors

            try:
                born = _created(self.client.api.inspect_container(container_id))
            except docker.errors.NotFound:
                born = 0.0  # gone before it was seen: its app's tombstone, if any, decides
            with self.guard:
                self.born[container_id] = born
        return born

    # -- events ---------------------------------------------------------------------------------

    def on_event(self, event: dict) -> None:
        action = (event.get("Action") or event.get("status") or "").split(":")[0]
        actor = event.get("Actor") or {}
        container_id = actor.get("ID") or event.get("id") or ""
        attrs = actor.get("Attributes") or {}
        if action == "start":
            self.follow(container_id)
        elif action in ("kill", "stop"):
            self.stopping.add(container_id)
        elif action == "oom":
            self.oom.add(container_id)
        elif action == "die":
            source = self._source(attrs)
            expected = container_id in self.stopping
            self.stopping.discard(container_id)
            oom = container_id in self.oom
            self.oom.discard(container_id)
            if source is None or attrs.get(self.label("oneoff")) == "1" or (expected and not oom):
                return
            app, tag = source
            release = attrs.get(self.label("release"), "")
            reason = "ran out of memory" if oom else f"exited with code {attrs.get('exitCode', '?')}"
            self.store.append(app, [platform_line(f"{tag} ({release}) crashed: {reason}", "scheduler")],
                              born=self._born(container_id))
        elif action == "destroy":
            with self.guard:
                self.positions.pop(container_id, None)
                self.born.pop(container_id, None)

    def follow_all(self) -> None:
        """Follow every container of the namespace; forget positions of those gone. One summary
        listing: the SDK's full listing inspects each container (501 calls at 500 apps, every
        window), which kept the logger and the engine busy with nothing to log."""
        filters = {"label": [f"{self.label('managed')}=1"]}
        alive = {summary["Id"] for summary in self.client.api.containers(all=True, filters=filters)}
        for container_id in sorted(alive):
            self.follow(container_id)
        with self.guard:
            for gone in set(self.positions) - alive:
                del self.positions[gone]

    def run(self) -> None:
        """Follow everything until stop(); survives the engine going away and coming back."""
        threading.Thread(target=self._save_loop, daemon=True, name="positions").start()
        backoff, since = 0.5, time.time()
        while not self.stop_event.is_set():
            try:
                self.follow_all()
                # Events in windows of a few seconds, each from where the last one ended: a stream
                # that hangs (an engine restarting) is left behind at the end of its window, and
                # the containers are listed again between windows in case an event was missed.
                until = time.time() + EVENT_WINDOW
                events = self.client.events(decode=True, since=since, until=until, filters={
                    "type": "container", "label": [f"{self.label('managed')}=1"]})
                for event in events:
                    if self.stop_event.is_set():
                        break
                    self.on_event(event)
                since, backoff = until, 0.5
            except Exception as exc:  # noqa: BLE001 - the engine restarts; so do we
                log.warning("docker events ended: %s; retrying in %.1f s", exc, backoff)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 5)

    def _save_loop(self) -> None:
        while not self.stop_event.wait(2):
            try:
                self.save_positions()
            except OSError as exc:
                log.warning("saving positions failed: %s", exc)

    def stop(self) -> None:
        self.stop_event.set()
        if self._streams is not None:
            self._streams.stop()
        self.save_positions()
