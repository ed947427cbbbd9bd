"""keys:*: the SSH public keys allowed to `git push` your apps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import click

from ..common import client
from ..errors import DeisError
from ..output import echo, heading, working

PUBLIC_KEY = re.compile(r"^(ssh-[a-z0-9]+|ecdsa-[^ ]+|sk-[^ ]+) ([A-Za-z0-9+/=]+) ?(.*)$")
KEY_ID = re.compile(r"^[A-Za-z0-9_.@+-]+$")


@dataclass
class PublicKey:
    path: Path
    kind: str
    data: str
    comment: str

    @property
    def id(self) -> str:
        """The comment (like alice@laptop) when it makes a valid name, else the file name."""
        return self.comment if KEY_ID.match(self.comment) else self.path.name.removesuffix(".pub")


def parse_key(path: Path) -> PublicKey:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise DeisError(f"could not read {path}: {exc.strerror}")
    match = PUBLIC_KEY.match(text)
    if not match:
        raise DeisError(f"could not parse SSH public key {path} (expected a line like `ssh-ed25519 AAAA... comment`)")
    return PublicKey(path, *match.groups())


def choose_key() -> PublicKey:
    """Offer ~/.ssh/*.pub and let the user pick one (or give a path)."""
    found = sorted((Path.home() / ".ssh").glob("*.pub"))
    if not found:
        raise DeisError("No SSH public keys found in ~/.ssh: give a path (`deis keys:add PATH`) "
                        "or create a key with `ssh-keygen -t ed25519`.")
    keys = [parse_key(path) for path in found]
    echo("Found the following SSH public keys:")
    for number, key in enumerate(keys, 1):
        echo(f"{number}) {key.path.name} {key.comment}")
    echo("0) Enter path to pubfile (or use keys:add <key_path>)")
    choice = click.prompt("Which would you like to use with Deis?", type=click.IntRange(0, len(keys)), default=1)
    if choice == 0:
        return parse_key(Path(click.prompt("Enter the path to the pubkey file")).expanduser())
    return keys[choice - 1]


@click.command("keys:list")
def keys_list():
    """List your SSH keys."""
    keys = client().results("/v1/keys")
    if not keys:
        echo("No keys found")
        return
    heading(f"{keys[0]['owner']} Keys")
    for key in keys:
        echo(f"{key['id']} {key['public'][:16]}...{key['public'][-10:]}")


@click.command("keys:add")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def keys_add(path):
    """Add an SSH public key (without PATH, choose one of ~/.ssh/*.pub)."""
    key = parse_key(Path(path)) if path else choose_key()
    message = f"Uploading {key.id} to Deis..."
    with working(message):
        client().post("/v1/keys", {"id": key.id, "public": f"{key.kind} {key.data} {key.comment}".strip()})
    echo(f"{message} done")


@click.command("keys:remove")
@click.argument("key")
def keys_remove(key):
    """Remove one of your SSH keys by its name."""
    with working(f"Removing {key} SSH Key..."):
        client().delete(f"/v1/keys/{key}")
    echo(f"Removing {key} SSH Key... done")


commands = [keys_list, keys_add, keys_remove]
