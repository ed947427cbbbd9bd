"""domains:*, certs:*, keys:*, perms:* and users:list."""

import datetime
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from tests.conftest import unique

from .conftest import log_in


def self_signed(folder, host):
    """Write host.crt and host.key (a self-signed certificate for `host`); return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{host}.crt", folder / f"{host}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def ssh_public_key(path, comment):
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{public} {comment}\n")
    return public


def test_domains(deis, user, app):
    domain = f"{unique('www')}.example.com"
    assert f"Adding {domain} to {app}... done" in deis.ok("domains:add", domain, "-a", app).out
    assert deis.ok("domains", "-a", app).out.splitlines() == [f"=== {app} Domains", domain]
    assert "already in use" in deis.fails("domains:add", domain, "-a", app).err
    assert f"Removing {domain} from {app}... done" in deis.ok("domains:remove", domain, "-a", app).out
    assert "No domains" in deis.ok("domains:list", "-a", app).out
    assert "is not a domain of" in deis.fails("domains:remove", domain, "-a", app).err


def test_certs(deis, user, tmp_path):
    host = f"{unique('secure')}.example.com"
    cert, key = self_signed(tmp_path, host)
    assert "No certs" in deis.ok("certs").out
    result = deis.ok("certs:add", str(cert), str(key))
    assert result.out.splitlines() == ["Adding SSL endpoint... done", host]
    assert re.search(rf"^{re.escape(host)}\s+\d{{4}}-", deis.ok("certs:list").out, re.M)
    info = deis.ok("certs:info", host).out
    assert f"common_name: {host}" in info and f"owner:       {user.username}" in info
    assert "exists already" in deis.fails("certs:add", str(cert), str(key)).err
    assert f"Removing {host}... done" in deis.ok("certs:remove", host).out
    assert f"No certificate for {host}" in deis.fails("certs:info", host).err
    _, other_key = self_signed(tmp_path, "other.example.com")
    assert "key" in deis.fails("certs:add", str(cert), str(other_key)).err
    assert "could not read" in deis.fails("certs:add", str(tmp_path / "missing.crt"), str(key)).err


def test_certs_attach_detach(deis, user, app, tmp_path):
    host = f"{unique('tls')}.example.com"
    deis.ok("domains:add", host, "-a", app)
    cert, key = self_signed(tmp_path, host)
    deis.ok("certs:add", str(cert), str(key))  # covers a domain of the user's app: attached
    assert f"domains:     {host}" in deis.ok("certs:info", host).out
    assert "done" in deis.ok("certs:detach", host, host).out
    assert "(none: not served)" in deis.ok("certs:info", host).out
    assert "done" in deis.ok("certs:attach", host, host).out
    assert "attached already" in deis.fails("certs:attach", host, host).err
    assert f"domains:     {host}" in deis.ok("certs:info", host).out


def test_keys_add_with_a_path(deis, user, tmp_path):
    comment = f"{user.username}@laptop"
    public = ssh_public_key(tmp_path / "work.pub", comment)
    assert f"Uploading {comment} to Deis... done" in deis.ok("keys:add", str(tmp_path / "work.pub")).out
    assert user.get("/v1/keys").json()["results"][0]["public"] == f"{public} {comment}"
    listing = deis.ok("keys").out.splitlines()
    assert listing == [f"=== {user.username} Keys", f"{comment} {public[:16]}...{comment[-10:]}"]
    assert "registered already" in deis.fails("keys:add", str(tmp_path / "work.pub")).err
    assert f"Removing {comment} SSH Key... done" in deis.ok("keys:remove", comment).out
    assert "No keys found" in deis.ok("keys:list").out
    (tmp_path / "junk.pub").write_text("not a key\n")
    assert "could not parse SSH public key" in deis.fails("keys:add", str(tmp_path / "junk.pub")).err


def test_keys_add_offers_the_keys_in_dot_ssh(deis, user):
    assert "No SSH public keys found" in deis.fails("keys:add").err
    ssh_public_key(deis.home / ".ssh" / "id_ed25519.pub", "")
    ssh_public_key(deis.home / ".ssh" / "id_rsa.pub", "me@desk")
    result = deis.ok("keys:add", input="1\n")
    assert "1) id_ed25519.pub" in result.out and "2) id_rsa.pub me@desk" in result.out
    assert "Uploading id_ed25519 to Deis... done" in result.out
    assert [k["id"] for k in user.get("/v1/keys").json()["results"]] == ["id_ed25519"]


def test_perms_let_a_collaborator_use_but_not_destroy(deis, live, user, app):
    other = live.register(unique("collab"))
    assert f"Adding {other.username} to {app} collaborators... done" in \
        deis.ok("perms:create", other.username, "-a", app).out
    assert deis.ok("perms:list", "-a", app).out.splitlines() == [f"=== {app}'s Users", other.username]
    assert "already a collaborator" in deis.fails("perms:create", other.username, "-a", app).err
    owner_home = deis.home
    deis.home = owner_home.parent / "collab-home"
    deis.home.mkdir()
    log_in(deis, other)
    deis.ok("config:set", "FROM_COLLAB=1", "-a", app)
    assert "You may not destroy" in deis.fails("destroy", "--confirm", app, "-a", app).err
    assert "You may not share" in deis.fails("perms:create", other.username, "-a", app).err
    deis.home = owner_home
    assert f"Removing {other.username} from {app} collaborators... done" in \
        deis.ok("perms:delete", other.username, "-a", app).out
    assert "No users" in deis.ok("sharing", "-a", app).out


def test_admin_perms_and_users(deis, live, admin, user):
    assert "Only platform administrators" in deis.fails("users").err
    assert "Only platform administrators" in deis.fails("perms:list", "--admin").err
    log_in(deis, admin)
    users = deis.ok("users:list").out
    assert users.startswith("=== Users") and re.search(r"^admin\s+\S+\s+yes", users, re.M)
    assert user.username in users
    assert f"Adding {user.username} to system administrators... done" in \
        deis.ok("perms:create", user.username, "--admin").out
    assert user.username in deis.ok("perms:list", "--admin").out.splitlines()
    deis.ok("perms:delete", user.username, "--admin")
    assert user.username not in deis.ok("perms", "--admin").out.splitlines()
    assert "either --app or --admin" in deis("perms:list", "--admin", "-a", "x").err
