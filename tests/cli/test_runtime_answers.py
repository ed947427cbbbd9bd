"""How logs and run handle the answers of a controller with a runtime (which this platform does not
have yet): a stand-in HTTP server gives the v1 answers, the real `deis` command reads them."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deis.cli.commands.apps import unseen

LINES = ["2026-11-27T10:00:00Z demo[web.1]: GET / 200", "2026-11-27T10:00:01Z demo[web.1]: GET /a 200",
         "2026-11-27T10:00:02Z demo[worker.1]: [job] done"]

PROCESSES = [{"type": "worker", "num": 1, "state": "crashed", "release": "v2",
              "last_exit": {"at": "2026-11-27T10:00:03.123456789Z", "reason": "oom", "exit_code": 137}},
             {"type": "web", "num": 2, "state": "starting", "release": "v3"},
             {"type": "web", "num": 1, "state": "up", "release": "v3"}]


JOB_OUTPUT = "Operations to perform:\n  Apply all migrations\nNo migrations to apply.\n"


def job(output: str, offset: int, state: str) -> dict:
    return {"uuid": "5f0c1b3e-0000-4000-8000-000000000001", "state": state, "output": output,
            "offset": offset + len(output), "exit_code": 3 if state == "failed" else None}


class StandIn(BaseHTTPRequestHandler):
    """Log polls see one more line each time, then a 503; run answers [exit code, output]; the app
`demo` has three processes."""

    polls = 0

    def answer(self, status, body=None, content_type="application/json"):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("DEIS_API_VERSION", "1.5")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/v1/apps/demo/jobs/"):  # the output grows by a line a read
            offset = int(self.path.partition("offset=")[2] or 0)
            done = offset >= len(JOB_OUTPUT) - len(JOB_OUTPUT.splitlines(True)[-1])
            return self.answer(200, job(JOB_OUTPUT[offset:].splitlines(True)[0] if offset < len(JOB_OUTPUT) else "",
                                        offset, "failed" if done else "running"))
        if self.path.startswith("/v1/apps/demo/containers"):
            return self.answer(200, {"count": len(PROCESSES), "next": None, "previous": None, "results": PROCESSES})
        if self.path.startswith("/v1/apps/quiet/logs"):
            return self.answer(204)
        StandIn.polls += 1
        if StandIn.polls > 2:
            return self.answer(503, {"detail": "The runtime went away."})
        shown = LINES[:StandIn.polls + 1]
        self.answer(200, "".join(line + "\n" for line in shown), "text/plain")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path.endswith("/scale"):
            return self.answer(204)
        if self.path.endswith("/restart"):
            return self.answer(200, PROCESSES)
        if self.path == "/v1/apps/demo/jobs":
            return self.answer(201, job("", 0, "pending"))
        if self.path.endswith("/jobs"):  # an older controller: no jobs, the run is answered in full
            return self.answer(404, {"detail": "Not found."})
        self.answer(200, [3, f"ran {body['command']}\n"])

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in(deis):
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    StandIn.polls = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    (deis.home / ".deis").mkdir()
    (deis.home / ".deis" / "client.json").write_text(json.dumps(
        {"controller": url, "username": "alice", "token": "t" * 40, "ssl_verify": True}))
    yield url
    server.shutdown()
    server.server_close()


def test_logs_prints_the_lines(deis, stand_in):
    assert deis.ok("logs", "-a", "demo", "-n", "2").out.splitlines() == LINES[:2]
    assert deis.ok("logs", "-a", "quiet").out == ""


def test_logs_follow_prints_new_lines_until_an_error(deis, stand_in):
    result = deis.fails("logs", "-f", "-a", "demo")
    assert result.out.splitlines() == LINES
    assert "Error: The runtime went away." in result.err


def test_run_follows_the_jobs_output_and_exits_with_its_code(deis, stand_in):
    result = deis("run", "-a", "demo", "python", "manage.py", "migrate")
    assert result.code == 3 and result.out == JOB_OUTPUT


def test_run_on_a_controller_without_jobs_prints_the_answer_and_exits_with_its_code(deis, stand_in):
    result = deis("run", "-a", "legacy", "python", "manage.py", "migrate")
    assert result.code == 3 and result.out == "ran python manage.py migrate\n"


PS = """=== demo Processes
--- web:
web.1 up (v3)
web.2 starting (v3)

--- worker:
worker.1 crashed (v2): ran out of memory at 2026-11-27 10:00:03 UTC
"""


def test_ps_lists_processes_by_type(deis, stand_in):
    assert deis.ok("ps", "-a", "demo").out == PS


def test_scale_and_restart_then_list(deis, stand_in):
    scaled = deis.ok("scale", "web=2", "worker=1", "-a", "demo").out
    assert scaled == "Scaling processes... but first, coffee!  done in 0s\n\n" + PS
    restarted = deis.ok("ps:restart", "web", "-a", "demo", DEIS_DRINK_OF_CHOICE="tea").out
    assert restarted.startswith("Restarting processes... but first, tea!  done in 0s\n")


def test_follow_prints_only_new_lines():
    assert unseen([], ["a", "b"]) == ["a", "b"]
    assert unseen(["a", "b"], ["a", "b"]) == []
    assert unseen(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert unseen(["a", "b"], ["x", "y"]) == ["x", "y"]
