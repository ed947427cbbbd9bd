"""Route checks and certificate matching, without nginx."""

import pytest

from deis.router import Certificate, InvalidRoute, Route, validate
from tests.pki import other_key_pem, self_signed


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


def test_garbage_pem_is_refused_but_a_mismatched_key_is_left_to_nginx():
    cert, key, _ = self_signed("www.example.com")
    with pytest.raises(InvalidRoute, match="certificate"):
        validate(Route("web", ["www.example.com"], [], [Certificate("www.example.com", "garbage", key)]))
    with pytest.raises(InvalidRoute, match="private key"):
        validate(Route("web", ["www.example.com"], [], [Certificate("www.example.com", cert, "-----BEGIN junk")]))
    validate(Route("web", ["www.example.com"], [], [Certificate("www.example.com", cert, other_key_pem())]))


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
    r = Route("web", ["a.example.com"], [("10.0.0.1", 5000)], [Certificate("a.example.com", cert, key)])
    assert Route.from_dict(r.to_dict()) == r
