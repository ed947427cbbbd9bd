"""The original Deis v1.9.1 command-line client, unchanged in behaviour, against the live controller.

Each test is one user at a fresh terminal typing `deis ...`; assertions are on exit codes and the
lines the client prints, which it derives from the controller's answers (status codes, headers
such as Deis-Release, and JSON fields). A failing assertion here means the controller deviates from
what the v1 client expects (the contract in shared/deis-v1-api.md).
"""

from __future__ import annotations

import base64
import datetime
import json
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import free_port, unique

from .conftest import PASSWORD

RUNTIME_503 = "503 Service Unavailable"


def rsa_key_files(folder, comment):
    """An SSH key pair as ssh-keygen writes it; the v1 client parses only ssh-*/ecdsa-* public keys
    (its regex `ssh-...` does not match ssh-ed25519), so RSA."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    private = folder / "id_rsa"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()))
    pub = folder / "id_rsa.pub"
    pub.write_text(public.decode() + (f" {comment}" if comment else "") + "\n")
    return private, pub, public.decode()


def self_signed_certificate(folder, common_name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{common_name}.crt", folder / f"{common_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def config_line(key, value, keys):
    """A line of `deis config:list` / limits / tags: the key padded to the longest key + 5."""
    width = max(map(len, keys)) + 5
    return f"{key:<{width}} {value}"


def json_after(result, header):
    """The JSON document the client printed (json.dumps(indent=2)) after the line `header`."""
    text = result.stdout.split(header + "\n", 1)[1] if header else result.stdout
    return json.JSONDecoder().raw_decode(text.lstrip())[0]


# --- auth -----------------------------------------------------------------------------------------

def test_register_login_whoami_logout(terminal, live):
    me = terminal().register()
    settings = me.settings
    assert settings["controller"] == live.url and settings["username"] == me.username and settings["token"]

    me("whoami").ok().has_line(f"You are {me.username} at {live.url}")
    me("logout").ok().has_line("Logged out")
    me("whoami").ok().has_line("Not logged in. Use `deis login` or `deis register` to get started.")
    me("apps:list").fails().has_line("Could not find token. Use `deis login` or `deis register` to get started.")

    me("login", live.url, f"--username={me.username}", "--password=wrong-password").error(
        "401 Unauthorized")
    me.login(me.username)
    me("whoami").ok().has_line(f"You are {me.username} at {live.url}")
    # The controller URI may be given without a scheme; the client adds http://.
    me("login", live.url.removeprefix("http://"), f"--username={me.username}", f"--password={PASSWORD}").ok()

    # Registering a taken name: the client prints the controller's answer and exits 1.
    again = terminal()
    again("register", live.url, f"--username={me.username}", f"--password={PASSWORD}",
          "--email=x@example.com").fails().has("Registration failed: ", "username")


def test_login_to_something_that_is_not_a_controller(terminal):
    nowhere = f"http://127.0.0.1:{free_port()}"
    terminal()("login", nowhere, "--username=u", "--password=p").fails().has(
        f"{nowhere} does not appear to be a valid Deis controller.", "Specific Error:")


def test_passwd(terminal, live):
    me = terminal().register()
    me("auth:passwd", f"--password={PASSWORD}", "--new-password=n3w-pass").ok().has_line(
        "Password change succeeded.")
    me("auth:passwd", "--password=not-it", "--new-password=other-pass").fails().has("Password change failed: ")
    me("login", live.url, f"--username={me.username}", f"--password={PASSWORD}").error("401 Unauthorized")
    me.login(me.username, "n3w-pass")


def test_regenerate_token(terminal, live):
    me = terminal().register()
    old_token = me.settings["token"]
    me("auth:regenerate").ok().has_line("Token regenerated.")
    # The v1.9.1 client only saves the new token when docopt's args lack --username or --all, which
    # they never do (`if '--username' not in args or '--all' not in args`): it keeps the old token,
    # which the controller no longer accepts, so the user logs in again.
    assert me.settings["token"] == old_token
    me("apps:list").error("401 Unauthorized", "Invalid token")
    me.login(me.username)
    assert me.settings["token"] != old_token
    me("apps:list").ok().has_line("=== Apps")


def test_cancel_account(terminal, live):
    me = terminal().register()
    app = me.create_app()
    me("auth:cancel", f"--username={me.username}", f"--password={PASSWORD}", "--yes").error("409 Conflict")
    me("destroy", f"--app={app}", f"--confirm={app}").ok()
    me("auth:cancel", f"--username={me.username}", f"--password={PASSWORD}", "--yes").ok().has_line(
        "Please log in again in order to cancel this account", "Account cancelled")
    me("login", live.url, f"--username={me.username}", f"--password={PASSWORD}").error("401 Unauthorized")


def test_users_list_is_for_admins(terminal):
    me = terminal().register()
    me("users:list").error("403 Forbidden")
    admin = terminal().login("admin")
    admin("users:list").ok().has_line("=== Users", "admin", me.username)


# --- keys -----------------------------------------------------------------------------------------

def test_keys_add_list_remove(user, tmp_path):
    comment = f"{user.username}@laptop"
    _, pub, public = rsa_key_files(tmp_path, comment)
    user("keys:list").ok().has_line("No keys found")
    user("keys:add", str(pub)).ok().has_line(f"Uploading {comment} to Deis...done")
    # The client uploads "<type> <key>" (not the comment) and lists the first 16 and last 10 characters.
    user("keys:list").ok().has_line(f"=== {user.username} Keys", f"{comment} {public[:16]}...{public[-10:]}")
    user("keys:add", str(pub)).error("409 Conflict")
    user("keys:remove", comment).ok().has_line(f"Removing {comment} SSH Key... done")
    user("keys:list").ok().has_line("No keys found")
    user("keys:remove", comment).error("404 Not Found")

    # Without a comment the key is named after its file.
    plain = tmp_path / "plain"
    plain.mkdir()
    _, pub, _ = rsa_key_files(plain, None)
    user("keys:add", str(pub)).ok().has_line("Uploading id_rsa to Deis...done")
    user("keys").ok().has("\nid_rsa ssh-rsa AAAAB3Nz...")


# --- apps -----------------------------------------------------------------------------------------

def test_apps_create_list_info_destroy_without_remote(user, admin):
    app = unique("v1app")
    user("apps:create", app, "--no-remote").ok().has_line(
        f"Creating application... done, created {app}", f"remote available at ssh://git@{user.host}:2222/{app}.git")
    user("apps:create", app, "--no-remote").error("409 Conflict")
    user("apps:list").ok().has_line("=== Apps", app)
    user("apps").ok().has_line(app)  # `deis apps` is apps:list

    info = user("apps:info", "-a", app)
    assert info.stdout.startswith(f"=== {app} Application\n"), info.describe()
    shown = json_after(info, f"=== {app} Application")
    assert shown["id"] == app and shown["owner"] == user.username, info.describe()
    assert shown["url"].startswith(f"{app}.") and shown["uuid"] and shown["created"], info.describe()
    # apps:info goes on with ps:list (GET /containers), which needs a container runtime.
    if admin.get(f"/v1/apps/{app}/containers").status_code == 503:
        info.error(RUNTIME_503, "No container runtime")
    else:
        info.ok().has_line(f"=== {app} Processes", f"=== {app} Domains")

    # Without --confirm the client asks for the name; a wrong answer aborts.
    user("apps:destroy", f"--app={app}", input="not-it\n").ok().has(
        f"To proceed, type \"{app}\" or re-run this command with --confirm={app}").has_line("> Destroy aborted")
    user("apps:list").ok().has_line(app)
    destroyed = user("apps:destroy", f"--app={app}", f"--confirm={app}").ok().has_line(f"Destroying {app}... ")
    assert re.search(r"^done in \d+s$", destroyed.stdout, re.MULTILINE), destroyed.describe()
    user("apps:list").ok().lacks(app)
    user("apps:info", "-a", app).error("404 Not Found")


def test_apps_create_names_the_app_after_the_folder(user):
    app = unique("v1dir")
    folder = user.home / app
    folder.mkdir()
    user("create", "--no-remote", cwd=folder).ok().has_line(f"Creating application... done, created {app}")
    # Outside git, commands without --app also use the folder's name.
    user("info", cwd=folder).has_line(f"=== {app} Application")
    user("destroy", f"--confirm={app}", cwd=folder).ok().has_line(f"Destroying {app}... ")


def test_apps_create_in_a_git_repo_adds_the_deis_remote(user):
    repo = user.git_repo("project")
    app = unique("v1git")
    user("create", app, cwd=repo).ok().has_line(f"Creating application... done, created {app}",
                                                "Git remote deis added")
    remotes = user.git("remote", "-v", cwd=repo)
    assert f"deis\tssh://git@{user.host}:2222/{app}.git (push)" in remotes, remotes

    # In the repo, the app comes from the deis remote: no --app needed.
    user("config:set", "FROM_REMOTE=yes", cwd=repo).ok().has_line("Creating config... done, v2", f"=== {app}",
                                                                  "FROM_REMOTE: yes")
    user("config:list", cwd=repo).ok().has_line(f"=== {app} Config", config_line("FROM_REMOTE", "yes", ["FROM_REMOTE"]))
    user("git:remote", "--remote=other", cwd=repo).ok().has_line("Git remote other added")
    assert f"other\tssh://git@{user.host}:2222/{app}.git (fetch)" in user.git("remote", "-v", cwd=repo)

    user("apps:destroy", f"--confirm={app}", cwd=repo).ok().has_line(f"Destroying {app}... ", "Git remote deis removed")
    assert "deis\t" not in user.git("remote", "-v", cwd=repo)


def test_apps_create_in_a_git_repo_without_a_name_gets_a_generated_one(user):
    repo = user.git_repo("unnamed")
    created = user("create", cwd=repo).ok().has_line("Git remote deis added")
    names = [m.group(1) for m in map(re.compile(r"^Creating application\.\.\. done, created (\S+)$").match,
                                     created.lines) if m]
    assert len(names) == 1 and re.fullmatch(r"[a-z]+(-[a-z]+)+", names[0]), created.describe()
    assert f"/{names[0]}.git" in user.git("remote", "-v", cwd=repo)
    user("destroy", f"--confirm={names[0]}", cwd=repo).ok().has_line("Git remote deis removed")


# --- config, limits, tags -------------------------------------------------------------------------

def test_config_set_list_unset(user, tmp_path):
    app = user.create_app()
    user("config:list", "-a", app).ok().has_line(f"=== {app} Config", "No configuration")

    result = user("config:set", "FOO=bar", "BAZ=42", "URL=http://x.io/a=b", "-a", app).ok()
    result.has_line("Creating config... done, v2", f"=== {app}", "FOO: bar", "BAZ: 42", "URL: http://x.io/a=b")
    keys = ["BAZ", "FOO", "URL"]
    listing = user("config:list", "-a", app).ok()
    listing.has_line(f"=== {app} Config", config_line("BAZ", 42, keys), config_line("FOO", "bar", keys),
                     config_line("URL", "http://x.io/a=b", keys))
    user("config:list", "--oneline", "-a", app).ok().has_line("BAZ=42 FOO=bar URL=http://x.io/a=b")

    user("config:unset", "FOO", "-a", app).ok().has_line("Creating config... done, v3", f"=== {app}").lacks("FOO")
    user("config", "-a", app).ok().has_line(config_line("BAZ", 42, ["BAZ", "URL"])).lacks("FOO")
    user("config:set", "BAD-KEY=1", "-a", app).error("400 Bad Request")
    user("config:set", "GREETING=grüß dich", "-a", app).ok().has_line("GREETING: grüß dich")
    user("config:list", "-a", app).ok().has_line(config_line("GREETING", "grüß dich", ["BAZ", "GREETING", "URL"]))
    user("config:unset", "GREETING", "-a", app).ok().lacks("GREETING")

    # SSH_KEY from a private key file: the client sends it base64-encoded.
    private, _, _ = rsa_key_files(tmp_path, "deploy")
    user("config:set", f"SSH_KEY={private}", "-a", app).ok().has_line("Creating config... done, v6")
    pem = private.read_text()
    user("config:list", "--oneline", "-a", app).ok().has(f"SSH_KEY={base64.b64encode(pem.encode()).decode()}")


def test_limits_set_list_unset(user):
    app = user.create_app()
    user("limits:list", "-a", app).ok().has_line(f"=== {app} Limits", "--- Memory", "--- CPU", "Unlimited")
    memory = user("limits:set", "--memory", "web=512M", "-a", app).ok()
    memory.has_line("Applying limits... done, v2", f"=== {app} Limits", config_line("web", "512M", ["web"]))
    cpu = user("limits:set", "--cpu", "web=512", "-a", app).ok().has_line("Applying limits... done, v3")
    lines = cpu.lines
    assert lines.index(config_line("web", "512M", ["web"])) < lines.index("--- CPU") \
        < lines.index(config_line("web", 512, ["web"])), cpu.describe()
    user("limits", "-a", app).ok().has_line(config_line("web", "512M", ["web"]), config_line("web", 512, ["web"]))
    user("limits:set", "web=lots", "-a", app).error("400 Bad Request")

    unset = user("limits:unset", "--memory", "web", "-a", app).ok().has_line("Applying limits... done, v4")
    assert unset.stdout.split("--- CPU")[0].rstrip().endswith("Unlimited"), unset.describe()


def test_tags_set_list_unset(user):
    app = user.create_app()
    user("tags:list", "-a", app).ok().has_line(f"=== {app} Tags", "No tags defined")
    user("tags:set", "environ=prod", "rack=1", "-a", app).ok().has_line(
        "Applying tags... done, v2", f"=== {app} Tags", config_line("environ", "prod", ["environ", "rack"]),
        config_line("rack", 1, ["environ", "rack"]))
    user("tags", "-a", app).ok().has_line(config_line("environ", "prod", ["environ", "rack"]))
    user("tags:unset", "rack", "-a", app).ok().has_line("Applying tags... done, v3",
                                                        config_line("environ", "prod", ["environ"]))
    user("tags:unset", "environ", "-a", app).ok().has_line("Applying tags... done, v4", "No tags defined")


def test_deis_release_header_is_the_bare_release_number(user, admin):
    """The client prints "done, v{Deis-Release}" after config, limits, tags and pull: Deis v1 sent the
    header as the bare release number."""
    app = user.create_app()
    answer = admin.post(f"/v1/apps/{app}/config", json={"values": json.dumps({"K": "v"})})
    assert answer.status_code == 201, answer.text
    assert answer.headers["Deis-Release"] == "2", (
        f"CONTROLLER MISMATCH: POST /v1/apps/<id>/config answered Deis-Release: {answer.headers['Deis-Release']!r}; "
        "the v1 client expects the bare number '2' (it prints 'done, v' + header)")
    user("config:set", "K2=w", "-a", app).ok().has_line("Creating config... done, v3")


# --- builds, releases -----------------------------------------------------------------------------

def test_pull_records_a_build_and_a_release(user, admin):
    app = user.create_app()
    user("builds:list", "-a", app).ok().has_line(f"=== {app} Builds")
    user("pull", "deis/example-go:latest", "-a", app).ok().has_line("Creating build... done, v2")
    user("pull", "deis/example-go", "-a", app).fails().has_line("<image> must contain a tag")
    user("builds:create", "registry.example.com:5000/shop:v7", "--procfile=web: ./shop serve", "-a", app).ok() \
        .has_line("Creating build... done, v3")
    # A Procfile in the current folder gives the default process types.
    (user.home / "Procfile").write_text("web: ./serve\nworker: ./work --hard\n")
    user("pull", "deis/example-go:1.0", "-a", app).ok().has_line("Creating build... done, v4")

    listing = user("builds", "-a", app).ok()
    assert listing.lines[0] == f"=== {app} Builds", listing.describe()
    rows = [line.split() for line in listing.lines[1:] if line.strip()]
    assert len(rows) == 3 and all(len(row) == 2 for row in rows), listing.describe()  # uuid, created

    builds = {b["uuid"]: b for b in admin.get(f"/v1/apps/{app}/builds").json()["results"]}
    assert {row[0] for row in rows} == set(builds), (listing.describe(), builds)
    by_image = {b["image"]: b["procfile"] for b in builds.values()}
    assert by_image["registry.example.com:5000/shop:v7"] == {"web": "./shop serve"}, by_image
    assert by_image["deis/example-go:1.0"] == {"web": "./serve", "worker": "./work --hard"}, by_image
    latest = json_after(user("releases:info", "v4", "-a", app).ok(), None)
    assert latest["version"] == 4 and latest["build"], latest


def test_releases_list_info_rollback(user):
    app = user.create_app()
    user("pull", "deis/example-go:latest", "-a", app).ok().has_line("Creating build... done, v2")
    user("config:set", "A=1", "-a", app).ok().has_line("Creating config... done, v3")

    listing = user("releases:list", "-a", app).ok()
    assert listing.lines[0] == f"=== {app} Releases", listing.describe()
    rows = [line for line in listing.lines[1:] if line.strip()]
    assert [row.split()[0] for row in rows] == ["v3", "v2", "v1"], listing.describe()
    # "v{version:<6} {created:<28} {summary}", created made readable ("Just now", "3 minutes ago").
    assert all(row[8:].startswith(("Just now ", "1 minute ago ")) for row in rows), listing.describe()
    assert rows[0].endswith(f" {user.username} added A"), listing.describe()
    assert rows[1].endswith(f" {user.username} deployed deis/example-go:latest"), listing.describe()

    info = json_after(user("releases:info", "v2", "-a", app).ok(), None)
    assert info["version"] == 2 and info["app"] == app and info["owner"] == user.username, info
    assert info["build"] and info["config"] and info["created"], info
    assert json_after(user("releases:info", "1", "-a", app).ok(), None)["version"] == 1
    user("releases:info", "v9", "-a", app).error("404 Not Found")

    # Rolling back copies the target's build and config: v2 had no A.
    user("releases:rollback", "v2", "-a", app).ok().has_line("Rolling back to v2... done, v4")
    user("config:list", "-a", app).ok().has_line("No configuration")
    # Without a version: the release before the current one (v3), where A=1.
    user("rollback", "-a", app).ok().has_line("Rolling back one release... done, v5")
    user("config:list", "-a", app, "--oneline").ok().has_line("A=1")
    rows = [line for line in user("releases", "-a", app).ok().lines if line.startswith("v")]
    assert rows[0].startswith("v5 ") and rows[0].endswith(f" {user.username} rolled back to v3"), rows
    assert rows[1].startswith("v4 ") and rows[1].endswith(f" {user.username} rolled back to v2"), rows


def test_the_client_spinner_runs(user):
    """Once with the client's progress animation on (it runs in a thread while requests are made)."""
    user.progress = True
    app = unique("v1spin")
    created = user("apps:create", app, "--no-remote").ok()
    # "Creating application... " then spinner frames erased with backspaces, then the result.
    assert re.fullmatch(rf"Creating application\.\.\. [^\n]*\x08[^\n]*done, created {app}\n.*", created.stdout,
                        re.DOTALL), created.describe()


# --- domains, certs -------------------------------------------------------------------------------

def test_domains_add_list_remove(user):
    app = user.create_app()
    domain = f"{unique('www')}.example.com"
    user("domains:list", "-a", app).ok().has_line(f"=== {app} Domains", "No domains")
    user("domains:add", domain, "-a", app).ok().has_line(f"Adding {domain} to {app}... done")
    user("domains:list", "-a", app).ok().has_line(f"=== {app} Domains", domain)
    user("domains", "-a", app).ok().has_line(domain)
    other = user.create_app()
    user("domains:add", domain, "-a", other).error("409 Conflict")
    user("domains:remove", domain, "-a", app).ok().has_line(f"Removing {domain} from {app}... done")
    user("domains:list", "-a", app).ok().has_line("No domains")
    user("domains:remove", domain, "-a", app).error("404 Not Found")


def test_certs_add_list_remove(user, tmp_path):
    common_name = f"{unique('secure')}.example.com"
    cert, key = self_signed_certificate(tmp_path, common_name)
    user("certs:list").ok().has_line("No certs")
    user("certs:add", str(cert), str(key)).ok().has_line("Adding SSL endpoint... done", common_name)
    listing = user("certs:list").ok()
    header = [line for line in listing.lines if line.startswith("Common Name")]
    row = [line for line in listing.lines if line.startswith(common_name)]
    assert header and row and header[0].split() == ["Common", "Name", "Expires"], listing.describe()
    assert len(row[0].split()) >= 2, listing.describe()  # the expiry date follows the name
    user("certs").ok().has(common_name)
    user("certs:add", str(cert), str(key)).error("409 Conflict")
    user("certs:remove", common_name).ok().has_line(f"Removing {common_name}... Done.")
    user("certs:list").ok().has_line("No certs")
    user("certs:remove", common_name).error("404 Not Found")

    # A key that does not match the certificate is refused.
    other_cert, _ = self_signed_certificate(tmp_path, f"{unique('other')}.example.com")
    user("certs:add", str(other_cert), str(key)).error("400 Bad Request")


# --- sharing and admins ---------------------------------------------------------------------------

def test_perms_on_an_app(terminal):
    owner, friend = terminal().register(), terminal().register()
    app = owner.create_app()
    friend("config:list", "-a", app).error("403 Forbidden")

    owner("perms:create", friend.username, "-a", app).ok().has_line(
        f"Adding {friend.username} to {app} collaborators... done")
    assert json_after(owner("perms:list", "-a", app).ok(), None) == {"users": [friend.username]}
    owner("sharing", "-a", app).ok().has(friend.username)

    friend("apps:list").ok().has_line(app)
    friend("config:set", "SHARED=1", "-a", app).ok().has_line("Creating config... done, v2")
    friend("perms:create", owner.username, "-a", app).error("403 Forbidden")
    friend("apps:destroy", f"--app={app}", f"--confirm={app}").error("403 Forbidden")

    owner("perms:delete", friend.username, "-a", app).ok().has_line(
        f"Removing {friend.username} from {app} collaborators... done")
    assert json_after(owner("perms:list", "-a", app).ok(), None) == {"users": []}
    friend("config:list", "-a", app).error("403 Forbidden")
    owner("perms:delete", friend.username, "-a", app).error("404 Not Found")


def test_perms_admin(terminal):
    someone = terminal().register()
    admin = terminal().login("admin")
    someone("perms:list", "--admin").error("403 Forbidden")

    admin("perms:create", someone.username, "--admin").ok().has_line(
        f"Adding {someone.username} to system administrators... done")
    admins = json_after(admin("perms:list", "--admin").ok(), None)
    assert {"admin", someone.username} <= {u["username"] for u in admins["results"]}, admins
    someone("users:list").ok().has_line("=== Users")

    admin("perms:delete", someone.username, "--admin").ok().has_line(
        f"Remove {someone.username} from system administrators... done")
    admins = json_after(admin("perms:list", "--admin").ok(), None)
    assert someone.username not in {u["username"] for u in admins["results"]}, admins
    someone("users:list").error("403 Forbidden")


# --- runtime operations (no container runtime configured yet: 503 by design) ----------------------

def test_runtime_operations_report_the_503_reason(user, admin):
    app = user.create_app()
    user("pull", "deis/example-go:latest", "-a", app).ok().has_line("Creating build... done, v2")
    if admin.get(f"/v1/apps/{app}/containers").status_code != 503:
        raise AssertionError("a container runtime is configured: extend this test to scale and list processes")
    # An image pulled without a Procfile has the process type `cmd`, as in Deis v1.
    scaled = user("ps:scale", "cmd=2", "-a", app).error(RUNTIME_503, "No container runtime is configured")
    scaled.has_line("Scaling processes... but first, coffee!")
    user("ps:list", "-a", app).error(RUNTIME_503, "No container runtime is configured")
