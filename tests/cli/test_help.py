"""`--help` works for every command, topic and shortcut, without a controller or a login."""

import re

import pytest

from deis.cli.main import SHORTCUTS, TOPICS, cli

NAMES = sorted(cli.commands) + sorted(TOPICS) + sorted(SHORTCUTS)


@pytest.mark.parametrize("name", NAMES)
def test_help(deis, name):
    result = deis.ok(name, "--help")
    assert result.out.startswith(f"Usage: deis {name}"), result


def test_root_help_lists_topics_and_shortcuts(deis):
    for args in ([], ["--help"], ["help"]):
        out = deis.ok(*args).out
        assert "Topics" in out and re.search(r"^  apps +manage applications", out, re.M) and "create    = apps:create" in out
        assert re.search(r"^  maintenance +enable or disable maintenance mode", out, re.M)
        assert re.search(r"^  whitelist +manage the addresses allowed", out, re.M)
        assert re.search(r"^  metrics +show the requests an app served", out, re.M)


def test_topic_help_lists_its_commands(deis):
    out = deis.ok("config", "--help").out
    for command in ("config:list", "config:set", "config:unset", "config:pull", "config:push"):
        assert command in out
    assert "auth:register" in deis.ok("auth").out


def test_help_command_and_version(deis):
    assert deis.ok("help", "config:set").out.startswith("Usage: deis config:set [OPTIONS] KEY=VALUE...")
    assert deis.ok("--version").out.startswith("deis ")
    assert "scale           -> ps:scale" in deis.ok("shortcuts").out


def test_unknown_command(deis):
    result = deis("apps:crete")
    assert result.code == 1 and "No such command 'apps:crete'" in result.err and "apps:create" in result.err
    assert deis("help", "nope").code == 1
