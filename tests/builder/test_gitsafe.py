"""What may reach git from a BUILDPACK_URL, .buildpacks or a push: never an option (issue 11)."""

from __future__ import annotations

import pytest

from deis.builder.gitsafe import buildpack_url_error, git_url_error, object_id_error, ref_error
from deis.builder.hook import check_updates

SHA = "a" * 40


@pytest.mark.parametrize("value", [
    "python", "heroku/nodejs", "null", "https://github.com/heroku/heroku-buildpack-python.git",
    "https://github.com/x/bp.git#v1.2.3", "http://127.0.0.1:8080/bp.git#main", "git://example.com/bp.git",
    "https://example.com/bp.git#0123abcd", "https://example.com/bp.git#feature/x-y_z",
    "/var/lib/deis/buildpacks/bp", "file:///var/lib/deis/buildpacks/bp#v1",
])
def test_good_buildpack_urls(value):
    assert buildpack_url_error(value) is None


@pytest.mark.parametrize("value", [
    "https://example.com/bp.git#--upload-pack=touch /tmp/pwned", "https://example.com/bp.git#-b",
    "https://example.com/bp.git#", "https://example.com/bp.git#a..b", "https://example.com/bp.git#x.lock",
    "https://example.com/bp.git#x@{1}", "https://example.com/bp.git#a b", "https://example.com/bp.git#x~1",
    "https://example.com/bp.git#.hidden", "https://example.com/bp.git#x/", "--upload-pack=id",
    "-https://example.com/bp.git", "ssh://example.com/bp.git", "git@github.com:x/y.git",
    "ext::sh -c touch% /tmp/pwned", "file::///tmp/x", "https://example.com/b p.git",
    "https://example.com/bp.git\n--upload-pack=id", "https://exa\tmple.com/bp.git", "https://-oProxyCommand=id/bp",
    "https:///bp.git", "ruby", "file:///srv/bp#--orphan=x", "relative/path", "https://x:notaport/bp",
])
def test_bad_buildpack_urls(value):
    assert buildpack_url_error(value), value


def test_refs_and_urls():
    assert ref_error("v1") is None and ref_error("0" * 40) is None
    assert ref_error("-x") and ref_error("x\x00") and ref_error("@")
    assert git_url_error("https://github.com/x/y") is None
    assert "starts with '-'" in git_url_error("-x")
    assert object_id_error(SHA) is None and object_id_error("b" * 64) is None
    assert object_id_error("--all") and object_id_error("HEAD") and object_id_error("a" * 39)


def test_pushed_updates_are_checked():
    assert check_updates("app", [[SHA, "b" * 40, "refs/heads/master"]]) is None
    for update in (["--all", SHA, "refs/heads/master"], [SHA, "--output=/tmp/x", "refs/heads/master"],
                   [SHA, "HEAD", "refs/heads/master"]):
        assert "Unexpected input from git" in check_updates("app", [update])
    assert "deployed from master" in check_updates("app", [[SHA, "b" * 40, "refs/heads/-x"]])
