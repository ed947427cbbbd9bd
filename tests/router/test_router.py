"""The router through a real nginx, in front of real upstream servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from deis.router import Certificate, Route, Router, RouterError
from tests.pki import other_key_pem, private_key, self_signed
from tests.router.conftest import get, get_json, https_get


def route(app, upstreams=(), hosts=None, certs=()):
    return Route(app, hosts or [f"{app}.localhost"], [u.address for u in upstreams], list(certs))


# ------------------------------------------------------------------ lifecycle

def test_start_is_idempotent_and_stop_stops(make_router):
    router = make_router(start=False)
    assert not router.running()
    router.start()
    pid = router.master_pid()
    assert pid and router.running()
    assert router.start() is None  # already running: nothing done
    assert router.master_pid() == pid
    assert Router(router.root.parent, http_port=router.http_port, https_port=router.https_port,
                  listen_address="127.0.0.1").running()  # another handle on the same data dir sees it
    router.stop()
    assert not router.running()
    router.stop()  # stopping a stopped router is fine


def test_restart_serves_the_last_good_routes(make_router, make_upstream):
    router = make_router()
    up = make_upstream("a")
    router.apply([route("web", [up])])
    router.stop()
    router.start()
    assert get_json(router, "web.localhost")["upstream"] == "a"


def test_apply_before_start_is_served_once_started(make_router, make_upstream):
    router = make_router(start=False)
    result = router.apply([route("web", [make_upstream("a")])])
    assert result.ok and not result.reloaded and not router.running()
    router.start()
    assert get_json(router, "web.localhost")["upstream"] == "a"


def test_a_taken_port_is_reported(make_router):
    first = make_router()
    second = make_router(start=False)
    second.http_port = first.http_port
    with pytest.raises(RouterError, match="did not start"):
        second.start()
    assert not second.running() and first.running()


# ------------------------------------------------------------------ routing

def test_routes_by_host_and_custom_domain(router, make_upstream):
    a, b = make_upstream("a"), make_upstream("b")
    result = router.apply([route("alpha", [a], hosts=["alpha.localhost", "www.alpha.example"]), route("beta", [b])])
    assert result.ok and result.applied == ["alpha", "beta"] and result.reloaded
    assert get_json(router, "alpha.localhost")["upstream"] == "a"
    assert get_json(router, "beta.localhost")["upstream"] == "b"
    assert get_json(router, "www.alpha.example")["upstream"] == "a"
    assert get_json(router, "BETA.localhost:80")["upstream"] == "b"  # case and port do not matter
    info = get_json(router, "alpha.localhost", "/some/path?q=1")
    assert info["path"] == "/some/path?q=1" and info["headers"]["host"] == "alpha.localhost"


def test_unknown_host_gets_a_plain_404(router, make_upstream):
    router.apply([route("alpha", [make_upstream("a")])])
    status, headers, body = get(router, "nobody.localhost")
    assert status == 404
    assert headers["content-type"].startswith("text/plain")
    assert b"no app" in body and len(body) < 200
    status, _, _ = get(router, "127.0.0.1")
    assert status == 404


def test_app_without_web_process_gets_503(router):
    router.apply([route("idle")])
    status, headers, body = get(router, "idle.localhost", "/anything")
    assert status == 503
    assert headers["content-type"].startswith("text/plain")
    assert b"no web process is running for idle" in body


def test_removed_app_is_no_longer_served(router, make_upstream):
    up = make_upstream("a")
    router.apply([route("alpha", [up]), route("beta", [up])])
    assert get(router, "beta.localhost")[0] == 200
    router.apply([route("alpha", [up])])
    assert get(router, "beta.localhost")[0] == 404
    assert get(router, "alpha.localhost")[0] == 200


def test_load_is_spread_over_upstreams(router, make_upstream):
    a, b = make_upstream("a"), make_upstream("b")
    router.apply([route("web", [a, b])])
    seen = [get_json(router, "web.localhost")["upstream"] for _ in range(20)]
    assert seen.count("a") >= 5 and seen.count("b") >= 5, seen


def test_a_dead_upstream_is_skipped(router, make_upstream):
    a = make_upstream("a")
    dead = ("127.0.0.1", a.address[1])
    a_port = a.address
    b = make_upstream("b")
    a.close()
    router.apply([Route("web", ["web.localhost"], [a_port, b.address])])
    assert dead == a_port
    for _ in range(6):
        assert get_json(router, "web.localhost")["upstream"] == "b"


def test_an_update_nginx_never_loaded_is_applied_again_though_the_route_is_unchanged(router, make_upstream):
    """The state file names a route nginx never loaded (the reload was lost: no master at that
    moment, or one replaced meanwhile). The deployer's next identical update must reach nginx."""
    a, b = make_upstream("a"), make_upstream("b")
    router.apply([route("web", [a])])
    assert get_json(router, "web.localhost")["upstream"] == "a"
    state = json.loads((router.root / "state.json").read_text())
    served = state["generation"]
    state["generation"] += 1  # what a lost reload leaves behind
    state["routes"]["web"]["upstreams"] = [list(b.address)]
    (router.root / "state.json").write_text(json.dumps(state))
    assert router.live_generation() == served
    router.update({"web": route("web", [b])}, only_if_changed=True)
    assert router.live_generation() > served
    assert get_json(router, "web.localhost")["upstream"] == "b"


def test_backups_serve_only_when_no_upstream_answers(router, make_upstream):
    """A rollout's old processes stand behind its new ones while these must stay up."""
    new, old = make_upstream("new"), make_upstream("old")
    router.apply([Route("web", ["web.localhost"], [new.address], backups=[old.address, new.address])])
    assert router.routes()["web"].backups == [old.address]  # a primary is never its own backup
    assert [get_json(router, "web.localhost")["upstream"] for _ in range(6)] == ["new"] * 6
    new.close()  # the new process dies: its requests go to the backup, none fails
    assert [get_json(router, "web.localhost")["upstream"] for _ in range(6)] == ["old"] * 6


# ------------------------------------------------------------------ headers

def test_forwarded_headers_reach_the_upstream(router, make_upstream):
    router.apply([route("web", [make_upstream("a")])])
    h = get_json(router, "web.localhost")["headers"]
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-port"] == str(router.http_port)
    h = get_json(router, "web.localhost", headers={"X-Forwarded-For": "203.0.113.9"})["headers"]
    assert h["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


@pytest.mark.parametrize("given", ["abc-123_X.y", "a" * 128])
def test_valid_request_id_is_kept_and_echoed(router, make_upstream, given):
    router.apply([route("web", [make_upstream("a")])])
    status, headers, body = get(router, "web.localhost", headers={"X-Request-ID": given})
    assert status == 200
    assert json.loads(body)["headers"]["x-request-id"] == given
    assert headers["x-request-id"] == given  # the upstream's own X-Request-ID does not leak


@pytest.mark.parametrize("given", ["has spaces in it", "a" * 300, "semi;colon", None])
def test_invalid_or_missing_request_id_is_replaced(router, make_upstream, given):
    router.apply([route("web", [make_upstream("a")])])
    status, headers, body = get(router, "web.localhost", headers={"X-Request-ID": given} if given else {})
    assert status == 200
    made = headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert json.loads(body)["headers"]["x-request-id"] == made


def test_request_id_on_404_and_503_too(router):
    router.apply([route("idle")])
    for host in ("idle.localhost", "nobody.localhost"):
        _, headers, _ = get(router, host, headers={"X-Request-ID": "trace-1"})
        assert headers["x-request-id"] == "trace-1"


# ------------------------------------------------------------------ TLS

def test_tls_by_sni_with_each_apps_certificate(router, make_upstream):
    a_cert, a_key, _ = self_signed("secure.example.com")
    w_cert, w_key, _ = self_signed("*.wild.example")
    a, b = make_upstream("a"), make_upstream("b")
    result = router.apply([
        route("secure", [a], hosts=["secure.localhost", "secure.example.com"],
              certs=[Certificate("secure.example.com", a_cert, a_key)]),
        route("wild", [b], hosts=["wild.localhost", "api.wild.example"],
              certs=[Certificate("*.wild.example", w_cert, w_key)]),
    ])
    assert result.ok, result
    status, _, body, peer = https_get(router, "secure.example.com", a_cert)
    assert status == 200
    assert dict(x[0] for x in peer["subject"])["commonName"] == "secure.example.com"
    info = json.loads(body)
    assert info["upstream"] == "a" and info["headers"]["x-forwarded-proto"] == "https"

    status, _, body, peer = https_get(router, "api.wild.example", w_cert)
    assert status == 200 and json.loads(body)["upstream"] == "b"
    assert dict(x[0] for x in peer["subject"])["commonName"] == "*.wild.example"

    # A host of the app that no certificate covers, and an unknown host: the handshake is refused.
    for sni in ("secure.localhost", "nobody.example.com"):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_get(router, sni, a_cert)
    # Plain HTTP still works for the covered host.
    assert get_json(router, "secure.example.com")["headers"]["x-forwarded-proto"] == "http"


def test_https_can_be_turned_off(make_router, make_upstream):
    r = make_router(https_port=None)
    cert, key, _ = self_signed("x.example.com")
    result = r.apply([route("x", [make_upstream("a")], hosts=["x.example.com"],
                            certs=[Certificate("x.example.com", cert, key)])])
    assert result.ok
    assert get_json(r, "x.example.com")["upstream"] == "a"
    main = r.conf.read_text()
    text = main + "".join(Path(p).read_text() for p in re.findall(r'include "([^"]+)";', main))
    assert not re.search(r"listen \S+ ssl", text) and "ssl_certificate " not in text


# ------------------------------------------------------------------ protocols and bodies

def test_websocket_upgrade_passes_through(router, upgrade_upstream):
    router.apply([Route("ws", ["ws.localhost"], [upgrade_upstream.address])])
    with socket.create_connection(("127.0.0.1", router.http_port), timeout=10) as s:
        s.sendall(b"GET /socket HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        head, rest = head.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"upgrade: websocket" in head.lower()
        for message in (b"hello", b"\x81\x05world", b"x" * 10000):
            s.sendall(message)
            got = rest
            rest = b""
            while len(got) < len(message):
                got += s.recv(65536)
            assert got == message
    sent = upgrade_upstream.requests[0].lower()
    assert "upgrade: websocket" in sent and "connection: upgrade" in sent


def test_chunked_request_body_reaches_the_upstream_intact(router, make_upstream):
    router.apply([route("up", [make_upstream("a")])])
    chunks = [bytes([i % 256]) * (1000 + i * 37) for i in range(200)]
    data = b"".join(chunks)
    status, _, body = get(router, "up.localhost", "/upload", method="POST", body=iter(chunks),
                          encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    assert status == 200, body
    info = json.loads(body)
    assert info["body_len"] == len(data)
    assert info["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_body_size_limit_is_a_setting(make_router, make_upstream):
    router = make_router(max_body_size="10k")
    router.apply([route("up", [make_upstream("a")])])
    assert get(router, "up.localhost", method="POST", body=b"x" * 5000)[0] == 200
    assert get(router, "up.localhost", method="POST", body=b"x" * 20000)[0] == 413


def test_response_closed_by_eof_arrives_whole(router, make_upstream):
    router.apply([route("web", [make_upstream("a")])])
    info = get_json(router, "web.localhost", "/eof")
    assert info["path"] == "/eof"


def test_slow_response_is_not_cut(router, make_upstream):
    router.apply([route("slow", [make_upstream("a")])])
    started = time.monotonic()
    info = get_json(router, "slow.localhost", "/sleep/2")
    assert info["path"] == "/sleep/2" and time.monotonic() - started >= 2


def test_read_timeout_is_a_setting(make_router, make_upstream):
    router = make_router(read_timeout=1)
    router.apply([route("slow", [make_upstream("a")])])
    assert "proxy_read_timeout 1s;" in router.conf.read_text()
    assert get(router, "slow.localhost", "/sleep/2")[0] == 504


# ------------------------------------------------------------------ bad input

def test_a_broken_certificate_is_left_out_and_its_app_still_served(router, make_upstream):
    cert, _, _ = self_signed("bad.example.com")
    small, small_key, _ = self_signed("small.example.com", key=private_key("rsa", 512))
    a = make_upstream("a")
    result = router.apply([
        route("good", [a]),
        route("bad", [a], hosts=["bad.localhost", "bad.example.com"],
              certs=[Certificate("bad.example.com", cert, other_key_pem())]),  # not its key
        route("small", [a], hosts=["small.localhost", "small.example.com"],
              certs=[Certificate("small.example.com", small, small_key)]),  # nginx: ee key too small
        route("garbage", [a], certs=[Certificate("garbage.localhost", "not a pem", "nor this")]),
        route("odd", [a], certs=[Certificate("x; include /etc/passwd", cert, other_key_pem())]),
        Route("semicolon", ["x.com; include /etc/passwd"], [a.address]),
    ])
    assert set(result.rejected) == {"semicolon"} and result.dropped == ["semicolon"]
    assert result.applied == ["bad", "garbage", "good", "odd", "small"] and result.reloaded
    for app in ("bad", "small", "garbage", "odd"):
        assert any(w.startswith(f"{app}: certificate") and "not served" in w for w in result.warnings), result
        assert router.routes()[app].certificates == []
        assert get_json(router, f"{app}.localhost")["upstream"] == "a"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(router, "bad.example.com", cert)


def test_a_certificate_nginx_refuses_despite_the_checks_is_left_out(router, make_upstream, monkeypatch):
    from deis.router import tls

    monkeypatch.setattr(tls, "problem", lambda cert, key: None)  # as if a check had missed it
    small, small_key, _ = self_signed("small.example.com", key=private_key("rsa", 1024))
    good, good_key, _ = self_signed("small.example.com")
    a = make_upstream("a")
    result = router.apply([route("small", [a], hosts=["small.localhost", "small.example.com"],
                                 certs=[Certificate("small.example.com", small, small_key),
                                        Certificate("small.example.com", good, good_key)])])
    assert result.ok and result.applied == ["small"], result
    assert any("small: certificate" in w and "too small" in w for w in result.warnings), result.warnings
    status, _, body, _ = https_get(router, "small.example.com", good)
    assert status == 200 and json.loads(body)["upstream"] == "a"


def test_a_certificate_is_served_only_for_the_hosts_it_is_attached_to(router, make_upstream):
    """Another tenant's certificate naming my host - even in a route that lists it - never
    changes my route or what my host serves."""
    mine, mine_key, _ = self_signed("www.shop.example")
    theirs, theirs_key, _ = self_signed("*.shop.example", sans=("www.bob.example",))
    a, b = make_upstream("a"), make_upstream("b")
    shop = route("shop", [a], hosts=["shop.localhost", "www.shop.example"],
                 certs=[Certificate("www.shop.example", mine, mine_key, hosts=("www.shop.example",))])
    assert router.apply([shop]).ok
    before = router.routes()["shop"]
    result = router.update({"bobs": route("bobs", [b], hosts=["bobs.localhost", "www.bob.example"],
                                          certs=[Certificate("*.shop.example", theirs, theirs_key,
                                                             hosts=("www.shop.example", "www.bob.example"))])})
    assert result.ok and router.routes()["shop"] == before
    status, _, body, peer = https_get(router, "www.shop.example", mine)
    assert status == 200 and json.loads(body)["upstream"] == "a"
    status, _, body, _ = https_get(router, "www.bob.example", theirs)
    assert status == 200 and json.loads(body)["upstream"] == "b"
    # attached to nothing of its route: not served at all
    result = router.update({"bobs": route("bobs", [b], hosts=["bobs.localhost", "www.bob.example"],
                                          certs=[Certificate("*.shop.example", theirs, theirs_key,
                                                             hosts=("www.shop.example",))])})
    assert result.ok
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(router, "www.bob.example", theirs)
    assert https_get(router, "www.shop.example", mine)[0] == 200


def test_rejected_app_keeps_its_last_good_config(router, make_upstream):
    cert, key, _ = self_signed("shop.example.com")
    a, b = make_upstream("a"), make_upstream("b")
    good = route("shop", [a], hosts=["shop.localhost", "shop.example.com"],
                 certs=[Certificate("shop.example.com", cert, key)])
    assert router.apply([good, route("other", [a])]).ok
    new_cert, new_key, _ = self_signed("shop.example.com")
    broken = Route("shop", ["shop.localhost", "shop.example.com"], [("no-such-upstream.invalid", 80)],
                   [Certificate("shop.example.com", new_cert, new_key)])  # nginx: host not found
    result = router.apply([broken, route("other", [b])])
    assert list(result.rejected) == ["shop"] and result.kept == ["shop"] and result.applied == ["other"]
    # shop still goes to its old upstream with its old certificate; other moved on
    assert get_json(router, "shop.localhost")["upstream"] == "a"
    status, _, body, _ = https_get(router, "shop.example.com", cert)
    assert status == 200 and json.loads(body)["upstream"] == "a"
    assert get_json(router, "other.localhost")["upstream"] == "b"
    # Invalid input (refused before nginx) also keeps the last good config.
    result = router.apply([Route("shop", ["bad host!"], [b.address]), route("other", [b])])
    assert result.kept == ["shop"]
    assert get_json(router, "shop.localhost")["upstream"] == "a"
    # Fixed: the new route goes live.
    fixed = route("shop", [b], hosts=["shop.localhost"])
    assert router.apply([fixed, route("other", [b])]).ok
    assert get_json(router, "shop.localhost")["upstream"] == "b"


def test_bisection_finds_the_culprit_when_nginx_names_no_app_file(router, make_upstream, monkeypatch):
    a = make_upstream("a")
    monkeypatch.setattr(Router, "_culprits_from_message", lambda self, err, gen_dir, routes: [])
    routes = [route(f"app{i}", [a]) for i in range(7)]
    routes.insert(4, Route("bad", ["bad.example.com"], [("no-such-upstream.invalid", 80)]))  # nginx: host not found
    result = router.apply(routes)
    assert list(result.rejected) == ["bad"]
    assert result.applied == sorted(f"app{i}" for i in range(7))
    for i in range(7):
        assert get(router, f"app{i}.localhost")[0] == 200
    assert not list((router.root / "generations").glob("*.probe*"))


def test_host_claimed_twice_goes_to_one_app(router, make_upstream):
    a, b = make_upstream("a"), make_upstream("b")
    result = router.apply([route("one", [a], hosts=["one.localhost", "shared.example"]),
                           route("two", [b], hosts=["two.localhost", "shared.example"])])
    assert result.ok and any("shared.example" in w for w in result.warnings)
    assert get_json(router, "shared.example")["upstream"] == "a"
    assert get_json(router, "two.localhost")["upstream"] == "b"


def _longest_host(n: int = 0) -> str:
    """A valid host name of 253 characters, the most there may be (four labels of up to 63, and com)."""
    host = ".".join([f"h{n:05d}" + "x" * 57, "b" * 63, "c" * 63, "d" * 57, "com"])
    assert len(host) == 253
    return host


def test_the_longest_valid_host_names_and_thousands_of_them_are_served(router, make_upstream):
    """The API accepts any host name of up to 253 characters (issue 11): nginx's server_names hash
    must take them, and thousands of them, or one app's domain breaks every app's routes."""
    a, b, c = make_upstream("a"), make_upstream("b"), make_upstream("c")
    wildcard = "*." + _longest_host(1)[2:]
    many = [_longest_host(n) for n in range(10, 3010)] + [f"site{n}.example.com" for n in range(2000)]
    result = router.apply([route("long", [a], hosts=["long.localhost", _longest_host(0), wildcard]),
                           route("many", [b], hosts=["many.localhost", *many]),
                           route("short", [c])])
    assert result.ok and result.applied == ["long", "many", "short"], (result.rejected, result.warnings)
    assert get_json(router, _longest_host(0))["upstream"] == "a"
    assert get_json(router, "q." + wildcard[2:])["upstream"] == "a"  # by the wildcard, 253 characters too
    for host in (many[0], many[1234], many[2999], many[-1], "site77.example.com"):
        assert get_json(router, host)["upstream"] == "b"
    assert get_json(router, "short.localhost")["upstream"] == "c"
    assert get(router, _longest_host(5))[0] == 404


# ------------------------------------------------------------------ zero downtime

def test_reloads_under_load_lose_no_request(router, make_upstream):
    a, b = make_upstream("a"), make_upstream("b")
    router.apply([route("web", [a])])
    statuses: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def hammer():
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline and len(statuses) < 5000:
            try:
                statuses.append(get(router, "web.localhost", timeout=5)[0])
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

    # One request in flight across all the reloads.
    slow: list[int] = []
    slow_thread = threading.Thread(target=lambda: slow.append(get(router, "web.localhost", "/sleep/2")[0]))
    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    slow_thread.start()
    try:
        for i in range(12):
            ups = [a, b] if i % 2 else [b]
            result = router.apply([route("web", ups), route(f"extra{i}", [a])])
            assert result.ok and result.reloaded
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
        slow_thread.join()
    assert not errors, errors[:5]
    assert len(statuses) > 50, len(statuses)
    print("requests during reloads:", len(statuses))
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert slow == [200]


def test_once_apply_returns_no_new_connection_is_served_by_the_old_configuration(router, make_upstream):
    """nginx's master lets the old workers accept for 100 ms after starting the new ones. The
    scheduler stops the old containers as soon as `apply` returns, so `apply` must not return
    before every old worker has stopped taking connections."""
    a, b = make_upstream("a"), make_upstream("b")
    router.apply([route("web", [a])])
    answers: list[tuple[float, float, str]] = []  # (request started, answer came, which upstream)
    stop = threading.Event()

    def hammer():
        while not stop.is_set() and len(answers) < 20000:
            started = time.monotonic()
            upstream = get_json(router, "web.localhost", timeout=5)["upstream"]
            answers.append((started, time.monotonic(), upstream))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    def accepting_workers() -> set[str]:  # as `ps` sees them; a retiring one is "... is shutting down"
        ps = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(router.master_pid())],
                            capture_output=True, text=True, check=False).stdout
        return {line.split(None, 1)[0] for line in ps.splitlines()
                if line.split(None, 1)[1].strip() == "nginx: worker process"}

    def still_titled_accepting(pids: set[str]) -> list[str]:  # read at once, not after a `ps` starts
        still = []
        for pid in sorted(pids):
            try:
                title = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").strip()
            except OSError:
                continue  # exited
            if title == b"nginx: worker process":
                still.append(pid)
        return still

    switched: list[tuple[float, float, str]] = []  # (apply called, apply returned, upstream switched to)
    still_accepting = []
    try:
        for i in range(16):
            upstream = b if i % 2 == 0 else a
            before = accepting_workers()
            called = time.monotonic()
            assert router.apply([route("web", [upstream])]).reloaded
            switched.append((called, time.monotonic(), upstream.name))
            still_accepting += still_titled_accepting(before)
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    late = []
    for (_, returned, name), (next_called, _, _) in zip(switched, switched[1:] + [(float("inf"), 0, "")]):
        late += [(round(started - returned, 3), who) for started, answered, who in answers
                 if returned <= started and answered < next_called and who != name]
    assert still_accepting == [], f"workers of the old configuration still accepted after apply: {still_accepting}"
    assert len(answers) > 100, len(answers)
    assert late == [], f"{len(late)} connections opened after apply returned reached the old upstream: {late[:5]}"


def test_apply_waits_for_a_slow_old_worker_to_stop_accepting(make_router, make_upstream):
    """A worker of the old configuration that has not yet taken its order to shut down (held
    here with SIGSTOP) may still accept connections: `apply` must not return before it has."""
    import os
    import signal

    router = make_router()
    a, b = make_upstream("a"), make_upstream("b")
    router.apply([route("web", [a])])
    ps = subprocess.run(["ps", "-o", "pid=", "--ppid", str(router.master_pid())],
                        capture_output=True, text=True, check=True).stdout.split()
    slow = int(ps[0])
    os.kill(slow, signal.SIGSTOP)
    results = []
    try:
        applying = threading.Thread(target=lambda: results.append(router.apply([route("web", [b])])))
        applying.start()
        applying.join(1.0)
        assert applying.is_alive(), "apply returned while an old worker could still accept"
    finally:
        os.kill(slow, signal.SIGCONT)
    applying.join(10)
    assert results and results[0].reloaded
    try:
        with open(f"/proc/{slow}/cmdline", "rb") as cmdline:
            title = cmdline.read()
    except FileNotFoundError:
        title = b""
    assert title == b"" or b"shutting down" in title  # gone (empty: a zombie), or finishing its requests
    assert get_json(router, "web.localhost")["upstream"] == "b"
