"""A config: an immutable snapshot of an app's environment and limits."""

from django.conf import settings
from django.db import models

from .app import App
from .base import UuidAuditedModel


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
