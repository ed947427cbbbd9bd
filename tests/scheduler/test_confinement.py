"""The pieces that confine containers, without an engine: who container root is, the isolation
chain's rules, the limits every container gets, and which images an app may name."""

from deis.scheduler import isolation, userns
from deis.scheduler.limits import CAPABILITIES, ContainerLimits


class FakeClient:
    def __init__(self, info):
        self._info, self.asked = info, 0

    def info(self):
        self.asked += 1
        return self._info


def test_container_root_is_read_from_the_engines_remapped_data_directory():
    remapped = FakeClient({"SecurityOptions": ["name=seccomp,profile=default", "name=userns"],
                           "DockerRootDir": "/var/lib/docker/100000.100000"})
    assert userns.container_root(remapped) == (100000, 100000)
    assert userns.container_root(remapped) == (100000, 100000) and remapped.asked == 1  # asked once
    plain = FakeClient({"SecurityOptions": ["name=seccomp,profile=default"], "DockerRootDir": "/var/lib/docker"})
    assert userns.container_root(plain) == (0, 0) and not userns.remapped(plain)


def test_hand_over_makes_a_directory_container_roots_and_private(tmp_path, monkeypatch):
    owned = []
    monkeypatch.setattr(userns, "container_root", lambda client: (4242, 4343))
    monkeypatch.setattr(userns.os, "chown", lambda path, uid, gid: owned.append((str(path), uid, gid)))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "a").write_text("x")
    (tmp_path / "cache" / "a").chmod(0o644)
    userns.hand_over(tmp_path / "cache", client=None)
    assert {p for p, _, _ in owned} == {str(tmp_path / "cache"), str(tmp_path / "cache" / "a")}
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "cache" / "a").stat().st_mode & 0o777 == 0o600


def test_the_isolation_chain_accepts_replies_and_the_routers_ports_and_refuses_the_rest():
    rules = isolation.wanted_rules((443, 80, 80))
    assert rules[0] == ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]
    assert rules[1:3] == [["-p", "tcp", "--dport", "80", "-j", "ACCEPT"], ["-p", "tcp", "--dport", "443", "-j", "ACCEPT"]]
    assert rules[-2:] == [["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"], ["-j", "DROP"]]
    names = {isolation.bridge_name(f"deis-app{i}") for i in range(1000)}
    assert len(names) == 1000 and all(n.startswith("dapp") and len(n) <= 15 for n in names)


def test_every_container_gets_the_platforms_limits():
    options = ContainerLimits().create_options()
    assert options["mem_limit"] == options["memswap_limit"] == "512m" and options["pids_limit"] == 256
    assert options["cap_drop"] == ["ALL"] and "NET_RAW" not in options["cap_add"] == list(CAPABILITIES)
    assert options["security_opt"] == ["no-new-privileges"]
    assert ContainerLimits().create_options("64m")["mem_limit"] == "64m"
    configured = ContainerLimits.from_environment({"DEIS_DEFAULT_MEMORY": "1G", "DEIS_PIDS_LIMIT": "64",
                                                    "DEIS_LOG_MAX_SIZE": "1m", "DEIS_LOG_MAX_FILES": "2"})
    assert configured.create_options()["mem_limit"] == "1g" and configured.pids == 64
    assert configured.create_options()["log_config"]["Config"] == {"max-size": "1m", "max-file": "2"}
