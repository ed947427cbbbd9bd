"""What every app container and build runs with: the platform's limits and its cut privileges.

One place for them, so the Docker backend's processes, one-offs and the builder's build containers
are confined alike. Defaults suit ordinary web apps (Heroku's standard dyno: 512 MB, 256
processes); DEIS_DEFAULT_MEMORY, DEIS_PIDS_LIMIT, DEIS_LOG_MAX_SIZE and DEIS_LOG_MAX_FILES change
them for the platform, `deis limits:set` the memory per app and type."""

from __future__ import annotations

import dataclasses
import os

from deis import rules

# Docker's default set without NET_RAW (raw packets: spoofing on a shared L2), MKNOD, SETFCAP,
# SETPCAP, SYS_CHROOT and AUDIT_WRITE, which ordinary apps never need.
CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETGID", "SETUID")


@dataclasses.dataclass(frozen=True)
class ContainerLimits:
    memory: str = "512m"  # when the app sets none for the type
    pids: int = 256
    log_max_size: str = "10m"  # json-file rotation: the logger reads the stream as it is written
    log_max_files: int = 3

    @classmethod
    def from_environment(cls, environ=None) -> "ContainerLimits":
        environ = os.environ if environ is None else environ
        default = cls()
        memory = rules.size_setting(environ.get("DEIS_DEFAULT_MEMORY"))
        return cls(memory=rules.docker_memory(rules.format_memory(memory)) if memory else default.memory,
                   pids=int(environ.get("DEIS_PIDS_LIMIT") or default.pids),
                   log_max_size=environ.get("DEIS_LOG_MAX_SIZE") or default.log_max_size,
                   log_max_files=int(environ.get("DEIS_LOG_MAX_FILES") or default.log_max_files))

    def create_options(self, memory: str | None = None) -> dict:
        """Keyword arguments for docker-py's containers.create: limits and cut privileges."""
        limit = memory or self.memory
        return dict(
            mem_limit=limit, memswap_limit=limit,  # no swap beyond the limit
            pids_limit=self.pids,
            cap_drop=["ALL"], cap_add=list(CAPABILITIES),
            security_opt=["no-new-privileges"],
            log_config={"Type": "json-file",
                        "Config": {"max-size": self.log_max_size, "max-file": str(self.log_max_files)}})
