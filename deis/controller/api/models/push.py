"""A record of a git push the builder received."""

from django.conf import settings
from django.db import models

from .app import App
from .base import UuidAuditedModel


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
