"""A one-off command run by the deployer."""

from django.conf import settings
from django.db import models

from .app import App
from .base import UuidAuditedModel


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
