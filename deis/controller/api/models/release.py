"""A release: a build plus a config, numbered per app, and how far its rollout got."""

from django.conf import settings
from django.db import models

from .app import App
from .base import UuidAuditedModel
from .build import Build
from .config import Config


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
