"""maintenance:* and whitelist:* against a live controller."""

from tests.conftest import unique

from .conftest import log_in


def test_maintenance_on_info_off(deis, user, app):
    assert deis.ok("maintenance:info", "-a", app).out.strip() == f"Maintenance mode is off for {app}"
    assert f"Enabling maintenance mode for {app}... done" in deis.ok("maintenance:on", "-a", app).out
    assert deis.ok("maintenance:info", "--app", app).out.strip() == f"Maintenance mode is on for {app}"
    assert user.get(f"/v1/apps/{app}/settings/").json()["maintenance"] is True
    assert f"Disabling maintenance mode for {app}... done" in deis.ok("maintenance:off", "-a", app).out
    assert deis.ok("maintenance:info", "-a", app).out.strip() == f"Maintenance mode is off for {app}"
    assert "maintenance:on" in deis.ok("maintenance").out  # the bare topic lists its commands


def test_whitelist_add_list_remove(deis, user, app):
    assert deis.ok("whitelist", "-a", app).out.splitlines() == [f"=== {app} Whitelisted Addresses",
                                                               f"No addresses: everybody may use {app}"]
    out = deis.ok("whitelist:add", "10.1.2.3/8, 203.0.113.7", "-a", app).out
    assert f"Adding 10.1.2.3/8, 203.0.113.7 to {app} whitelist... done" in out
    deis.ok("whitelist:add", "2001:db8::/32", "10.0.0.0/8", "-a", app)  # several arguments; a duplicate
    listed = deis.ok("whitelist:list", "-a", app).out.splitlines()
    assert listed == [f"=== {app} Whitelisted Addresses", "10.0.0.0/8", "203.0.113.7/32", "2001:db8::/32"]
    assert user.get(f"/v1/apps/{app}/whitelist/").json()["addresses"] == listed[1:]
    out = deis.ok("whitelist:remove", "203.0.113.7,10.0.0.0/8", "-a", app).out
    assert f"Removing 203.0.113.7, 10.0.0.0/8 from {app} whitelist... done" in out
    assert deis.ok("whitelist", "-a", app).out.splitlines()[1:] == ["2001:db8::/32"]
    assert "198.51.100.1/32 is not in the allow-list" in deis.fails("whitelist:remove", "198.51.100.1", "-a", app).err


def test_whitelist_errors_are_clear(deis, user, app):
    err = deis.fails("whitelist:add", "10.0.0.0/33", "-a", app).err
    assert "addresses: '10.0.0.0/33' is not an IPv4 or IPv6 address or network" in err
    assert "'nope' is not an IPv4" in deis.fails("whitelist:add", "10.0.0.0/8,nope", "-a", app).err
    assert user.get(f"/v1/apps/{app}/whitelist/").json()["addresses"] == []
    many = ",".join(f"10.0.{i // 256}.{i % 256}" for i in range(101))
    assert "at most 100 addresses" in deis.fails("whitelist:add", many, "-a", app).err
    usage = deis("whitelist:add", ",", "-a", app)
    assert usage.code != 0 and "Give the addresses" in usage.err
    assert deis("whitelist:add", "-a", app).code != 0  # no address at all


def test_another_user_is_told_whose_app_it_is(deis, user, app, live):
    other = live.register(unique("other"))
    log_in(deis, other)
    assert f"ask its owner, {user.username}" in deis.fails("maintenance:on", "-a", app).err
    assert f"ask its owner, {user.username}" in deis.fails("whitelist:add", "10.0.0.0/8", "-a", app).err
    assert f"ask its owner, {user.username}" in deis.fails("whitelist", "-a", app).err
    assert "No app named 'nosuch-app'" in deis.fails("maintenance:info", "-a", "nosuch-app").err
    assert user.get(f"/v1/apps/{app}/settings/").json()["maintenance"] is False
