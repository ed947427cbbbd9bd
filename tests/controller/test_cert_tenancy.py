"""Certificates belong to their uploader's apps: two tenants, the attacks of issue 11 (point 4),
attachment to domains (Workflow v2's /certs/<name>/domain/), app destroy and the migration."""

from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from deis.controller.api import runtime
from deis.controller.api.models import App, Certificate, CertificateDomain, Domain
from deis.router import Router, find_haproxy
from deis.scheduler import Endpoint
from tests.controller.conftest import make_user
from tests.pki import ca_signed, other_key_pem, private_key, self_signed

pytestmark = pytest.mark.django_db


def upload(client, cert, key, **extra):
    return client.post("/v1/certs", {"certificate": cert, "key": key, **extra})


def served(app_id: str) -> dict[str, tuple[str, ...]]:
    """{common name: hosts} of the certificates the router is told to serve for the app."""
    route = runtime.route_for(App.objects.get(id=app_id), [])
    return {c.common_name: c.hosts for c in route.certificates}


@pytest.fixture
def tenants(alice, bob):
    """alice's app `shop` with www.shop.example; bob's app `bobs` with www.bob.example."""
    assert alice.post("/v1/apps", {"id": "shop"}).status_code == 201
    assert alice.post("/v1/apps/shop/domains", {"domain": "www.shop.example"}).status_code == 201
    assert bob.post("/v1/apps", {"id": "bobs"}).status_code == 201
    assert bob.post("/v1/apps/bobs/domains", {"domain": "www.bob.example"}).status_code == 201
    return alice, bob


@pytest.fixture
def real_router(tmp_path, monkeypatch):
    """The controller's route changes go to a real Router (its files checked by `haproxy -c`;
    HAProxy not started). HAProxy is part of the platform: its absence fails, never skips."""
    routed = Router(tmp_path, http_port=18080, https_port=18443, listen_address="127.0.0.1", install=False,
                    haproxy=find_haproxy(install=True))
    monkeypatch.setattr(runtime, "router", lambda: routed)
    monkeypatch.setattr(runtime, "get_scheduler", lambda: SimpleNamespace(available=True))
    return routed


# --- names are per owner ------------------------------------------------------------------------

def test_two_tenants_may_hold_certificates_of_one_name(tenants, admin_client):
    alice, bob = tenants
    a_cert, a_key, _ = self_signed("www.shop.example")
    b_cert, b_key, _ = self_signed("www.shop.example")
    assert upload(bob, b_cert, b_key).status_code == 201  # first: squatting the name wins nothing
    answer = upload(alice, a_cert, a_key)
    assert answer.status_code == 201, answer.content
    assert answer.json()["domains"] == ["www.shop.example"]  # alice's, on alice's domain
    b_print = bob.get("/v1/certs/www.shop.example").json()["fingerprint"]
    a_print = alice.get("/v1/certs/www.shop.example").json()["fingerprint"]
    assert a_print != b_print
    assert bob.get("/v1/certs/www.shop.example").json()["domains"] == []
    assert [c["owner"] for c in alice.get("/v1/certs").json()["results"]] == ["alice"]
    assert served("shop") == {"www.shop.example": ("www.shop.example",)}
    assert runtime.route_for(App.objects.get(id="shop"), []).certificates[0].cert == a_cert
    # Admins see both; a name two users hold needs ?owner=.
    assert admin_client.get("/v1/certs").json()["count"] == 2
    assert admin_client.get("/v1/certs/www.shop.example").status_code == 409
    assert admin_client.get("/v1/certs/www.shop.example?owner=bob").json()["fingerprint"] == b_print
    # bob deletes his own; alice's stays, still served.
    assert bob.delete("/v1/certs/www.shop.example").status_code == 204
    assert bob.get("/v1/certs/www.shop.example").status_code == 404
    assert alice.get("/v1/certs/www.shop.example").json()["fingerprint"] == a_print
    assert served("shop") == {"www.shop.example": ("www.shop.example",)}
    # A second certificate of one name from one user is still a conflict.
    assert upload(alice, *self_signed("www.shop.example")[:2]).status_code == 409


# --- the attacks ------------------------------------------------------------------------------

def test_another_tenants_wildcard_is_not_served_for_my_domain(tenants, real_router):
    alice, bob = tenants
    w_cert, w_key, _ = self_signed("*.shop.example")
    answer = upload(bob, w_cert, w_key)
    assert answer.status_code == 201 and answer.json()["domains"] == []
    assert served("shop") == {}
    # Nor once alice adds a domain it covers, nor when bob asks for it.
    assert alice.post("/v1/apps/shop/domains", {"domain": "api.shop.example"}).status_code == 201
    assert served("shop") == {}
    assert bob.post("/v1/certs/*.shop.example/domain/", {"domain": "api.shop.example"}).status_code == 403
    assert bob.post("/v1/certs/*.shop.example/domain/", {"domain": "nowhere.shop.example"}).status_code == 404
    assert CertificateDomain.objects.count() == 0
    # The router serves alice's hosts without bob's certificate.
    shop = real_router.routes()["shop"]
    assert "api.shop.example" in shop.hosts and shop.certificates == []
    # alice's own certificate is served, and only for her hosts.
    a_cert, a_key, _ = self_signed("*.shop.example")
    assert upload(alice, a_cert, a_key).json()["domains"] == ["api.shop.example", "www.shop.example"]
    assert [c.cert for c in real_router.routes()["shop"].certificates] == [a_cert]
    assert real_router.routes()["bobs"].certificates == []


def test_a_certificate_naming_another_tenants_host_changes_nothing_of_theirs(tenants, real_router):
    alice, bob = tenants
    a_cert, a_key, _ = self_signed("www.shop.example")
    assert upload(alice, a_cert, a_key).status_code == 201
    before = real_router.routes()["shop"]
    # An odd common name with alice's host as SAN: refused outright.
    odd, odd_key, _ = self_signed("Bob's cert", sans=("www.shop.example",))
    answer = upload(bob, odd, odd_key)
    assert answer.status_code == 400 and "not a host name" in str(answer.json())
    # A valid one naming alice's host: kept by bob, served for nothing of alice's.
    b_cert, b_key, _ = self_signed("www.bob.example", sans=("www.bob.example", "www.shop.example"))
    answer = upload(bob, b_cert, b_key)
    assert answer.status_code == 201 and answer.json()["domains"] == ["www.bob.example"]
    assert served("shop") == {"www.shop.example": ("www.shop.example",)}
    assert served("bobs") == {"www.bob.example": ("www.bob.example",)}
    assert real_router.routes()["shop"] == before
    # alice's next deploy switches fine (the router accepts her new route).
    endpoint = Endpoint(app="shop", type="web", num=1, address="127.0.0.1", port=5000)
    runtime.switch_for(App.objects.get(id="shop"))([endpoint])
    shop = real_router.routes()["shop"]
    assert shop.upstreams == [("127.0.0.1", 5000)] and [c.cert for c in shop.certificates] == [a_cert]
    assert [c.hosts for c in shop.certificates] == [("www.shop.example",)]



@pytest.mark.parametrize("case", ["rsa512", "rsa1024", "p224", "secp256k1", "ed25519", "expired", "mismatch",
                                  "weak-chain", "bad-san", "wildcard-two-labels", "wildcard-tld", "no-name"])
def test_certificates_the_router_would_refuse_are_refused(tenants, real_router, case):
    alice, _ = tenants
    good, good_key, _ = self_signed("www.shop.example")
    assert upload(alice, good, good_key).status_code == 201
    before = alice.get("/v1/certs").json()
    route_before = real_router.routes()["shop"]
    key = None
    if case == "rsa512":
        key = private_key("rsa", 512)
    elif case == "rsa1024":
        key = private_key("rsa", 1024)
    elif case == "p224":
        key = private_key(curve=ec.SECP224R1())
    elif case == "secp256k1":
        key = private_key(curve=ec.SECP256K1())
    elif case == "ed25519":
        key = private_key("ed25519")
    name, sans, days = "api.shop.example", (), 30
    if case == "expired":
        days = -1
    elif case == "bad-san":
        sans = ("api.shop.example", "under_score.shop.example")
    elif case == "wildcard-two-labels":
        name = "*.*.shop.example"
    elif case == "wildcard-tld":
        name = "*.example"
        sans = ("*.example",)
    elif case == "no-name":
        name = None
    if case == "weak-chain":
        cert, cert_key, _ = ca_signed("api.shop.example", ca_key=private_key("rsa", 1024))
    else:
        cert, cert_key, _ = self_signed(name, days=days, sans=sans, key=key)
    if case == "mismatch":
        cert_key = other_key_pem()
    answer = upload(alice, cert, cert_key)
    assert answer.status_code == 400, (case, answer.content)
    message = str(answer.json())
    expected = {"rsa512": "2048", "rsa1024": "2048", "p224": "P-256", "secp256k1": "P-256", "ed25519": "RSA",
                "expired": "expired", "mismatch": "does not match", "weak-chain": "chain",
                "bad-san": "under_score", "wildcard-two-labels": "not a host name",
                "wildcard-tld": "not a host name", "no-name": "names no host"}[case]
    assert expected in message, message
    # Nothing lost: the good certificate, its attachment and the route are as they were.
    assert alice.get("/v1/certs").json() == before
    assert real_router.routes()["shop"] == route_before


def test_good_keys_and_chains_are_accepted(alice):
    for i, key in enumerate([private_key("rsa", 2048), private_key(curve=ec.SECP384R1()),
                             private_key(curve=ec.SECP521R1())]):
        cert, key_pem, _ = self_signed(f"k{i}.example.com", key=key)
        assert upload(alice, cert, key_pem).status_code == 201
    chain, leaf_key, _ = ca_signed("chained.example.com", sans=("chained.example.com",))
    body = upload(alice, chain, leaf_key).json()
    assert body["issuer"] == "CN=Test CA" and body["san"] == ["chained.example.com"]


def test_a_stored_certificate_the_router_would_refuse_is_never_served(tenants, real_router):
    """One stored before validation (a 512-bit key, say): listed, deletable, never routed."""
    alice, _ = tenants
    cert, key, expires = self_signed("www.shop.example", key=private_key("rsa", 512))
    shop = App.objects.get(id="shop")
    legacy = Certificate.objects.create(owner=shop.owner, common_name="www.shop.example", certificate=cert,
                                        key=key, expires=expires)
    CertificateDomain.objects.create(certificate=legacy, domain=Domain.objects.get(domain="www.shop.example"))
    assert served("shop") == {}
    runtime.refresh_routes()
    assert real_router.routes()["shop"].certificates == []
    answer = alice.post("/v1/certs/www.shop.example/domain/", {"domain": "www.shop.example"})
    assert answer.status_code in (400, 409)
    assert alice.delete("/v1/certs/www.shop.example").status_code == 204


# --- attaching ---------------------------------------------------------------------------------

def test_attach_and_detach_follow_workflow(tenants):
    alice, bob = tenants
    cert, key, _ = self_signed("*.sub.example")
    assert upload(alice, cert, key).json()["domains"] == []
    # A domain alice adds later that her certificate covers: attached.
    assert alice.post("/v1/apps/shop/domains", {"domain": "a.sub.example"}).status_code == 201
    assert alice.post("/v1/apps/shop/domains", {"domain": "b.sub.example"}).status_code == 201
    assert alice.get("/v1/certs/*.sub.example").json()["domains"] == ["a.sub.example", "b.sub.example"]
    assert alice.delete("/v1/certs/*.sub.example/domain/a.sub.example").status_code == 204
    assert alice.delete("/v1/certs/*.sub.example/domain/a.sub.example").status_code == 404
    assert served("shop") == {"*.sub.example": ("b.sub.example",)}
    answer = alice.post("/v1/certs/*.sub.example/domain/", {"domain": "a.sub.example"})
    assert answer.status_code == 201 and answer.json()["domains"] == ["a.sub.example", "b.sub.example"]
    assert alice.post("/v1/certs/*.sub.example/domain/", {"domain": "a.sub.example"}).status_code == 409
    # Not covered, not alice's, not there.
    answer = alice.post("/v1/certs/*.sub.example/domain/", {"domain": "www.shop.example"})
    assert answer.status_code == 400 and "not for www.shop.example" in str(answer.json())
    assert alice.post("/v1/certs/*.sub.example/domain/", {"domain": "www.bob.example"}).status_code == 403
    assert alice.post("/v1/certs/*.sub.example/domain/", {"domain": "zz.sub.example"}).status_code == 404
    assert alice.post("/v1/certs/nothing.example/domain/", {"domain": "a.sub.example"}).status_code == 404
    assert bob.delete("/v1/certs/*.sub.example/domain/a.sub.example").status_code == 404
    # A domain serves one certificate: a second covering one is not attached over it.
    other, other_key, _ = self_signed("a.sub.example")
    assert upload(alice, other, other_key).json()["domains"] == []
    assert alice.post("/v1/certs/a.sub.example/domain/", {"domain": "a.sub.example"}).status_code == 409


def test_a_collaborators_certificate_is_served_while_they_collaborate(tenants, admin_client):
    alice, _ = tenants
    carol = make_user("carol")
    assert alice.post("/v1/apps/shop/perms", {"username": "carol"}).status_code == 201
    cert, key, _ = self_signed("www.shop.example")
    assert upload(carol, cert, key).json()["domains"] == ["www.shop.example"]
    assert served("shop") == {"www.shop.example": ("www.shop.example",)}
    assert alice.delete("/v1/apps/shop/perms/carol").status_code == 204
    assert served("shop") == {}  # carol may no longer use shop: her certificate is not served there
    # An admin's certificate is attached to others' domains only on request.
    assert alice.delete("/v1/apps/shop/domains/www.shop.example").status_code == 204
    assert alice.post("/v1/apps/shop/domains", {"domain": "www.shop.example"}).status_code == 201
    admin_cert, admin_key, _ = self_signed("www.shop.example")
    assert upload(admin_client, admin_cert, admin_key).json()["domains"] == []
    answer = admin_client.post("/v1/certs/www.shop.example/domain/?owner=root", {"domain": "www.shop.example"})
    assert answer.status_code == 201, answer.content
    assert runtime.route_for(App.objects.get(id="shop"), []).certificates[0].cert == admin_cert


# --- destroy ------------------------------------------------------------------------------------

def test_destroying_an_app_removes_the_certificates_attached_only_to_it(alice):
    for app_id, domains in (("one", ["x.one.example", "a.multi.example"]), ("two", ["b.multi.example"])):
        assert alice.post("/v1/apps", {"id": app_id}).status_code == 201
        for d in domains:
            assert alice.post(f"/v1/apps/{app_id}/domains", {"domain": d}).status_code == 201
    assert upload(alice, *self_signed("x.one.example")[:2]).json()["domains"] == ["x.one.example"]
    assert upload(alice, *self_signed("*.multi.example")[:2]).json()["domains"] == ["a.multi.example",
                                                                                      "b.multi.example"]
    assert upload(alice, *self_signed("spare.example")[:2]).json()["domains"] == []
    assert alice.delete("/v1/apps/one").status_code == 204
    left = {c["common_name"]: c["domains"] for c in alice.get("/v1/certs").json()["results"]}
    assert left == {"*.multi.example": ["b.multi.example"], "spare.example": []}


# --- migration ----------------------------------------------------------------------------------

def test_migration_attaches_existing_certificates_to_their_owners_covered_domains(tenants):
    """0004's data step on certificates stored as before (global, unattached)."""
    import importlib

    from django.apps import apps as registry

    migration = importlib.import_module("deis.controller.api.migrations.0004_certificate_app")
    alice, bob = tenants
    alice_user, bob_user = App.objects.get(id="shop").owner, App.objects.get(id="bobs").owner
    carol = make_user("carol")
    assert alice.post("/v1/apps/shop/perms", {"username": "carol"}).status_code == 201
    assert alice.post("/v1/apps/shop/domains", {"domain": "api.shop.example"}).status_code == 201
    CertificateDomain.objects.all().delete()

    def old(owner, name, cert_key):
        cert, key, expires = cert_key
        return Certificate.objects.create(owner=owner, common_name=name, certificate=cert, key=key, expires=expires)

    old(bob_user, "*.shop.example", self_signed("*.shop.example"))  # bob's wildcard on alice's hosts
    old(alice_user, "www.shop.example", self_signed("www.shop.example"))
    old(carol.user, "api.shop.example", self_signed("api.shop.example"))  # a collaborator's
    old(bob_user, "www.bob.example", self_signed("www.bob.example", key=private_key("rsa", 512)))  # unfit
    migration.attach_existing(registry, None)
    attached = {a.domain.domain: (a.certificate.owner.username, a.certificate.common_name)
                for a in CertificateDomain.objects.select_related("domain", "certificate__owner")}
    assert attached == {"www.shop.example": ("alice", "www.shop.example"),
                        "api.shop.example": ("carol", "api.shop.example")}
    facts = Certificate.objects.get(common_name="www.shop.example")
    assert facts.fingerprint and facts.subject == "CN=www.shop.example" and facts.starts
    assert Certificate.objects.count() == 4  # the unfit one stays listed, for bob to delete
