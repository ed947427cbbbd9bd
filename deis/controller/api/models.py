"""The platform's truth: apps, their builds, configs and releases, and what users own."""

import uuid

from django.conf import settings
from django.db import models, transaction


def app_url(app_id: str) -> str:
    """Where the router serves an app: `<app>.<platform domain>`."""
    return f"{app_id}.{settings.PLATFORM_DOMAIN}"


class UuidAuditedModel(models.Model):
    """Every object carries a uuid and created/updated stamps, as the v1 API shows them."""

    uuid = models.UUIDField(default=uuid.uuid4, primary_key=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class App(UuidAuditedModel):
    id = models.SlugField(max_length=63, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="apps")
    # Desired process counts, {"web": 2}: what the scheduler converges to.
    structure = models.JSONField(default=dict, blank=True)
    collaborators = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="shared_apps", blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.id

    @property
    def url(self) -> str:
        return app_url(self.id)

    def can_use(self, user) -> bool:
        """Owner, collaborators and admins may deploy, configure, scale and inspect."""
        return self.can_manage(user) or self.collaborators.filter(pk=user.pk).exists()

    def can_manage(self, user) -> bool:
        """Only the owner and admins may destroy, transfer or change sharing."""
        return user.is_superuser or self.owner_id == user.pk

    def current_release(self):
        return self.releases.filter(failed=False).order_by("-version").first()

    def latest_release(self):
        return self.releases.order_by("-version").first()


class Build(UuidAuditedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="builds")
    image = models.CharField(max_length=512)
    sha = models.CharField(max_length=40, blank=True)
    procfile = models.JSONField(default=dict, blank=True)
    dockerfile = models.TextField(blank=True)
    # What the builder printed (the newest part), and whether the build failed (then it has no
    # image and no release: the running release stays).
    log = models.TextField(blank=True)
    failed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created"]

    def process_types(self) -> set[str]:
        """Types this build can run: its Procfile's, else the image's CMD as `cmd`."""
        types = {t for t in self.procfile if t != "release"}
        return types or {"cmd"}


class Config(UuidAuditedModel):
    """An immutable snapshot of an app's configuration; every change makes a new one."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="configs")
    values = models.JSONField(default=dict, blank=True)
    memory = models.JSONField(default=dict, blank=True)
    cpu = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created"]


class Release(UuidAuditedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="releases")
    version = models.PositiveIntegerField()
    config = models.ForeignKey(Config, on_delete=models.CASCADE)
    build = models.ForeignKey(Build, on_delete=models.CASCADE, null=True, blank=True)
    summary = models.TextField(blank=True)
    # A release whose deploy failed never becomes current; the reason is kept for the user.
    failed = models.BooleanField(default=False)
    failure = models.TextField(blank=True)
    # How far it got: pending (recorded, queued), deploying, deployed, failed (`failed` is set
    # too), or superseded (a newer release was made before this one started deploying).
    state = models.CharField(max_length=16, default="pending")

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["app", "version"], name="unique_release_version")]


class Key(UuidAuditedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="keys")
    id = models.CharField(max_length=128)
    public = models.TextField()
    fingerprint = models.CharField(max_length=128, unique=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["owner", "id"], name="unique_key_id_per_owner")]


class Domain(UuidAuditedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)

    class Meta:
        ordering = ["domain"]


class Certificate(UuidAuditedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certs")
    common_name = models.CharField(max_length=253, unique=True)
    certificate = models.TextField()
    key = models.TextField()
    expires = models.DateTimeField()

    class Meta:
        ordering = ["common_name"]


class Push(UuidAuditedModel):
    """A record of each `git push` the builder received, as the push hook reports it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="pushes")
    sha = models.CharField(max_length=40)
    fingerprint = models.CharField(max_length=128)
    receive_user = models.CharField(max_length=150)
    receive_repo = models.CharField(max_length=128)
    ssh_connection = models.CharField(max_length=255)
    ssh_original_command = models.CharField(max_length=255)

    class Meta:
        ordering = ["-created"]


ROLLOUT_PHASES = ("pending", "starting", "switching", "retiring", "deployed", "failed")


class Rollout(models.Model):
    """The deployer's durable queue entry for one app, and how far its newest change got.

    Every change of what should run (a release, a scale, a restart, a destroy) bumps `generation`;
    a worker that finishes a rollout writes the generation it worked for to `observed` (so a
    change made meanwhile is rolled out next, as Kubernetes' observedGeneration). Keyed by the
    app's name, not a foreign key: a destroyed app's row stays until its processes are gone.
    The lease (`lease_owner` until `lease_expires`) is the per-app serialisation across workers
    and hosts: taken with one conditional UPDATE, which SQLite and PostgreSQL both make atomic."""

    app_id = models.SlugField(max_length=63, primary_key=True)
    generation = models.PositiveIntegerField(default=0)
    observed = models.PositiveIntegerField(default=0)
    phase = models.CharField(max_length=16, default="pending")
    release = models.PositiveIntegerField(null=True, blank=True)  # the version being rolled out
    error = models.TextField(blank=True)
    steps = models.JSONField(default=list, blank=True)  # [[ISO time, text]] of the newest rollout
    # What a rollout of this generation must do besides converging: restart processes started
    # before `before` ({"type", "num", "before"}), or, should a scale fail, the counts to go back to.
    restart = models.JSONField(null=True, blank=True)
    revert_structure = models.JSONField(null=True, blank=True)
    destroyed = models.BooleanField(default=False)
    images = models.JSONField(default=list, blank=True)  # a destroyed app's own images, to remove
    release_phase_done = models.PositiveIntegerField(default=0)  # version whose release command ran
    attempts = models.PositiveIntegerField(default=0)  # failed tries of this generation in a row
    due = models.DateTimeField(null=True, blank=True)  # not before (backoff after a failure)
    lease_owner = models.CharField(max_length=255, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["app_id"]

    @property
    def done(self) -> bool:
        return self.observed >= self.generation and self.phase in ("deployed", "failed")


class Job(UuidAuditedModel):
    """A one-off command (`deis run`): queued by the API, run by the deployer, output kept capped."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="jobs")
    release = models.PositiveIntegerField()
    command = models.TextField()
    state = models.CharField(max_length=16, default="pending")  # pending, running, succeeded, failed
    waited = models.BooleanField(default=False)  # a v1 client waits for it within its request
    exit_code = models.IntegerField(null=True, blank=True)
    # The newest JOB_OUTPUT_LIMIT bytes of what it printed; `output_dropped` counts the bytes cut
    # before them, so a reader's offsets stay absolute.
    output = models.TextField(blank=True)
    output_dropped = models.BigIntegerField(default=0)
    lease_owner = models.CharField(max_length=255, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]


def lock_app(app: App) -> App:
    """Take the app's row lock for a read-modify-write (PostgreSQL; SQLite locks at BEGIN IMMEDIATE)."""
    assert transaction.get_connection().in_atomic_block
    return App.objects.select_for_update().get(pk=app.pk)
