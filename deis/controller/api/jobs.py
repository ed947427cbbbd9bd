"""One-offs (`deis run`) as jobs: the API queues them and answers at once; the deployer runs them
in one-off containers and keeps the newest JOB_OUTPUT_LIMIT bytes of their output in the database,
which clients read from an offset while the job runs.

Why not in the request: a one-off may run for half an hour, and the controller has a few request
workers for everyone. Only the v1 client still waits within its request (it expects the output in
the answer); at most WAITED_JOBS such requests wait at once, so they cannot take every worker.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django import db
from django.conf import settings
from django.db.models import Q

from deis.scheduler import SchedulerError, get_scheduler

from . import rollouts
from .models import App, Job
from .releases import release_spec, write_transaction

log = logging.getLogger("deis.jobs")

FLUSH_EVERY = 0.2  # s between writes of a running job's output
ACTIVE = ("pending", "running")


class JobLimit(Exception):
    """The user (or the platform's waiting v1 clients) has as many one-offs as allowed."""


def start(app: App, user, release, command: str, waited: bool = False) -> Job:
    """Queue `command` in a one-off of `release`; JobLimit when the user has JOBS_PER_USER active."""
    with write_transaction():
        active = Job.objects.filter(owner=user, state__in=ACTIVE).count()
        if active >= settings.JOBS_PER_USER:
            raise JobLimit(f"You have {active} one-off processes queued or running, the limit of this "
                           "platform; wait for one to finish and try again.")
        if waited and Job.objects.filter(waited=True, state__in=ACTIVE).count() >= settings.WAITED_JOBS:
            raise JobLimit("Too many one-off processes are being waited for at once by clients that keep "
                           "their request open; try again shortly, or use a current deis CLI, which does not.")
        job = Job.objects.create(owner=user, app=app, release=release.version, command=command, waited=waited)
    rollouts.wake(f"job:{job.uuid}")
    return job


def output_from(job: Job, offset: int) -> tuple[str, int]:
    """What the job printed from byte `offset` on (of all it ever printed), and the next offset.
    Output older than the newest JOB_OUTPUT_LIMIT bytes is gone: reading starts after it."""
    data = job.output.encode("utf-8", "replace")
    start_at = max(0, offset - job.output_dropped)
    return data[start_at:].decode("utf-8", "replace"), job.output_dropped + len(data)


def as_json(job: Job, offset: int = 0) -> dict:
    text, next_offset = output_from(job, offset)
    stamp = (lambda t: t.isoformat() if t else None)
    return {"uuid": str(job.uuid), "app": job.app_id and job.app.id, "owner": job.owner.username,
            "command": job.command, "release": f"v{job.release}", "state": job.state,
            "exit_code": job.exit_code, "output": text, "offset": next_offset,
            "created": stamp(job.created), "started": stamp(job.started), "finished": stamp(job.finished)}


def wait(job: Job, timeout: float) -> Job:
    """For the v1 client's request: the job once it has finished (or after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state not in ACTIVE:
            break
        time.sleep(0.1)
    return job


# -- the deployer's side -----------------------------------------------------------------------

class _Output:
    """A running job's output: the newest JOB_OUTPUT_LIMIT bytes, written to its row every
    FLUSH_EVERY s while it grows."""

    def __init__(self, job_id):
        self.job_id, self.limit = job_id, settings.JOB_OUTPUT_LIMIT
        self.data, self.dropped, self.dirty = bytearray(), 0, False
        self.lock = threading.Lock()

    def add(self, text: str) -> None:
        with self.lock:
            self.data += text.encode("utf-8", "replace")
            if len(self.data) > self.limit:
                cut = len(self.data) - self.limit
                del self.data[:cut]
                self.dropped += cut
            self.dirty = True

    def flush(self, **fields) -> None:
        with self.lock:
            if not self.dirty and not fields:
                return
            text, dropped, self.dirty = self.data.decode("utf-8", "ignore"), self.dropped, False
        with write_transaction():
            Job.objects.filter(pk=self.job_id).update(output=text, output_dropped=dropped, **fields)


class JobRunner:
    """Runs queued jobs, JOB_WORKERS at once: each claimed with one conditional UPDATE (so two
    deployers never run one job), its output streamed to its row, its end written back."""

    def __init__(self, owner: str, workers: int | None = None):
        self.owner = owner
        self.pool = ThreadPoolExecutor(max_workers=workers or settings.JOB_WORKERS, thread_name_prefix="job")
        self.running: set[str] = set()
        self.guard = threading.Lock()
        self.slots = threading.Semaphore(workers or settings.JOB_WORKERS)

    def orphans(self) -> int:
        """Jobs a dead deployer was running (its lease expired, or it was this host's): failed,
        with what they printed kept. Their containers are the engine's leftovers to remove."""
        host = self.owner.partition("/")[0]
        stale = Q(lease_expires__lt=rollouts.now()) | (Q(lease_owner__startswith=f"{host}/") & ~Q(lease_owner=self.owner))
        with write_transaction():
            return Job.objects.filter(state="running").filter(stale).update(
                state="failed", exit_code=None, finished=rollouts.now(), lease_owner="")

    def poll(self) -> None:
        """Start what is queued, as far as there are free workers."""
        for job_id in Job.objects.filter(state="pending").order_by("created").values_list("pk", flat=True)[:50]:
            if not self.slots.acquire(blocking=False):
                return
            if not self._claim(job_id):
                self.slots.release()
                continue
            self.pool.submit(self._run, job_id)

    def _claim(self, job_id) -> bool:
        expires = rollouts.now() + timedelta(seconds=rollouts.LEASE_SECONDS)
        with write_transaction():
            return bool(Job.objects.filter(pk=job_id, state="pending").update(
                state="running", lease_owner=self.owner, lease_expires=expires, started=rollouts.now()))

    def _run(self, job_id) -> None:
        output = _Output(job_id)
        stop = threading.Event()

        def keep_writing():
            try:
                while not stop.wait(FLUSH_EVERY):
                    output.flush(lease_expires=rollouts.now() + timedelta(seconds=rollouts.LEASE_SECONDS))
            finally:
                db.connection.close()

        writer = threading.Thread(target=keep_writing, name=f"job-output-{job_id}", daemon=True)
        try:
            job = Job.objects.select_related("app").get(pk=job_id)
            release = job.app.releases.filter(version=job.release).select_related("build", "config").first()
            writer.start()
            if release is None or release.build is None:
                output.add(f"{job.app.id} has no release v{job.release} with a build to run.\n")
                code = 1
            else:
                code, _ = get_scheduler().run(release_spec(release), job.command, output=output.add)
            stop.set()
            writer.join(timeout=5)
            output.flush(state="succeeded" if code == 0 else "failed", exit_code=code,
                         finished=rollouts.now(), lease_owner="")
            from . import runtime

            runtime.log_run(job.app.id, job.owner, job.command, code, output.data.decode("utf-8", "ignore"))
        except (SchedulerError, App.DoesNotExist, Job.DoesNotExist) as exc:
            stop.set()
            output.add(f"{exc}\n")
            output.flush(state="failed", finished=rollouts.now(), lease_owner="")
        except Exception as exc:  # noqa: BLE001 - a job ends, whatever happened
            log.exception("job %s", job_id)
            stop.set()
            output.add(f"The one-off could not be run: {type(exc).__name__}: {exc}\n")
            output.flush(state="failed", finished=rollouts.now(), lease_owner="")
        finally:
            stop.set()
            self.slots.release()
            db.connection.close()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
