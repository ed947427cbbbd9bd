import pytest

from tests.pki import other_key_pem, self_signed, ssh_public_key

pytestmark = pytest.mark.django_db


def test_domains_add_list_remove(alice, bob, app):
    answer = alice.post(f"/v1/apps/{app}/domains", {"domain": "WWW.Example.com."})
    assert answer.status_code == 201 and answer.json()["domain"] == "www.example.com"
    alice.post(f"/v1/apps/{app}/domains", {"domain": "*.shop.example.com"})
    listed = alice.get(f"/v1/apps/{app}/domains").json()
    assert [d["domain"] for d in listed["results"]] == ["*.shop.example.com", "www.example.com"]
    bob.post("/v1/apps", {"id": "bob-app"})
    taken = bob.post("/v1/apps/bob-app/domains", {"domain": "www.example.com"})
    assert taken.status_code == 409 and "already in use" in taken.json()["detail"]
    assert bob.delete(f"/v1/apps/{app}/domains/www.example.com").status_code == 403
    assert alice.delete(f"/v1/apps/{app}/domains/www.example.com").status_code == 204
    assert alice.delete(f"/v1/apps/{app}/domains/www.example.com").status_code == 404


@pytest.mark.parametrize("domain", [
    "", "localhost", "nodot", "-bad.example.com", "bad-.example.com", "a..b.com", "under_score.com",
    "x" * 64 + ".com", "1.2.3.4", "other.localhost", "sp ace.com", "a.*.com",
])
def test_domain_validation(alice, app, domain):
    answer = alice.post(f"/v1/apps/{app}/domains", {"domain": domain})
    assert answer.status_code == 400, (domain, answer.content)
    assert "domain" in answer.json()


def test_certificate_lifecycle(alice, bob, admin_client):
    cert, key, expires = self_signed("www.example.com")
    answer = alice.post("/v1/certs", {"certificate": cert, "key": key})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["common_name"] == "www.example.com"
    assert body["expires"] == expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "key" not in body
    assert [c["common_name"] for c in alice.get("/v1/certs").json()["results"]] == ["www.example.com"]
    assert bob.get("/v1/certs").json()["count"] == 0
    assert bob.get("/v1/certs/www.example.com").status_code == 404
    assert admin_client.get("/v1/certs/www.example.com").status_code == 200
    again = alice.post("/v1/certs", {"certificate": cert, "key": key})
    assert again.status_code == 409
    assert alice.delete("/v1/certs/www.example.com").status_code == 204
    assert alice.get("/v1/certs/www.example.com").status_code == 404


def test_certificate_common_name_from_san_or_given(alice):
    cert, key, _ = self_signed(None, sans=("api.example.com", "x.example.com"))
    assert alice.post("/v1/certs", {"certificate": cert, "key": key}).json()["common_name"] == "api.example.com"
    cert, key, _ = self_signed("other.example.com", sans=("given.example.com",))
    answer = alice.post("/v1/certs", {"certificate": cert, "key": key, "common_name": "Given.example.com"})
    assert answer.json()["common_name"] == "given.example.com"
    # A given name must be one the certificate is for (nginx would serve it, clients would refuse it).
    answer = alice.post("/v1/certs", {"certificate": cert, "key": key, "common_name": "elsewhere.example.com"})
    assert answer.status_code == 400 and "not for elsewhere.example.com" in str(answer.json())
    answer = alice.post("/v1/certs", {"certificate": cert, "key": key, "common_name": "no such host"})
    assert answer.status_code == 400 and "common_name" in answer.json()


def test_certificate_shows_workflow_fields(alice, app):
    alice.post(f"/v1/apps/{app}/domains", {"domain": "www.example.com"})
    cert, key, expires = self_signed("www.example.com", sans=("www.example.com", "example.com"))
    body = alice.post("/v1/certs", {"certificate": cert, "key": key}).json()
    assert body["name"] == body["common_name"] == "www.example.com"
    assert body["san"] == ["www.example.com", "example.com"]
    assert body["domains"] == ["www.example.com"]
    assert len(body["fingerprint"].split(":")) == 32
    assert body["subject"] == body["issuer"] == "CN=www.example.com"
    assert body["starts"] < body["expires"] == expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "key" not in body


@pytest.mark.parametrize("case", ["mismatch", "garbage-cert", "garbage-key", "no-pem", "missing-key"])
def test_certificate_validation(alice, case):
    cert, key, _ = self_signed("www.example.com")
    body = {"certificate": cert, "key": key}
    if case == "mismatch":
        body["key"] = other_key_pem()
    elif case == "garbage-cert":
        body["certificate"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    elif case == "garbage-key":
        body["key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    elif case == "no-pem":
        body["certificate"] = "hello"
    else:
        del body["key"]
    answer = alice.post("/v1/certs", body)
    assert answer.status_code == 400, answer.content
    if case == "mismatch":
        assert "does not match" in str(answer.json())


def test_keys_lifecycle(alice, bob):
    public = ssh_public_key("ed25519", "alice@laptop")
    answer = alice.post("/v1/keys", {"id": "alice@laptop", "public": public})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["owner"] == "alice" and body["public"] == public
    assert len(body["fingerprint"].split(":")) == 16
    rsa_key = ssh_public_key("rsa", "work")
    assert alice.post("/v1/keys", {"id": "work", "public": rsa_key}).status_code == 201
    assert [k["id"] for k in alice.get("/v1/keys").json()["results"]] == ["alice@laptop", "work"]
    assert bob.get("/v1/keys").json()["count"] == 0
    dup = bob.post("/v1/keys", {"id": "mine", "public": public})
    assert dup.status_code == 409 and "registered already" in dup.json()["detail"]
    same_name = alice.post("/v1/keys", {"id": "work", "public": ssh_public_key()})
    assert same_name.status_code == 409
    assert alice.get("/v1/keys/work").json()["public"] == rsa_key
    assert bob.delete("/v1/keys/work").status_code == 404
    assert alice.delete("/v1/keys/work").status_code == 204
    assert alice.get("/v1/keys/work").status_code == 404


@pytest.mark.parametrize("public", [
    "", "ssh-rsa", "ssh-rsa not-base64!!", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBad",
    "-----BEGIN PUBLIC KEY-----", "ssh-rsa AAAA\nssh-rsa BBBB",
])
def test_key_validation(alice, public):
    answer = alice.post("/v1/keys", {"id": "k", "public": public})
    assert answer.status_code == 400, answer.content


def test_key_id_validation(alice):
    assert alice.post("/v1/keys", {"id": "bad id/with slash", "public": ssh_public_key()}).status_code == 400
