"""builds:* and `deis pull`, and the commands that need a container runtime (scale, ps, logs, run):
without one the controller answers 503, and the CLI prints its reason and exits 1."""

import re

import pytest

RUNTIME = "No container runtime is configured"


def test_pull_records_a_build_and_a_release(deis, user, app):
    (deis.cwd / "Procfile").write_text("web: python -m http.server $PORT\nworker: python worker.py\n")
    assert "Creating build... done, v2" in deis.ok("pull", "example/web:1.0", "-a", app).out
    builds = user.get(f"/v1/apps/{app}/builds").json()["results"]
    assert [(b["image"], b["procfile"]) for b in builds] == [
        ("example/web:1.0", {"web": "python -m http.server $PORT", "worker": "python worker.py"})]
    release = user.get(f"/v1/apps/{app}/releases/v2").json()
    assert release["build"] == builds[0]["uuid"] and release["summary"].startswith(user.username)
    listing = deis.ok("builds", "-a", app).out
    assert listing.startswith(f"=== {app} Builds") and re.search(rf"{builds[0]['uuid']}\s+example/web:1.0", listing)
    info = deis.ok("builds:info", builds[0]["uuid"], "-a", app).out
    assert "image:    example/web:1.0" in info and "worker=python worker.py" in info
    assert "Creating build... done, v3" in deis.ok("builds:create", "example/web:2.0", "-a", app,
                                                    "--procfile", "web: ./serve").out
    assert user.get(f"/v1/apps/{app}/builds").json()["results"][0]["procfile"] == {"web": "./serve"}


def test_pull_needs_a_tag(deis, user, app):
    result = deis("pull", "example/web", "-a", app)
    assert result.code != 0 and "IMAGE must include a tag" in result.err
    assert "could not parse --procfile" in deis.fails("pull", "x:1", "-a", app, "--procfile", "nonsense").err


@pytest.mark.parametrize("command", [
    ["ps"], ["ps:list"], ["logs"], ["logs", "-n", "5"], ["logs", "-f"], ["ps:restart"], ["ps:restart", "web.1"],
])
def test_runtime_commands_print_the_controllers_reason(deis, user, app, command):
    assert RUNTIME in deis.fails(*command, "-a", app).err


def test_run_needs_a_build_then_a_runtime(deis, user, app):
    assert "has no build yet" in deis.fails("run", "-a", app, "ls", "-la").err
    deis.ok("pull", "example/web:1.0", "-a", app)
    result = deis.fails("run", "-a", app, "--", "python", "-c", "print(1)")
    assert "Running `python -c print(1)`..." in result.err and RUNTIME in result.err


def test_scale_needs_a_build_then_a_runtime(deis, user, app):
    assert "has no build yet" in deis.fails("scale", "web=2", "-a", app).err
    deis.ok("pull", "example/web:1.0", "-a", app, "--procfile", "web: ./serve")
    assert "Unknown process type 'worker'" in deis.fails("ps:scale", "worker=1", "-a", app).err
    assert RUNTIME in deis.fails("scale", "web=2", "-a", app).err
    assert "must be a whole number" in deis("scale", "web=two", "-a", app).err
