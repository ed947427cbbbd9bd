"""The deployer's durable work item for one app."""

from django.db import models


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
