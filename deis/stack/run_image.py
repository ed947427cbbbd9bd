"""The run image: the stack plus an unprivileged `app` user and the launcher that starts a slug."""

from __future__ import annotations

import io
import tarfile

APP_UID = 1000

# Sources .profile.d/*.sh, then .profile, then runs the Procfile command under bash -c.
LAUNCHER = r"""#!/bin/bash
# deis-launch: start a buildpack app's process the way Heroku does.
cd /app || exit 1
if [ -d /app/.profile.d ]; then
    for __deis_profile in /app/.profile.d/*.sh; do
        if [ -r "$__deis_profile" ]; then . "$__deis_profile"; fi
    done
    unset __deis_profile
fi
if [ -r /app/.profile ]; then . /app/.profile; fi
if [ $# -eq 0 ]; then exec bash; fi
exec bash -c "$*"
"""


def dockerfile(stack_tag: str, version: str) -> str:
    return f"""FROM {stack_tag}
RUN echo 'app:x:{APP_UID}:{APP_UID}:app:/app:/bin/bash' >> /etc/passwd \\
 && echo 'app:x:{APP_UID}:' >> /etc/group \\
 && mkdir -p /app && chown {APP_UID}:{APP_UID} /app
COPY deis-launch /usr/local/bin/deis-launch
RUN chmod 0755 /usr/local/bin/deis-launch
ENV HOME=/app
WORKDIR /app
USER app
LABEL io.deis.stack.version="{version}" io.deis.stack.role="run"
ENTRYPOINT ["/usr/local/bin/deis-launch"]
CMD []
"""


def context(stack_tag: str, version: str) -> io.BytesIO:
    """An in-memory build context: the Dockerfile and the launcher."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text, mode in (("Dockerfile", dockerfile(stack_tag, version), 0o644),
                                 ("deis-launch", LAUNCHER, 0o755)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf
