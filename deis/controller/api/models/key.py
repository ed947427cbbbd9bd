"""An SSH public key a user pushes with."""

from django.conf import settings
from django.db import models

from .base import UuidAuditedModel


class Key(UuidAuditedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="keys")
    id = models.CharField(max_length=128)
    public = models.TextField()
    fingerprint = models.CharField(max_length=128, unique=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["owner", "id"], name="unique_key_id_per_owner")]
