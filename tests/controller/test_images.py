"""A build may name only its app's own images or images a registry serves (issue 11, point 3)."""

import pytest

from deis.images import image_problem, split


@pytest.mark.parametrize("image, why", [
    ("deis-apps/bobs-app:git-0123abcd", "not an image of web-shop"),
    ("registry.example.com:5000/deis-apps/bobs-app:v1", "not an image of web-shop"),
    ("deis/run:bookworm-1", "platform's own images"),
    ("deis/stack:bookworm-1", "platform's own images"),
    ("127.0.0.1:5000/anything:1", "loopback or link-local"),
    ("127.1.2.3/anything:1", "loopback or link-local"),
    ("[::1]:5000/anything:1", "pattern"),  # refused by the reference syntax already
    ("localhost:5000/anything:1", "this host"),
    ("169.254.169.254/latest:1", "loopback or link-local"),
    ("0.0.0.0:2375/anything:1", "loopback or link-local"),
    ("0af2d548ea03", "not by its id"),
    ("sha256:" + "a" * 64, "not by its id"),
])
def test_other_tenants_platform_and_local_images_are_refused(alice, bob, app, image, why):
    assert bob.post("/v1/apps", {"id": "bobs-app"}).status_code == 201
    before = alice.get(f"/v1/apps/{app}/releases").json()["count"]
    answer = alice.post(f"/v1/apps/{app}/builds", {"image": image})
    assert answer.status_code == 400, answer.content
    assert why in answer.json()["image"][0]
    assert "bob" not in answer.json()["image"][0].replace("bobs-app", "")  # names no other user
    assert alice.get(f"/v1/apps/{app}/releases").json()["count"] == before  # nothing recorded


@pytest.mark.parametrize("image", [
    "deis-apps/web-shop:git-0123abcd", "deis/example-go:latest", "busybox:1.36",
    "registry.example.com:5000/team/web:2", "10.0.0.5:5000/web:1", "quay.io/org/img@sha256:" + "b" * 64])
def test_own_and_registry_images_are_accepted(alice, app, image):
    answer = alice.post(f"/v1/apps/{app}/builds", {"image": image})
    assert answer.status_code == 201, answer.content


def test_reference_split():
    assert split("deis-apps/a:git-1") == ("", "deis-apps/a")
    assert split("host:5000/x/y:1@sha256:ab") == ("host:5000", "x/y")
    assert split("busybox") == ("", "busybox")
    assert image_problem("deis-apps/a", "a") is None
