"""Release making: each build and each config change gives the app release N+1, never a gap or a twin.

Every function here runs in one transaction holding the app's lock, so concurrent changes queue
up and each sees the one before it.
"""

import fcntl
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction

from deis.scheduler import ReleaseSpec

from .models import App, Build, Config, Release, lock_app


def release_spec(release: Release) -> ReleaseSpec:
    """What the scheduler needs to run `release`, as plain data."""
    build, config = release.build, release.config
    return ReleaseSpec(
        app=release.app.id, version=release.version, image=build.image if build else "",
        procfile=dict(build.procfile) if build else {}, env=dict(config.values),
        memory=dict(config.memory), cpu=dict(config.cpu), tags=dict(config.tags),
        sha=build.sha if build else "", buildpack=bool(build and build.sha and not build.dockerfile))


@contextmanager
def write_transaction():
    """A transaction for release-making. On SQLite, writers first queue on a file lock: SQLite's
    own busy handler polls with sleeps of up to 100 ms, which made write p99 reach seconds."""
    if connection.vendor != "sqlite":
        with transaction.atomic():
            yield
        return
    with open(settings.DATA_DIR / "write.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with transaction.atomic():
            yield


def initial_state(build) -> str:
    """A release without a build runs nothing: it is deployed as soon as it is made."""
    return "pending" if build is not None else "deployed"


def create_app(app_id: str, owner) -> App:
    with write_transaction():
        app = App.objects.create(id=app_id, owner=owner)
        config = Config.objects.create(app=app, owner=owner)
        Release.objects.create(app=app, owner=owner, version=1, config=config, state="deployed",
                               summary=f"{owner.username} created initial release")  # runs nothing
    return app


def _next_version(app: App) -> int:
    latest = app.latest_release()
    return latest.version + 1 if latest else 1


def _diff(new: dict, old: dict) -> tuple[list, list, list]:
    added = [k for k in new if k not in old]
    changed = [k for k in new if k in old and new[k] != old[k]]
    deleted = [k for k in old if k not in new]
    return added, changed, deleted


def config_summary(user, new: Config, old: Config | None) -> str:
    """`alice added FOO, changed BAR` / `alice changed limits for memory`, as Deis v1 wrote them."""
    old_values = old.values if old else {}
    parts = []
    changed_fields = [name for name in ("memory", "cpu", "tags")
                      if getattr(new, name) != (getattr(old, name) if old else {})]
    limits = [name for name in changed_fields if name != "tags"]
    if limits:
        parts.append("changed limits for " + ", ".join(limits))
    if "tags" in changed_fields:
        parts.append("changed tags")
    added, changed, deleted = _diff(new.values, old_values)
    for verb, keys in (("added", added), ("changed", changed), ("deleted", deleted)):
        if keys:
            parts.append(f"{verb} {', '.join(keys)}")
    return f"{user.username} {', '.join(parts) if parts else 'changed nothing'}"


def change_config(app: App, user, changes: dict) -> tuple[Config, Release]:
    """Merge `changes` ({"values": {...}, "memory": ...}; None unsets) into a new config and release."""
    with write_transaction():
        app = lock_app(app)
        current = app.current_release()
        old = current.config if current else None
        merged = {}
        for field in ("values", "memory", "cpu", "tags"):
            value = dict(getattr(old, field)) if old else {}
            for key, item in changes.get(field, {}).items():
                if item is None:
                    value.pop(key, None)
                else:
                    value[key] = item
            merged[field] = value
        config = Config.objects.create(app=app, owner=user, **merged)
        build = current.build if current else None
        release = Release.objects.create(
            app=app, owner=user, version=_next_version(app), config=config, build=build,
            state=initial_state(build), summary=config_summary(user, config, old))
    return config, release


def new_build(app: App, user, image: str, sha: str = "", procfile: dict | None = None,
              dockerfile: str = "", log: str = "") -> tuple[Build, Release]:
    with write_transaction():
        app = lock_app(app)
        build = Build.objects.create(app=app, owner=user, image=image, sha=sha,
                                     procfile=procfile or {}, dockerfile=dockerfile, log=log)
        current = app.current_release()
        config = current.config if current else Config.objects.create(app=app, owner=user)
        what = sha[:7] if sha else image
        release = Release.objects.create(app=app, owner=user, version=_next_version(app),
                                         config=config, build=build,
                                         summary=f"{user.username} deployed {what}")
        if not app.structure:  # the first build: web=1 (or cmd=1), as the deployer will run it
            app.structure = default_structure(release_spec(release))
            app.save(update_fields=["structure", "updated"])
    return build, release


def default_structure(spec: ReleaseSpec) -> dict:
    """After the first deploy: web=1 when there is a web type (cmd=1 for an image's CMD), others 0."""
    types = spec.process_types()
    first = "web" if "web" in types else ("cmd" if types == ["cmd"] else None)
    return {t: int(t == first) for t in types}


class RollbackError(ValueError):
    pass


def rollback(app: App, user, version: int | None = None) -> Release:
    """A new release copying the build and config of `version` (default: the one before current)."""
    with write_transaction():
        app = lock_app(app)
        current = app.current_release()
        if version is None:
            if current is None or current.version <= 1:
                raise RollbackError("There is no earlier release to roll back to.")
            target = (app.releases.filter(failed=False, version__lt=current.version)
                      .order_by("-version").first())
            if target is None:
                raise RollbackError("There is no earlier release to roll back to.")
        else:
            target = app.releases.filter(version=version).first()
            if target is None:
                raise RollbackError(f"Release v{version} does not exist.")
            if target.failed:
                raise RollbackError(f"Release v{version} failed to deploy; choose a release that ran.")
        if target.build is None and current is not None and current.build is not None:
            raise RollbackError(f"Release v{target.version} has no build to run; choose a later release.")
        release = Release.objects.create(app=app, owner=user, version=_next_version(app),
                                         config=target.config, build=target.build,
                                         state=initial_state(target.build),
                                         summary=f"{user.username} rolled back to v{target.version}")
    return release
