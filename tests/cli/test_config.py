"""config:*, limits:*, tags:* and releases:*: each change makes a release, rollback makes another."""

import re


def test_config_set_list_unset(deis, user, app):
    result = deis.ok("config:set", "GREETING=hello world", "URL=postgres://u:p@h/db?a=b=c", "N=1", "-a", app)
    assert "Creating config... done, v2" in result.out
    listing = deis.ok("config", "-a", app).out
    assert listing.splitlines() == [f"=== {app} Config",
                                    "GREETING      hello world",
                                    "N             1",
                                    "URL           postgres://u:p@h/db?a=b=c"]
    assert deis.ok("config:list", "--oneline", "-a", app).out.strip() == \
        "GREETING=hello world N=1 URL=postgres://u:p@h/db?a=b=c"
    assert user.get(f"/v1/apps/{app}/config").json()["values"]["URL"] == "postgres://u:p@h/db?a=b=c"
    unset = deis.ok("config:unset", "N", "URL", "-a", app).out
    assert "done, v3" in unset and "GREETING      hello world" in unset and "URL" not in unset.split("===")[1]
    deis.ok("config:unset", "GREETING", "-a", app)
    assert deis.ok("config", "-a", app).out.splitlines()[1] == "No configuration"


def test_config_errors(deis, user, app):
    assert "Expected KEY=VALUE, got 'NOVALUE'" in deis("config:set", "NOVALUE", "-a", app).err
    assert "values: '1BAD' is not a valid config key" in deis.fails("config:set", "1BAD=x", "-a", app).err


def test_config_pull_and_push_round_trip(deis, user, app):
    deis.ok("config:set", "SPACES=a b  c", "EQ=x=y", "-a", app)
    env = deis.cwd / ".env"
    env.write_text("LOCAL=kept\nEQ=local\n")
    assert "Wrote 3 config values to .env" in deis.ok("config:pull", "-a", app).out
    assert env.read_text() == "EQ=local\nLOCAL=kept\nSPACES=a b  c\n"
    deis.ok("config:pull", "-a", app, "--overwrite")
    assert "EQ=x=y\n" in env.read_text()
    env.write_text('# comment\nexport MULTI="line1\\nline2"\nPLAIN = value with spaces\n\nQUOTED=\'single\'\n')
    result = deis.ok("config:push", "-a", app)
    assert "Creating config... done, v3" in result.out
    values = user.get(f"/v1/apps/{app}/config").json()["values"]
    assert values["MULTI"] == "line1\nline2" and values["PLAIN"] == "value with spaces"
    assert values["QUOTED"] == "single" and values["SPACES"] == "a b  c"
    deis.ok("config:pull", "-a", app, "--overwrite")
    assert 'MULTI="line1\\nline2"\n' in env.read_text()
    assert "could not read env from nope.env" in deis.fails("config:push", "-a", app, "-p", "nope.env").err


def test_limits(deis, user, app):
    result = deis.ok("limits:set", "web=512M", "worker=1G", "-a", app)
    assert "Applying limits... done, v2" in result.out
    assert "--- Memory\nweb         512M\nworker      1G\n\n--- CPU\nUnlimited" in result.out
    deis.ok("limits:set", "--cpu", "web=512", "-a", app)
    deis.ok("limits:unset", "worker", "-a", app)
    listing = deis.ok("limits", "-a", app).out
    assert listing.startswith(f"=== {app} Limits")
    assert "--- Memory\nweb      512M\n\n--- CPU\nweb      512" in listing
    deis.ok("limits:unset", "--cpu", "web", "-a", app)
    config = user.get(f"/v1/apps/{app}/config").json()
    assert config["memory"] == {"web": "512M"} and config["cpu"] == {}
    assert "memory" in deis.fails("limits:set", "web=lots", "-a", app).err


def test_tags(deis, user, app):
    assert "environ      prod" in deis.ok("tags:set", "environ=prod", "rack=1", "-a", app).out
    deis.ok("tags:unset", "rack", "-a", app)
    assert deis.ok("tags", "-a", app).out.splitlines() == [f"=== {app} Tags", "environ      prod"]
    deis.ok("tags:unset", "environ", "-a", app)
    assert "No tags defined" in deis.ok("tags:list", "-a", app).out


def test_releases_info_and_rollback(deis, user, app):
    deis.ok("config:set", "GREETING=hello", "-a", app)
    deis.ok("config:set", "GREETING=bye", "-a", app)
    lines = deis.ok("releases", "-a", app).out.splitlines()
    assert lines[0] == f"=== {app} Releases"
    assert re.match(rf"v3\s+Just now\s+{user.username} changed GREETING$", lines[1])
    assert re.match(rf"v2\s+Just now\s+{user.username} added GREETING$", lines[2])
    assert lines[3].startswith("v1 ")
    assert "Rolling back to v2... done, v4" in deis.ok("rollback", "v2", "-a", app).out
    assert user.get(f"/v1/apps/{app}/config").json()["values"] == {"GREETING": "hello"}
    assert "Rolling back one release... done, v5" in deis.ok("releases:rollback", "-a", app).out
    info = deis.ok("releases:info", "4", "-a", app).out
    assert f"=== {app} Release v4" in info and f"summary: {user.username} rolled back to v2" in info
    assert f"{app} has no release v99" in deis.fails("releases:info", "v99", "-a", app).err
    assert "Expected a release like v3" in deis("rollback", "latest", "-a", app).err
