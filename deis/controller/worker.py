"""The controller's gunicorn worker: gthread, plus a `/healthz` that answers while every request
thread of the worker is busy (`--worker-class deis.controller.worker.HealthWorker`).

Why: the controller runs gthread workers with one thread and `worker_connections` 1 (see
`deis.platform.Controller`): a busy worker stops accepting, so waiting connections queue in the
kernel for whichever worker frees first, which gave the shortest tail for the CPU-bound API. The
price was that during a deploy storm (every worker waiting on a deploy) a `GET /healthz` queued
too, and `make up` took the slow answer for a dead controller and restarted it.

What this worker changes, and only once all of its threads have been busy for `TRIAGE_AFTER`
(0.25 s: an ordinary API request takes milliseconds, so under ordinary load it is ThreadWorker;
a deploy takes seconds):

- It accepts again. What it accepts then is not given to a thread: the main loop (the one that
  already polls the listeners) peeks at the request line.
- `GET /healthz` (or HEAD) is answered by the main loop itself, at once, `200 OK` with the header
  `X-Deis-Workers: busy`: the worker is alive and serving, it only has no thread free.
- Any other request is handed on, unread (it was only peeked at), over a unix socket pair the
  arbiter makes before it forks its workers and that every worker shares (`SCM_RIGHTS`). A worker
  with a free thread polls that socket as it polls the listeners (when both are ready, the queue
  goes first). So an ordinary request never waits for the worker that happened to accept it: it
  waits, as before, for whichever worker frees first, in the socket pair instead of the listen
  backlog. A free worker accepts directly, as ThreadWorker does, at the same CPU cost a request
  (measured: ~0.7 ms either way); a request that a busy worker's accept won is one `sendmsg` later
  on a free one (tens of microseconds).

Alternatives left out: more threads or connections per worker (ordinary requests would pile onto
busy workers, the tail we avoided); a health port of its own (callers check the controller's URL);
answering health from the arbiter (it would have to accept, hence hand on, all the same).
"""

from __future__ import annotations

import errno
import json
import selectors
import socket
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

from deis import API_VERSION, __version__

HEAD_LIMIT = 8192  # bytes of a health request's head; a longer one is dropped
TRIAGE_AFTER = 0.25  # s a worker's threads are all busy before it accepts again, to triage
TRIAGE_WAIT = 1.0  # s a busy worker waits for the request line of what it accepted, then hands it on
TRIAGE_LIMIT = 64  # connections a busy worker holds at once; past that it stops accepting
HEALTH_LINES = (b"GET /healthz ", b"GET /healthz?", b"HEAD /healthz ", b"HEAD /healthz?")


def is_health_request(head: bytes) -> bool:
    return head.startswith(HEALTH_LINES)


def health_answer(head_only: bool) -> bytes:
    """What the view answers (`OK`, text/plain, the version headers every answer carries)."""
    body = b"" if head_only else b"OK"
    lines = ["HTTP/1.1 200 OK", f"Date: {formatdate(usegmt=True)}", "Content-Type: text/plain",
             "Content-Length: 2", "Connection: close", f"DEIS_API_VERSION: {API_VERSION}",
             f"X_DEIS_API_VERSION: {API_VERSION}", f"DEIS_PLATFORM_VERSION: {__version__}",
             "X-Deis-Workers: busy"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(eq=False)
class Accepted:
    """A connection a busy worker accepted: being triaged, or waiting for room in the hand-off queue."""

    sock: socket.socket
    client: object
    server: object
    deadline: float
    head: bytes | None = None  # the health request's head read so far; None until it is one
    polled: bool = False


class HealthWorker(ThreadWorker):
    # (send end, receive end) of a SOCK_SEQPACKET pair made by the arbiter, shared by all its workers
    handoff: tuple[socket.socket, socket.socket] | None = None

    @classmethod
    def check_config(cls, cfg, log):
        """Runs in the arbiter before it forks a worker (and again on a reload, which keeps the pair)."""
        super().check_config(cfg, log)
        if cls.handoff is None:
            pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            for end in pair:
                end.setblocking(False)
            cls.handoff = pair

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted: deque[Accepted] = deque()  # being triaged
        self.stalled: deque[Accepted] = deque()  # to hand on when the queue has room again
        self.listening = self.taking = False
        self.busy_since: float | None = None  # when the last free thread was taken

    # -- what the main loop polls -----------------------------------------------------------------

    def set_accept_enabled(self, enabled):
        """ThreadWorker polls the listeners only while a thread is free; this worker polls them also
        once it has been busy for TRIAGE_AFTER (to triage), and the hand-off queue while a thread is free."""
        self._accepting = enabled
        self.busy_since = None if enabled else time.monotonic()
        if not self.alive:
            self.let_go()
        self.poll()

    def triaging(self) -> bool:
        """Busy for long enough to accept again, with room for what it accepts."""
        return (self.handoff is not None and self.busy_since is not None and not self.stalled
                and len(self.accepted) < TRIAGE_LIMIT and time.monotonic() - self.busy_since >= TRIAGE_AFTER)

    def poll(self):
        listen = self.alive and (self._accepting or self.triaging())
        take = self.alive and self._accepting and self.handoff is not None
        if listen != self.listening:
            for listener in self.sockets:
                if listen:
                    listener.setblocking(False)
                    self.poller.register(listener, selectors.EVENT_READ, self.on_listener)
                else:
                    self.poller.unregister(listener)
            self.listening = listen
        if take != self.taking:
            if take:
                self.poller.register(self.handoff[1], selectors.EVENT_READ, self.take_handed_on)
            else:
                self.poller.unregister(self.handoff[1])
            self.taking = take

    def wait_for_and_dispatch_events(self, timeout):
        """ThreadWorker's, but it wakes up when it is time to start triaging (not at the loop's next
        second), and serves what waits in the hand-off queue before what waits in the backlog (it
        is older)."""
        if self.alive and self.busy_since is not None and not self.listening and self.handoff is not None:
            due = self.busy_since + TRIAGE_AFTER - time.monotonic()
            if due > 0:
                timeout = min(timeout, due)
        try:
            events = self.poller.select(timeout)
            if len(events) > 1:
                events.sort(key=lambda event: event[0].data != self.take_handed_on)
            for key, _ in events:
                key.data(key.fileobj)
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise

    def free(self) -> bool:
        return self.nr_conns < self.worker_connections

    def is_parent_alive(self):
        if super().is_parent_alive():
            return True
        self.alive = False  # so the loop's last set_accept_enabled(False) stops accepting, as on SIGTERM
        return False

    def on_listener(self, listener):
        if self.free():
            self.accept(listener)  # ThreadWorker's: straight to a request thread
        else:
            self.triage(listener)

    def take_handed_on(self, _handoff=None) -> bool:
        """Serve the oldest connection a busy worker handed on, if this worker has a free thread."""
        if self.handoff is None or not self.free():
            return False
        try:
            note, fds, _flags, _address = socket.recv_fds(self.handoff[1], 1024, 1)
        except (BlockingIOError, InterruptedError):
            return False  # another free worker took it
        if not fds:
            return False
        sock = socket.socket(fileno=fds[0])
        try:
            where = json.loads(note)
        except ValueError:
            sock.close()
            return True
        self.serve(sock, *(tuple(a) if isinstance(a, list) else a for a in (where["client"], where["server"])))
        return True

    def serve(self, sock, client, server):
        self.nr_conns += 1
        sock.setblocking(True)
        self.enqueue_req(TConn(self.cfg, sock, client, server))

    # -- a busy worker's connections --------------------------------------------------------------

    def triage(self, listener):
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        sock.setblocking(False)
        entry = Accepted(sock, client, listener.getsockname(), time.monotonic() + TRIAGE_WAIT)
        self.accepted.append(entry)
        self.poller.register(sock, selectors.EVENT_READ, partial(self.on_readable, entry))
        entry.polled = True
        self.poll()

    def on_readable(self, entry: Accepted, _sock):
        try:
            if entry.head is None:
                peeked = entry.sock.recv(len(HEALTH_LINES[0]) + 1, socket.MSG_PEEK)
                if peeked and not is_health_request(peeked):
                    return self.hand_on(entry)  # unread: the thread that takes it parses it whole
                entry.head = b""
            data = entry.sock.recv(HEAD_LIMIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(entry)
        if not data or len(entry.head) + len(data) > HEAD_LIMIT:
            return self.close(entry)  # gone, or not a health request after all
        entry.head += data
        if b"\r\n\r\n" in entry.head:
            self.answer(entry)

    def answer(self, entry: Accepted):
        try:
            entry.sock.send(health_answer(entry.head.startswith(b"HEAD")))
        except OSError:
            pass
        self.close(entry)

    def hand_on(self, entry: Accepted) -> bool:
        """Into the shared queue. While it is full the entry waits here (served here if a thread of
        this worker frees first) and the worker stops accepting. False when it waits."""
        self.forget(entry)
        note = json.dumps({"client": entry.client, "server": entry.server}).encode()
        try:
            socket.send_fds(self.handoff[0], [note], [entry.sock.fileno()])
        except (BlockingIOError, InterruptedError):
            if not self.free():
                self.stalled.append(entry)
                return False
            self.serve(entry.sock, entry.client, entry.server)
            return True
        except OSError:
            pass
        entry.sock.close()
        return True

    def forget(self, entry: Accepted):
        if entry.polled:
            self.poller.unregister(entry.sock)
            entry.polled = False
        for queue in (self.accepted, self.stalled):
            if entry in queue:
                queue.remove(entry)

    def close(self, entry: Accepted):
        self.forget(entry)
        entry.sock.close()

    def murder_pending(self):
        """Also, once per turn of the main loop: hand on what sent no request line in time, and retry
        what waits for room in the queue."""
        super().murder_pending()
        now = time.monotonic()
        while self.stalled and self.hand_on(self.stalled[0]):
            pass
        for entry in [entry for entry in self.accepted if entry.deadline <= now]:
            if entry.head is not None:
                self.close(entry)
            else:
                self.hand_on(entry)
        self.poll()

    def let_go(self):
        """Stopping: answer health requests under way, hand on the rest to the workers that stay."""
        for entry in [*self.accepted, *self.stalled]:
            if entry.head is not None:
                self.answer(entry)
            elif not self.hand_on(entry):
                self.close(entry)  # no room: closing it is all that is left
