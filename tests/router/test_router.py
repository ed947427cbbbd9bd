"""The router through a real HAProxy, in front of real upstream servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import ssl
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
    assert result.ok and result.applied == ["alpha", "beta"] and not result.reloaded  # live, at runtime
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


def test_an_update_is_applied_again_when_haproxy_lost_it_though_the_route_is_unchanged(router, make_upstream):
    """The state file names a route HAProxy does not serve (its server was deleted behind the
    router's back). The deployer's next identical update must put it back."""
    a = make_upstream("a")
    router.apply([route("web", [a])])
    slot = json.loads((router.root / "state.json").read_text())["slots"]["web"]
    (name,) = router.api.servers(slot)
    router.api.do(f"set server {slot}/{name} state maint")
    router.api.do(f"del server {slot}/{name}")
    assert get(router, "web.localhost")[0] == 503
    assert router.update({"web": route("web", [a])}, only_if_changed=True) is not None
    assert get_json(router, "web.localhost")["upstream"] == "a"
    assert router.update({"web": route("web", [a])}, only_if_changed=True) is None  # now it is served


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

def _websocket_handshake(s: socket.socket, host: str) -> bytes:
    """Send a WebSocket upgrade request; what came back up to the end of the answer's head, and after."""
    s.sendall(f"GET /socket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    return head


def test_websocket_upgrade_passes_through(router, upgrade_upstream):
    router.apply([Route("ws", ["ws.localhost"], [upgrade_upstream.address])])
    with socket.create_connection(("127.0.0.1", router.http_port), timeout=10) as s:
        head = _websocket_handshake(s, "ws.localhost")
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
    assert "timeout server 1s" in router.conf.read_text()
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
    assert result.applied == ["bad", "garbage", "good", "odd", "small"] and not result.reloaded
    for app in ("bad", "small", "garbage", "odd"):
        assert any(w.startswith(f"{app}: certificate") and "not served" in w for w in result.warnings), result
        assert router.routes()[app].certificates == []
        assert get_json(router, f"{app}.localhost")["upstream"] == "a"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(router, "bad.example.com", cert)


def test_a_certificate_haproxy_refuses_despite_the_checks_is_left_out(router, make_upstream, monkeypatch):
    from deis.router import tls

    monkeypatch.setattr(tls, "problem", lambda cert, key: None)  # as if a check had missed it
    small, _, _ = self_signed("small.example.com")
    small_key = other_key_pem()  # not its key: HAProxy refuses the pair
    good, good_key, _ = self_signed("small.example.com")
    a = make_upstream("a")
    result = router.apply([route("small", [a], hosts=["small.localhost", "small.example.com"],
                                 certs=[Certificate("small.example.com", small, small_key),
                                        Certificate("small.example.com", good, good_key)])])
    assert result.ok and result.applied == ["small"], result
    assert any(w.startswith("small: certificate") and "not served" in w for w in result.warnings), result.warnings
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

class Client(threading.Thread):
    """A client of one app that never retries: keep-alive (one connection for as long as the
    router keeps it; a `Connection: close` answer makes http.client open the next one, as any
    client does) or a fresh connection a request; GETs and POSTs with a body in turn."""

    def __init__(self, router, host, keep_alive, stop, limit=4000):
        super().__init__(daemon=True)
        self.router, self.host, self.keep_alive, self.stop, self.limit = router, host, keep_alive, stop, limit
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.upstreams: list[str] = []

    def run(self):
        conn = None
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline and len(self.statuses) < self.limit:
            if conn is None or not self.keep_alive:
                conn = http.client.HTTPConnection("127.0.0.1", self.router.http_port, timeout=10)
            post = len(self.statuses) % 2 == 1
            try:
                conn.request("POST" if post else "GET", "/", body=b"x" * 3000 if post else None,
                             headers={"Host": self.host})
                resp = conn.getresponse()
                body = resp.read()
                self.statuses.append(resp.status)
                if resp.status != 200:
                    self.errors.append(f"{resp.status}: {body[:200]!r}")
                if resp.status == 200:
                    info = json.loads(body)
                    assert info["body_len"] == (3000 if post else 0)
                    self.upstreams.append(info["upstream"])
            except Exception as exc:  # noqa: BLE001 - every error counts, none is retried
                self.errors.append(repr(exc))
                conn.close()
                conn = None
            if not self.keep_alive and conn is not None:
                conn.close()
        if conn is not None:
            conn.close()


def _run_clients(router, hosts, body):
    stop = threading.Event()
    clients = [Client(router, host, keep_alive, stop) for host in hosts for keep_alive in (True, False)]
    for c in clients:
        c.start()
    try:
        time.sleep(0.2)
        body()
    finally:
        stop.set()
        for c in clients:
            c.join(15)
    for c in clients:
        kind = "keep-alive" if c.keep_alive else "fresh"
        assert c.errors == [], f"{kind} client of {c.host}: {len(c.errors)} errors: {c.errors[:3]}"
        assert set(c.statuses) == {200}, (kind, c.host, {s: c.statuses.count(s) for s in set(c.statuses)})
        assert len(c.statuses) > 20, (kind, c.host, len(c.statuses))
    return clients


def test_hundreds_of_route_changes_under_load_lose_no_request_and_never_reload(router, make_upstream):
    """Clients of two apps, keep-alive and not, GET and POST, while one app is deployed and
    scaled 200 times and other apps, domains and certificates come and go: no error, no retry,
    and HAProxy never reloads."""
    a, b, c, other = make_upstream("a"), make_upstream("b"), make_upstream("c"), make_upstream("other")
    cert, key, _ = self_signed("www.extra.example")
    router.apply([route("web", [a]), route("other", [other])])
    pid = router.api.raw("show info").split("Pid: ", 1)[1].split()[0]
    results = []

    def changes():
        for i in range(200):
            ups = [[a], [b], [b, c], [c], [a, c]][i % 5]
            results.append(router.update({"web": route("web", ups)}))
            if i % 10 == 0:  # another app, with a domain and a certificate, comes or goes
                extra = route(f"extra{i % 30}", [other], hosts=[f"extra{i % 30}.localhost", "www.extra.example"],
                              certs=[Certificate("www.extra.example", cert, key)])
                results.append(router.update({extra.app: extra if i % 20 == 0 else None}))

    clients = _run_clients(router, ["web.localhost", "other.localhost"], changes)
    assert all(r.ok and not r.reloaded for r in results), [r for r in results if not r.ok or r.reloaded][:3]
    assert router.api.raw("show info").split("Pid: ", 1)[1].split()[0] == pid  # the same worker throughout
    web = [u for cl in clients if cl.host == "web.localhost" for u in cl.upstreams]
    assert {"a", "b", "c"} <= set(web)
    assert sum(r.drained for r in results) > 100


def test_once_update_returns_the_old_upstream_has_finished_its_requests_and_takes_no_new_one(router, make_upstream):
    """Drain: a request in flight on the old process finishes; update returns after it, and no
    request reaches the old process after that (the scheduler stops it then)."""
    a, b = make_upstream("a"), make_upstream("b")
    router.apply([route("web", [a])])
    slow: list[tuple[int, float]] = []
    t = threading.Thread(target=lambda: slow.append((get(router, "web.localhost", "/sleep/1.5")[0], time.monotonic())))
    t.start()
    time.sleep(0.3)
    result = router.update({"web": route("web", [b])})
    returned = time.monotonic()
    t.join()
    assert slow and slow[0][0] == 200 and slow[0][1] <= returned + 0.05, (slow, returned)
    assert result.drained == 1
    hits = len(a.hits)
    assert [get_json(router, "web.localhost")["upstream"] for _ in range(10)] == ["b"] * 10
    assert len(a.hits) == hits


def test_drain_is_bounded(make_router, make_upstream):
    router = make_router(drain_timeout=1)
    a, b = make_upstream("a"), make_upstream("b")
    router.apply([route("web", [a])])
    t = threading.Thread(target=lambda: get(router, "web.localhost", "/sleep/5"), daemon=True)
    t.start()
    time.sleep(0.3)
    started = time.monotonic()
    result = router.update({"web": route("web", [b])})
    assert 0.9 < time.monotonic() - started < 3 and result.drained == 1
    assert get_json(router, "web.localhost")["upstream"] == "b"


def test_a_change_that_needs_a_reload_loses_no_request(make_router, make_upstream, monkeypatch):
    """More apps than the file has slots for: HAProxy reloads, and its old process keeps idle
    keep-alive connections until their next answer says `Connection: close`."""
    import deis.router.router as module

    monkeypatch.setattr(module, "SLOT_CHUNK", 2)
    router = make_router()
    a, other = make_upstream("a"), make_upstream("other")
    router.apply([route("web", [a])])
    results = []

    def changes():
        for i in range(6):
            results.append(router.update({f"extra{i}": route(f"extra{i}", [other])}))
            time.sleep(0.3)

    _run_clients(router, ["web.localhost"], changes)
    assert sum(r.reloaded for r in results) >= 2, results
    assert get_json(router, "extra5.localhost")["upstream"] == "other"


def test_a_websocket_lives_through_route_changes_of_its_app(router, upgrade_upstream, make_upstream):
    b = make_upstream("b")
    router.apply([Route("ws", ["ws.localhost"], [upgrade_upstream.address])])
    with socket.create_connection(("127.0.0.1", router.http_port), timeout=10) as s:
        head = _websocket_handshake(s, "ws.localhost")
        assert head.startswith(b"HTTP/1.1 101")
        for i in range(5):  # other processes come and go; this one stays routed
            ups = [upgrade_upstream.address] + ([b.address] if i % 2 == 0 else [])
            router.update({"ws": Route("ws", ["ws.localhost"], ups)})
            s.sendall(b"ping%d" % i)
            assert s.recv(100) == b"ping%d" % i


# ------------------------------------------------------------------ maintenance and allow-lists

def test_maintenance_mode_answers_503_with_its_page_and_leaves_other_apps_alone(router, make_upstream):
    a, b = make_upstream("a"), make_upstream("b")
    router.apply([route("web", [a]), route("other", [b])])
    result = router.update({"web": Route("web", ["web.localhost"], [a.address], maintenance=True)})
    assert result.ok and not result.reloaded
    status, headers, body = get(router, "web.localhost")
    assert status == 503 and b"maintenance" in body and headers["content-type"].startswith("text/html")
    assert headers["retry-after"] == "60" and headers["x-request-id"]
    assert get_json(router, "other.localhost")["upstream"] == "b"
    router.update({"web": Route("web", ["web.localhost"], [a.address], maintenance=False)})
    assert get_json(router, "web.localhost")["upstream"] == "a"


def test_an_allow_list_lets_only_its_networks_in(router, make_upstream):
    a = make_upstream("a")
    router.apply([Route("web", ["web.localhost"], [a.address], allow=["10.0.0.0/8"])])
    status, _, body = get(router, "web.localhost")
    assert status == 403 and b"403 Forbidden" in body
    # X-Forwarded-For from a proxy nobody trusts changes nothing
    assert get(router, "web.localhost", headers={"X-Forwarded-For": "10.1.2.3"})[0] == 403
    router.update({"web": Route("web", ["web.localhost"], [a.address], allow=["10.0.0.0/8", "127.0.0.1"])})
    assert get_json(router, "web.localhost")["upstream"] == "a"
    router.update({"web": Route("web", ["web.localhost"], [a.address], allow=[])})  # empty: everybody
    assert get_json(router, "web.localhost")["upstream"] == "a"


def test_the_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy(make_router, make_upstream):
    router = make_router(trusted_proxies=["127.0.0.0/8"])
    a = make_upstream("a")
    router.apply([Route("web", ["web.localhost"], [a.address], allow=["10.0.0.0/8"])])
    assert get(router, "web.localhost")[0] == 403  # the proxy itself is not in the list
    status, _, body = get(router, "web.localhost", headers={"X-Forwarded-For": "192.0.2.1, 10.1.2.3"})
    assert status == 200
    headers = json.loads(body)["headers"]
    assert headers["x-real-ip"] == "10.1.2.3"
    assert headers["x-forwarded-for"] == "192.0.2.1, 10.1.2.3, 127.0.0.1"
    assert get(router, "web.localhost", headers={"X-Forwarded-For": "10.1.2.3, 192.0.2.1"})[0] == 403


def test_a_bad_allow_list_entry_is_refused_and_the_app_keeps_its_route(router, make_upstream):
    a = make_upstream("a")
    router.apply([route("web", [a])])
    result = router.update({"web": Route("web", ["web.localhost"], [a.address], allow=["10.0.0.0/33"])})
    assert result.kept == ["web"]
    assert get_json(router, "web.localhost")["upstream"] == "a"


def test_a_killed_haproxy_started_again_serves_every_runtime_change(make_router, make_upstream):
    """Runtime changes live in HAProxy's memory and in state.json: a HAProxy killed (-9) and
    started again serves hosts, certificates, maintenance and allow-lists as before."""
    import os
    import signal

    router = make_router()
    a, b = make_upstream("a"), make_upstream("b")
    cert, key, _ = self_signed("secure.example.com")
    router.apply([route("web", [a])])
    router.update({"shop": Route("shop", ["shop.localhost", "secure.example.com"], [b.address],
                                 [Certificate("secure.example.com", cert, key)])})
    router.update({"closed": Route("closed", ["closed.localhost"], [a.address], maintenance=True),
                   "private": Route("private", ["private.localhost"], [a.address], allow=["10.0.0.0/8"])})
    master = router.master_pid()
    for pid in [master, *map(int, Path(f"/proc/{master}/task/{master}/children").read_text().split())]:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while router.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    router.start()
    assert router.master_pid() != master
    assert get_json(router, "web.localhost")["upstream"] == "a"
    status, _, body, _ = https_get(router, "secure.example.com", cert)
    assert status == 200 and json.loads(body)["upstream"] == "b"
    assert get(router, "closed.localhost")[0] == 503
    assert get(router, "private.localhost")[0] == 403


def test_a_pass_over_every_app_finds_one_that_haproxy_lost(router, make_upstream):
    """The reconciler's pass (every app, only if changed) looks at every backend's servers in one
    listing: a server deleted behind the router's back is put back, and a second pass does nothing."""
    a = make_upstream("a")
    routes = {f"app{i}": route(f"app{i}", [a]) for i in range(3)}
    router.apply(list(routes.values()))
    assert router.update(routes, only_if_changed=True, remove_others=True) is None
    slot = json.loads((router.root / "state.json").read_text())["slots"]["app1"]
    (name,) = router.api.servers(slot)
    router.api.do(f"set server {slot}/{name} state maint")
    router.api.do(f"del server {slot}/{name}")
    assert router.update(routes, only_if_changed=True, remove_others=True) is not None
    assert get_json(router, "app1.localhost")["upstream"] == "a"
    assert router.update(routes, only_if_changed=True, remove_others=True) is None
