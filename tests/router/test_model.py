"""Route checks and certificate matching, without nginx."""

import json

import pytest

from deis.router import Certificate, InvalidRoute, Route, validate
from deis.router.model import certificate_problems
from tests.pki import other_key_pem, private_key, self_signed


def test_validate_normalises_hosts_and_upstreams():
    r = validate(Route("web", ["Web.LOCALHOST", "web.localhost", "www.example.com."],
                       [("127.0.0.1", "5000"), ("[::1]", 5001), ("127.0.0.1", 5000)]))
    assert r.hosts == ["web.localhost", "www.example.com"]
    assert r.upstreams == [("127.0.0.1", 5000), ("::1", 5001)]


@pytest.mark.parametrize("host", ["a;b.example.com", "x.com { }", "bad host", "-x.com", "a..b", "*.*.x.com",
                                  "x.com\nserver_name y", "", "ab_c.com", "a" * 64 + ".com"])
def test_hosts_that_could_break_the_config_are_refused(host):
    with pytest.raises(InvalidRoute):
        validate(Route("web", [host], []))


@pytest.mark.parametrize("app", ["Web", "web;", "-web", "", "a b"])
def test_bad_app_names_are_refused(app):
    with pytest.raises(InvalidRoute):
        validate(Route(app, ["web.localhost"], []))


@pytest.mark.parametrize("upstream", [("127.0.0.1", 0), ("127.0.0.1", 70000), ("a;b", 80), ("x", "y"), ("1.2.3.4",)])
def test_bad_upstreams_are_refused(upstream):
    with pytest.raises(InvalidRoute):
        validate(Route("web", ["web.localhost"], [upstream]))


@pytest.mark.parametrize("case", ["garbage-cert", "garbage-key", "mismatch", "small-key", "odd-common-name",
                                  "odd-san", "not-text"])
def test_an_unfit_certificate_is_left_out_never_refusing_the_route(case):
    cert, key, _ = self_signed("www.example.com")
    good = Certificate("www.example.com", cert, key)
    bad = {"garbage-cert": Certificate("www.example.com", "garbage", key),
           "garbage-key": Certificate("www.example.com", cert, "-----BEGIN junk"),
           "mismatch": Certificate("www.example.com", cert, other_key_pem()),
           "small-key": Certificate("www.example.com", *self_signed("www.example.com",
                                                                    key=private_key("rsa", 512))[:2]),
           "odd-common-name": Certificate("x.com; include /etc/passwd", cert, key),
           "odd-san": Certificate("www.example.com", *self_signed("www.example.com",
                                                                  sans=("www.example.com", "a_b.example"))[:2]),
           "not-text": Certificate("www.example.com", None, key)}[case]
    route = Route("web", ["www.example.com"], [("10.0.0.1", 5000)], [bad, good])
    checked = validate(route)
    assert checked.certificates == [good] and checked.upstreams == [("10.0.0.1", 5000)]
    problems = certificate_problems(route)
    assert len(problems) == 1 and problems[0].startswith("web: certificate")


def test_a_certificate_is_served_only_for_its_hosts():
    cert, key, _ = self_signed("*.example.com")
    c = Certificate("*.example.com", cert, key, hosts=["A.example.com"])
    assert c.hosts == ("a.example.com",)
    assert c.covers("a.example.com") and not c.covers("b.example.com")
    assert not Certificate("*.example.com", cert, key, hosts=["other.org"]).covers("other.org")  # not its name


def test_certificate_coverage_exact_wildcard_and_sans():
    cert, key, _ = self_signed("*.example.com", sans=("example.org",))
    c = Certificate("*.example.com", cert, key)
    assert c.covers("www.example.com")
    assert c.covers("example.org")
    assert not c.covers("example.com")
    assert not c.covers("a.b.example.com")
    assert not c.covers("www.example.org")


def test_route_round_trips_through_dict():
    cert, key, _ = self_signed("a.example.com")
    r = Route("web", ["a.example.com"], [("10.0.0.1", 5000)], [Certificate("a.example.com", cert, key),
                                                             Certificate("a.example.com", cert, key, ("a.example.com",))])
    assert Route.from_dict(r.to_dict()) == r
    assert Route.from_dict(json.loads(json.dumps(r.to_dict()))) == r
