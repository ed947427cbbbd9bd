"""A build: the image the builder made from a push (or a deployed image)."""

from django.conf import settings
from django.db import models

from .app import App
from .base import UuidAuditedModel


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
